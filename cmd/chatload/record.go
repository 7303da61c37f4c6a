package main

import (
	"sort"
	"sync"
	"time"
)

// Send is one send_message (customer) or send (agent console) command, from the moment the
// schedule called for it until it was acknowledged and delivered to the other party.
type Send struct {
	ID        string    `json:"id"`
	From      string    `json:"from"` // customer, agent or start
	Kind      string    `json:"kind"` // message, typing, userdata or start
	Session   string    `json:"session"`
	Text      string    `json:"-"`
	Sched     time.Time `json:"sched"`               // when the open-loop schedule called for it
	Written   time.Time `json:"written"`             // first write to a socket
	Attempts  int       `json:"attempts"`            // writes (a resend after a reconnect is one more)
	Acked     time.Time `json:"acked"`               // zero until a successful result arrived
	Index     int       `json:"index"`               // the acknowledged transcript index (-1 until acked)
	Delivered time.Time `json:"delivered,omitzero"`  // when the other party's socket had it
	Err       string    `json:"err,omitempty"`       // a failed result
	AckCount  int       `json:"ack_count,omitempty"` // successful results seen (more than one is a violation only if indexes differ)
}

// Surfaced is one transcript event a client handed to its user: a customer library's
// messageReceived and friends, or a console transcript item the page shows.
type Surfaced struct {
	Index int
	Kind  string
	Text  string
	At    time.Time
}

// View is what one party saw of one chat over one connection (raw pushes, as they came) and over
// its whole life (surfaced, after the client's own ordering and dedup).
type View struct {
	Party   string // customer N or agent name
	Session string
	Conns   [][]int    // per connection, the raw event indexes in arrival order
	Shown   []Surfaced // for a customer: everything surfaced over all connections
}

// Log records every command, acknowledgement and delivery of a run, in memory.
type Log struct {
	mu     sync.Mutex
	sends  map[string]*Send
	order  []*Send
	views  []*View
	errors map[string]int
	events []Mark
}

// Mark is something that happened to the run as a whole (a fault, a step), with its time.
type Mark struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

func newLog() *Log { return &Log{sends: map[string]*Send{}, errors: map[string]int{}} }

func (l *Log) add(s *Send) {
	l.mu.Lock()
	l.sends[s.ID] = s
	l.order = append(l.order, s)
	l.mu.Unlock()
}

func (l *Log) get(id string) *Send {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sends[id]
}

// update runs f under the log's lock (the Send fields are written by one client and read by
// the other party's client and the reporter).
func (l *Log) update(f func()) {
	l.mu.Lock()
	f()
	l.mu.Unlock()
}

func (l *Log) view(party, session string) *View {
	v := &View{Party: party, Session: session}
	l.mu.Lock()
	l.views = append(l.views, v)
	l.mu.Unlock()
	return v
}

func (l *Log) errorf(kind string) {
	l.mu.Lock()
	l.errors[kind]++
	l.mu.Unlock()
}

func (l *Log) mark(what string) {
	l.mu.Lock()
	l.events = append(l.events, Mark{At: time.Now(), What: what})
	l.mu.Unlock()
}

// snapshot copies the sends (values) under the lock.
func (l *Log) snapshot() []Send {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Send, len(l.order))
	for i, s := range l.order {
		out[i] = *s
	}
	return out
}

// Percentiles of a set of durations, in milliseconds.
type Percentiles struct {
	N     int     `json:"n"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	Limit bool    `json:"-"`
}

func percentiles(d []time.Duration) Percentiles {
	p := Percentiles{N: len(d)}
	if len(d) == 0 {
		return p
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		i := int(q * float64(len(d)))
		if i >= len(d) {
			i = len(d) - 1
		}
		return float64(d[i].Microseconds()) / 1000
	}
	p.P50, p.P90, p.P99, p.P999, p.Max = at(0.50), at(0.90), at(0.99), at(0.999), float64(d[len(d)-1].Microseconds())/1000
	return p
}

package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/chat"
	"agentd/postgres"
	"agentd/postgres/localpg"
	"agentd/postgres/pgtest"
	"agentd/userdata"
)

func openTestDB(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func randomBytes() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

// startChat starts a session and returns it with its customer party.
func startChat(t *testing.T, s *postgres.ChatStore) (string, chat.Party) {
	t.Helper()
	res, err := s.StartInteraction(context.Background(), chat.StartRequest{ServiceName: "default", CustomerName: "c",
		SecureKeyHash: randomBytes(), StartTokenHash: randomBytes(), RetryWindow: time.Minute, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return res.Interaction.ID, res.Party
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded by the deadline
	}
}

type result struct {
	ev  chat.Event
	err error
}

// TestBatchGroupsQueuedCommands: commands queued while a batch is in flight are written together
// in the next one, in one transaction and one NOTIFY; a retry of a command id in the same batch
// and in a later one returns the first index; a bad command in the batch (to an ended session,
// from a party that left) fails alone; a caller
// whose ctx ends while queued gets its error and its command never runs.
func TestBatchGroupsQueuedCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := openTestDB(t, url)
	c := postgres.NewCommitterWithOptions(db, "n1", nil, postgres.BatchOptions{Lanes: 1}) // every interaction queues behind x's batch
	s := postgres.NewChatStore(c)
	x, xp := startChat(t, s)
	y, yp := startChat(t, s)
	z, zp := startChat(t, s)
	w, wp := startChat(t, s)
	if _, err := s.LeaveParty(ctx, chat.LeaveRequest{InteractionID: z, PartyID: zp.ID, CommandID: "bye", End: true,
		Reason: chat.EndLeaveRequest, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	v, _ := startChat(t, s) // an agent joined and left: the session goes on without it
	vp, _, err := s.JoinParty(ctx, chat.JoinRequest{InteractionID: v, Type: chat.PartyAgent, Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeaveParty(ctx, chat.LeaveRequest{InteractionID: v, PartyID: vp.ID, CommandID: "out", At: time.Now()}); err != nil {
		t.Fatal(err)
	}

	var xNext, yNext int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT next_index FROM interactions WHERE id = $1), (SELECT next_index FROM interactions WHERE id = $2)`,
		x, y).Scan(&xNext, &yNext); err != nil {
		t.Fatal(err)
	}
	listen, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(ctx)
	if _, err := listen.Exec(ctx, "LISTEN "+postgres.NotifyChannel); err != nil {
		t.Fatal(err)
	}

	// Another transaction holds x's row lock: the batch with x's message waits on it.
	blocker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback(ctx) }()
	if _, err := blocker.Exec(ctx, `SELECT 1 FROM interactions WHERE id = $1 FOR UPDATE`, x); err != nil {
		t.Fatal(err)
	}
	send := func(ctx context.Context, in string, p chat.Party, id string) chan result {
		ch := make(chan result, 1)
		go func() {
			ev, err := s.AppendMessage(ctx, chat.MessageRequest{InteractionID: in, PartyID: p.ID, CommandID: id, Text: id, ContentType: "text/plain"})
			ch <- result{ev, err}
		}()
		return ch
	}
	rx := send(ctx, x, xp, "x1")
	waitFor(t, "x's batch in flight", func() bool { n, r := postgres.BatchState(c); return n == 0 && r })
	queued := 0
	queue := func(ctx context.Context, in string, p chat.Party, id string) chan result {
		ch := send(ctx, in, p, id)
		queued++
		waitFor(t, id+" queued", func() bool { n, _ := postgres.BatchState(c); return n == queued })
		return ch
	}
	ry1 := queue(ctx, y, yp, "y1")
	ry1again := queue(ctx, y, yp, "y1") // a retry in the same batch
	rz := queue(ctx, z, zp, "z1")       // the session ended: fails alone
	wctx, cancel := context.WithCancel(ctx)
	rw := queue(wctx, w, wp, "w1")
	ry2 := queue(ctx, y, yp, "y2")
	rv := queue(ctx, v, vp, "v1") // the party left: fails alone
	cancel()
	if r := <-rw; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("a command whose ctx ended while queued: %+v, want context.Canceled", r)
	}
	if n, _ := postgres.BatchState(c); n != 5 {
		t.Fatalf("%d commands queued after the cancelled one left, want 5", n)
	}
	if err := blocker.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(ch chan result) result {
		select {
		case r := <-ch:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
			return result{}
		}
	}
	if r := get(rx); r.err != nil || r.ev.Index != xNext {
		t.Fatalf("x1: %+v, want index %d", r, xNext)
	}
	y1, y1again, y2 := get(ry1), get(ry1again), get(ry2)
	if y1.err != nil || y1again.err != nil || y2.err != nil {
		t.Fatalf("y: %v %v %v", y1.err, y1again.err, y2.err)
	}
	if y1.ev.Index != yNext || y1again.ev.Index != yNext || y2.ev.Index != yNext+1 || y1again.ev.Text != "y1" {
		t.Fatalf("y1 at %d, its retry at %d (%q), y2 at %d; want %d, %[5]d, %d", y1.ev.Index, y1again.ev.Index, y1again.ev.Text, y2.ev.Index, yNext, yNext+1)
	}
	if r := get(rz); agentd.ErrorCode(r.err) != "session_ended" {
		t.Fatalf("a message to an ended session: %v, want session_ended", r.err)
	}
	if r := get(rv); agentd.ErrorCode(r.err) != "forbidden" {
		t.Fatalf("a message from a party that left: %v, want forbidden", r.err)
	}
	var wEvents int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM transcript_events WHERE interaction_id = $1 AND kind = 'message'`, w).Scan(&wEvents); err != nil || wEvents != 0 {
		t.Fatalf("the cancelled command wrote %d messages (%v)", wEvents, err)
	}
	// y1 and y2 committed in one transaction (a savepoint each, as z failed in their batch: the
	// rows' xmin are the subtransactions'; the integration events carry the top transaction's id).
	var xids, msgs int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT tx_id::text), count(*) FROM integration_events
		WHERE interaction_id = $1 AND type = 'message.created'`, y).Scan(&xids, &msgs); err != nil || xids != 1 || msgs != 2 {
		t.Fatalf("y's 2 messages were written as %d events by %d transactions (%v), want 1", msgs, xids, err)
	}
	// A retry in a later batch still finds the first result.
	if r := get(send(ctx, y, yp, "y1")); r.err != nil || r.ev.Index != yNext {
		t.Fatalf("y1 retried later: %+v", r)
	}

	// The listener got y1 and y2 in one NOTIFY: the batch's.
	wctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	var payloads []string
	for {
		n, err := listen.WaitForNotification(wctx2)
		if err != nil {
			t.Fatalf("waiting for the batch's notification: %v (got %q)", err, payloads)
		}
		payloads = append(payloads, n.Payload)
		if !strings.Contains(n.Payload, y) {
			continue
		}
		notes, err := postgres.DecodePayload(n.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, n := range notes {
			if n.InteractionID == y && n.Kind == chat.NotifyEvents {
				idx = append(idx, n.Index)
			}
		}
		if fmt.Sprint(idx) != fmt.Sprint([]int{yNext, yNext + 1}) || !strings.HasPrefix(n.Payload, "[") {
			t.Fatalf("the batch's NOTIFY %q announces y's indexes %v, want %d and %d in one array", n.Payload, idx, yNext, yNext+1)
		}
		break
	}
}

// recorder is a node's fan-out: it records what the node's Listener hands on from other nodes.
type recorder struct {
	mu     sync.Mutex
	notes  []chat.Notification
	resync chan struct{}
}

func (r *recorder) Broadcast(n chat.Notification) {
	r.mu.Lock()
	r.notes = append(r.notes, n)
	r.mu.Unlock()
}

func (r *recorder) Resync() {
	select {
	case r.resync <- struct{}{}:
	default:
	}
}

func (r *recorder) events() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]bool{}
	for _, n := range r.notes {
		if n.Kind == chat.NotifyEvents {
			m[fmt.Sprint(n.InteractionID, "/", n.Index)] = true
		}
	}
	return m
}

// TestBatchTwoNodesNothingLost: many concurrent senders over a few interactions on two nodes
// (two Committers, two pools) at once, with UserData changes and notices mixed in: every acked
// message exists exactly once at its acked index, indexes and side-channel seqs are contiguous,
// each sender's messages
// are in its order, and the other node's Listener decodes every message's notification from the
// batches' NOTIFYs.
func TestBatchTwoNodesNothingLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db1, db2 := openTestDB(t, url), openTestDB(t, url)
	s1 := postgres.NewChatStore(postgres.NewCommitter(db1, "node-1", nil))
	s2 := postgres.NewChatStore(postgres.NewCommitter(db2, "node-2", nil))
	rec := &recorder{resync: make(chan struct{}, 1)}
	l := postgres.NewListener(postgres.ListenerDeps{DatabaseURL: url, NodeID: "node-2", Local: rec,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	lctx, stop := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	lwg.Go(func() { l.Run(lctx) })
	defer func() { stop(); lwg.Wait() }()
	select {
	case <-rec.resync:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not connect")
	}

	const chats, perSide, each = 6, 2, 25 // per chat: 2 customer senders on node 1, 2 agent senders on node 2
	type sender struct {
		store  *postgres.ChatStore
		in     string
		party  chat.Party
		name   string
		acked  []chat.Event
		node1  bool
		failed error
	}
	var senders []*sender
	ids := make([]string, chats)
	for i := range chats {
		in, cp := startChat(t, s1)
		ids[i] = in
		ap, _, err := s2.JoinParty(ctx, chat.JoinRequest{InteractionID: in, Type: chat.PartyAgent, Name: "agent"})
		if err != nil {
			t.Fatal(err)
		}
		for j := range perSide {
			senders = append(senders, &sender{store: s1, in: in, party: cp, name: fmt.Sprintf("c%d-%d", i, j), node1: true},
				&sender{store: s2, in: in, party: ap, name: fmt.Sprintf("a%d-%d", i, j)})
		}
	}
	var wg sync.WaitGroup
	for _, sd := range senders {
		wg.Go(func() {
			for k := range each {
				id := fmt.Sprintf("%s-%d", sd.name, k)
				ev, err := sd.store.AppendMessage(ctx, chat.MessageRequest{InteractionID: sd.in, PartyID: sd.party.ID,
					CommandID: id, Text: id, ContentType: "text/plain"})
				if err != nil {
					sd.failed = fmt.Errorf("%s: %w", id, err)
					return
				}
				sd.acked = append(sd.acked, ev)
				if k%10 == 7 && sd.node1 { // a customer's UserData change
					if _, err := sd.store.ChangeUserData(ctx, chat.UserDataRequest{InteractionID: sd.in, PartyID: sd.party.ID,
						CommandID: "u-" + id, Actor: userdata.OwnerClient, ActorName: "c",
						Changes: []userdata.Change{{Key: sd.name, Value: id}}, Limits: userdata.DefaultLimits}); err != nil {
						sd.failed = fmt.Errorf("userdata %s: %w", id, err)
						return
					}
				}
				if k%10 == 3 { // the other commands of the batch path, interleaved
					raw, _ := json.Marshal(map[string]string{"k": id})
					if _, err := sd.store.AddNotice(ctx, chat.NoticeRequest{InteractionID: sd.in, PartyID: sd.party.ID,
						CommandID: "n-" + id, Payload: raw}); err != nil {
						sd.failed = fmt.Errorf("notice %s: %w", id, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()

	for _, sd := range senders {
		if sd.failed != nil {
			t.Fatal(sd.failed)
		}
		for k, ev := range sd.acked {
			if want := fmt.Sprintf("%s-%d", sd.name, k); ev.Text != want {
				t.Fatalf("%s's message %d acked with text %q", sd.name, k, ev.Text)
			}
			if k > 0 && ev.Index <= sd.acked[k-1].Index {
				t.Fatalf("%s's messages out of order: %d after %d", sd.name, ev.Index, sd.acked[k-1].Index)
			}
		}
	}
	for _, in := range ids {
		rows, err := db1.Pool.Query(ctx, `SELECT idx, kind, text FROM transcript_events WHERE interaction_id = $1 ORDER BY idx`, in)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			idx        int
			kind, text string
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.idx, &x.kind, &x.text)
		})
		if err != nil {
			t.Fatal(err)
		}
		texts := map[string]int{}
		for i, r := range got {
			if r.idx != i {
				t.Fatalf("%s: index %d at position %d: not contiguous", in, r.idx, i)
			}
			if r.kind == "message" {
				texts[r.text]++
			}
		}
		for _, sd := range senders {
			if sd.in != in {
				continue
			}
			for _, ev := range sd.acked {
				if texts[ev.Text] != 1 || got[ev.Index].text != ev.Text {
					t.Fatalf("%s: acked %q at %d, stored %d times, %q at that index", in, ev.Text, ev.Index, texts[ev.Text], got[ev.Index].text)
				}
			}
		}
		// The side channel's seqs (notices and UserData changes) are contiguous too.
		var seqs []int64
		if err := db1.Pool.QueryRow(ctx, `SELECT array_agg(seq ORDER BY seq) FROM (
				SELECT seq FROM notices WHERE interaction_id = $1 UNION ALL SELECT seq FROM userdata_history WHERE interaction_id = $1) s`,
			in).Scan(&seqs); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("%s: side seqs %v are not contiguous", in, seqs)
			}
		}
		// per chat: 2 customers × (3 notices + 2 changes) + 2 agents × 3 notices
		if want := 2*5 + 2*3; len(seqs) != want {
			t.Fatalf("%s: %d side items, want %d", in, len(seqs), want)
		}
		messages := 0
		for _, n := range texts {
			messages += n
		}
		if want := 2 * perSide * each; messages != want {
			t.Fatalf("%s: %d messages, want %d", in, messages, want)
		}
	}
	// Node 2's listener heard of every message node 1 committed.
	waitFor(t, "node 2 to hear of every message of node 1", func() bool {
		heard := rec.events()
		for _, sd := range senders {
			if !sd.node1 {
				continue
			}
			for _, ev := range sd.acked {
				if !heard[fmt.Sprint(sd.in, "/", ev.Index)] {
					return false
				}
			}
		}
		return true
	})
}

// TestWirePayloads: a commit's notifications are packed in order into payloads under the limit
// that decode back to all of them; a lone notification is sent as the single object nodes read
// before group commit; and such an old payload still decodes.
func TestWirePayloads(t *testing.T) {
	var notes []chat.Notification
	for i := range 300 {
		notes = append(notes, chat.Notification{Kind: chat.NotifyEvents, InteractionID: fmt.Sprintf("0195d5a0-0000-7000-8000-%012d", i), Index: i})
	}
	payloads, err := postgres.WirePayloads(notes, "n", 7999)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) < 2 {
		t.Fatalf("300 notifications in %d payload(s)", len(payloads))
	}
	var back []chat.Notification
	for _, p := range payloads {
		if len(p) >= 8000 {
			t.Fatalf("a payload of %d bytes", len(p))
		}
		ns, err := postgres.DecodePayload(p)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, ns...)
	}
	if fmt.Sprint(back) != fmt.Sprint(notes) {
		t.Fatalf("decoded %d notifications, not the %d sent in order", len(back), len(notes))
	}
	one, err := postgres.WirePayloads(notes[:1], "n", 7999)
	if err != nil || len(one) != 1 || !strings.HasPrefix(one[0], "{") {
		t.Fatalf("a lone notification: %q (%v)", one, err)
	}
	old := `{"k":"e","o":"old-node","i":"0195d5a0-0000-7000-8000-000000000001","n":7}`
	if ns, err := postgres.DecodePayload(old); err != nil || len(ns) != 1 || ns[0].Index != 7 || ns[0].Kind != chat.NotifyEvents {
		t.Fatalf("an old single payload: %+v (%v)", ns, err)
	}
}

// BenchmarkGroupCommit measures customer messages through ChatStore.AppendMessage, each sender
// one conversation sending 200-byte messages one after another (the next once the last was
// acknowledged), with group commit off (a transaction per message, as before) and on, on a
// private durable cluster (fsync, synchronous_commit and full_page_writes on). Results:
// docs/benchmarks.md, "Group commit". Run with
//
//	go test ./postgres -run '^$' -bench GroupCommit -benchtime 20000x
func BenchmarkGroupCommit(b *testing.B) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "agentd-groupbench-") // the postgres user must enter it
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	opts := localpg.Options{DataDir: filepath.Join(dir, "pgdata"), Port: freeBenchPort(b), Durable: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv, err := localpg.Ensure(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = localpg.Stop(context.Background(), opts) }) // before the removal (LIFO)
	postmaster := readPID(b, filepath.Join(opts.DataDir, "postmaster.pid"))
	n := 0
	for _, senders := range []int{16, 100, 1000} {
		for _, mode := range []string{"off", "on-lanes=1", "on-lanes=2", "on-lanes=4"} {
			b.Run(fmt.Sprintf("senders=%d/group=%s", senders, mode), func(b *testing.B) {
				n++
				name := fmt.Sprintf("bench%d", n)
				if err := localpg.CreateDatabase(ctx, srv.AdminURL, name, ""); err != nil {
					b.Fatal(err)
				}
				url := srv.DatabaseURL(name)
				if _, err := postgres.Migrate(ctx, url); err != nil {
					b.Fatal(err)
				}
				o := postgres.BatchOptions{Off: mode == "off"}
				_, _ = fmt.Sscanf(mode, "on-lanes=%d", &o.Lanes)
				benchGroupCommit(b, url, srv.AdminURL, postmaster, senders, o)
			})
		}
	}
}

func benchGroupCommit(b *testing.B, url, adminURL string, postmaster, senders int, o postgres.BatchOptions) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	c := postgres.NewCommitterWithOptions(db, "bench", nil, o)
	s := postgres.NewChatStore(c)
	type conv struct {
		in    string
		party chat.Party
	}
	convs := make([]conv, senders)
	for i := range convs {
		res, err := s.StartInteraction(ctx, chat.StartRequest{ServiceName: "default", CustomerName: "c",
			SecureKeyHash: randomBytes(), StartTokenHash: randomBytes(), RetryWindow: time.Minute, At: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		convs[i] = conv{res.Interaction.ID, res.Party}
	}
	text := strings.Repeat("x", 200)
	each := max(b.N/senders, 1)
	lat := make([][]time.Duration, senders)
	walBefore, xactBefore := pgCounters(b, adminURL, url)
	cpuBefore, selfBefore := childrenCPU(postmaster), selfCPU()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomicErr
	for i := range convs {
		wg.Go(func() {
			lat[i] = make([]time.Duration, 0, each)
			for k := range each {
				t0 := time.Now()
				_, err := s.AppendMessage(ctx, chat.MessageRequest{InteractionID: convs[i].in, PartyID: convs[i].party.ID,
					CommandID: fmt.Sprintf("m%d", k), Text: text, ContentType: "text/plain"})
				if err != nil {
					failed.set(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.get(); err != nil {
		b.Fatal(err)
	}
	cpuPG, cpuSelf := childrenCPU(postmaster)-cpuBefore, selfCPU()-selfBefore
	db.Close() // the backends exit and flush their statistics
	walAfter, xactAfter := pgCounters(b, adminURL, url)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	msgs := float64(len(all))
	b.ReportMetric(msgs/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(walAfter-walBefore)/msgs, "walsync/msg")
	b.ReportMetric(float64(xactAfter-xactBefore)/msgs, "xact/msg")
	b.ReportMetric(cpuPG.Seconds()*1000/msgs, "pg-cpu-ms/msg")
	b.ReportMetric(cpuSelf.Seconds()*1000/msgs, "go-cpu-ms/msg")
	b.ReportMetric(0, "ns/op")
}

type atomicErr struct {
	mu  sync.Mutex
	err error
}

func (a *atomicErr) set(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

func (a *atomicErr) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// pgCounters returns the cluster's WAL fsyncs and the database's committed transactions.
func pgCounters(b *testing.B, adminURL, url string) (walSync, xactCommit int64) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	name := url[strings.LastIndex(url, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	if err := conn.QueryRow(ctx, `SELECT (SELECT wal_sync FROM pg_stat_wal),
		(SELECT xact_commit FROM pg_stat_database WHERE datname = $1)`, name).Scan(&walSync, &xactCommit); err != nil {
		b.Fatal(err)
	}
	return walSync, xactCommit
}

func freeBenchPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readPID(b *testing.B, path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

// procCPU reads utime+stime of a process from /proc (at 100 ticks a second) and its parent.
func procCPU(pid int) (cpu time.Duration, ppid int) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	if len(f) < 13 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond, ppid
}

// childrenCPU is the CPU time of the postmaster and every process it started (backends, WAL
// writer, checkpointer, …) still running.
func childrenCPU(postmaster int) time.Duration {
	total, _ := procCPU(postmaster)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cpu, ppid := procCPU(pid); ppid == postmaster {
			total += cpu
		}
	}
	return total
}

func selfCPU() time.Duration {
	cpu, _ := procCPU(os.Getpid())
	return cpu
}

// TestBatchPanicFailsAlone: a command that panics inside a batch is an error for its caller
// alone; the command batched with it commits, and the lane goes on serving.
func TestBatchPanicFailsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t, pgtest.NewDatabase(t))
	c := postgres.NewCommitterWithOptions(db, "n1", nil, postgres.BatchOptions{Lanes: 1})
	s := postgres.NewChatStore(c)
	x, xp := startChat(t, s)
	// A first command holds the lane until the next two are queued behind it: they form one batch.
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.InBatch(ctx, "first", func(ctx context.Context, tx *postgres.Tx) error { <-release; return nil })
	}()
	waitFor(t, "the first batch in flight", func() bool { n, r := postgres.BatchState(c); return n == 0 && r })
	panicked := make(chan error, 1)
	go func() {
		panicked <- c.InBatch(ctx, x, func(ctx context.Context, tx *postgres.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE interactions SET subject = 'changed' WHERE id = $1`, x); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	waitFor(t, "the panicking command queued", func() bool { n, _ := postgres.BatchState(c); return n == 1 })
	sent := make(chan result, 1)
	go func() {
		ev, err := s.AppendMessage(ctx, chat.MessageRequest{InteractionID: x, PartyID: xp.ID, CommandID: "m1", Text: "hello", ContentType: "text/plain"})
		sent <- result{ev, err}
	}()
	waitFor(t, "the message queued", func() bool { n, _ := postgres.BatchState(c); return n == 2 })
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-panicked; err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("the panicking command returned %v", err)
	}
	if r := <-sent; r.err != nil || r.ev.Text != "hello" {
		t.Fatalf("the message batched with it: %+v", r)
	}
	var subject string
	if err := db.Pool.QueryRow(ctx, `SELECT subject FROM interactions WHERE id = $1`, x).Scan(&subject); err != nil || subject == "changed" {
		t.Fatalf("the panicking command's change was kept: %q (%v)", subject, err)
	}
}

// TestBatchCommitFailureRetriedAlone: when a batch's commit fails (here a deferred constraint
// trigger that refuses one command's row at commit), each command is run again in its own
// transaction: the one at fault gets the error, the message batched with it commits once.
func TestBatchCommitFailureRetriedAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t, pgtest.NewDatabase(t))
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE batch_probe (v text);
		CREATE FUNCTION batch_probe_check() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.v = 'bad' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER batch_probe_check AFTER INSERT ON batch_probe
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION batch_probe_check()`); err != nil {
		t.Fatal(err)
	}
	c := postgres.NewCommitterWithOptions(db, "n1", nil, postgres.BatchOptions{Lanes: 1})
	s := postgres.NewChatStore(c)
	x, xp := startChat(t, s)
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.InBatch(ctx, "first", func(ctx context.Context, tx *postgres.Tx) error { <-release; return nil })
	}()
	waitFor(t, "the first batch in flight", func() bool { n, r := postgres.BatchState(c); return n == 0 && r })
	bad := make(chan error, 1)
	go func() {
		bad <- c.InBatch(ctx, "bad", func(ctx context.Context, tx *postgres.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO batch_probe (v) VALUES ('bad')`)
			return err
		})
	}()
	waitFor(t, "the bad command queued", func() bool { n, _ := postgres.BatchState(c); return n == 1 })
	sent := make(chan result, 1)
	go func() {
		ev, err := s.AppendMessage(ctx, chat.MessageRequest{InteractionID: x, PartyID: xp.ID, CommandID: "m1", Text: "hello", ContentType: "text/plain"})
		sent <- result{ev, err}
	}()
	waitFor(t, "the message queued", func() bool { n, _ := postgres.BatchState(c); return n == 2 })
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-bad; err == nil || !strings.Contains(err.Error(), "refused at commit") {
		t.Fatalf("the command refused at commit returned %v", err)
	}
	r := <-sent
	if r.err != nil || r.ev.Text != "hello" {
		t.Fatalf("the message batched with it: %+v", r)
	}
	var n, idx int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), max(idx) FROM transcript_events WHERE interaction_id = $1 AND kind = 'message'`, x).Scan(&n, &idx); err != nil || n != 1 || idx != r.ev.Index {
		t.Fatalf("%d messages stored, the last at %d, acked at %d (%v)", n, idx, r.ev.Index, err)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM batch_probe`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d probe rows kept (%v)", rows, err)
	}
}

// Package notify is what integrators get: the integration events every change of an interaction
// emits (types, positions, filters), API tokens and their scopes, and webhook endpoints with
// their signing and delivery. Events are written by the postgres store in the change's own
// transaction, together with the River job that delivers them, so there is no event without its
// change and no change without its event.
package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type names an event; it is the Agentd-Event header of a webhook delivery.
type Type string

// The event types (docs/webhooks.md describes each one's data).
const (
	InteractionQueued      Type = "interaction.queued"
	InteractionAssigned    Type = "interaction.assigned"
	InteractionTransferred Type = "interaction.transferred"
	InteractionEnded       Type = "interaction.ended"
	InteractionWrappedUp   Type = "interaction.wrapped_up"
	MessageCreated         Type = "message.created"
	UserDataUpdated        Type = "userdata.updated"
	UserDataDeleted        Type = "userdata.deleted"
	NoticeCustom           Type = "notice.custom"
	CoBrowseRequested      Type = "cobrowse.requested"
	CoBrowseJoined         Type = "cobrowse.joined"
	SurveySubmitted        Type = "survey.submitted"
	// Ping is the type of a "Send test event" delivery; it is never emitted by a change.
	Ping Type = "ping"
)

// Types lists every type a change emits, in the order the documentation gives them.
var Types = []Type{InteractionQueued, InteractionAssigned, InteractionTransferred, InteractionEnded,
	InteractionWrappedUp, MessageCreated, UserDataUpdated, UserDataDeleted, NoticeCustom,
	CoBrowseRequested, CoBrowseJoined, SurveySubmitted}

// Known reports whether t is a type a change emits.
func Known(t Type) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// ParseTypes parses a comma-separated list of event types ("" is every type).
func ParseTypes(s string) ([]Type, error) {
	var out []Type
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !Known(Type(f)) {
			return nil, fmt.Errorf("unknown event type %q", f)
		}
		out = append(out, Type(f))
	}
	return out, nil
}

// Position is an event's place in the one global order of events. It is ordered by the
// transaction that wrote the event, then by the event within it; a reader sees only events of
// transactions older than every transaction still running, so a later commit never lands behind
// a position already read. Written as "<tx>-<n>"; the zero Position is before every event.
type Position struct {
	Tx uint64
	N  int64
}

func (p Position) String() string {
	if p == (Position{}) {
		return "0"
	}
	return strconv.FormatUint(p.Tx, 10) + "-" + strconv.FormatInt(p.N, 10)
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	return p.Tx < q.Tx || (p.Tx == q.Tx && p.N < q.N)
}

// ParsePosition parses what Position.String wrote ("" and "0" are the start).
func ParsePosition(s string) (Position, error) {
	if s == "" || s == "0" {
		return Position{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	tx, err1 := strconv.ParseUint(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || n < 0 {
		return Position{}, fmt.Errorf("invalid position %q", s)
	}
	return Position{Tx: tx, N: n}, nil
}

// MarshalText makes a Position a JSON string.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a Position from JSON.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	*p = q
	return err
}

// Event is one committed integration event. Data always carries interaction_id and service.
type Event struct {
	ID            string          `json:"id"`
	Position      Position        `json:"position"`
	Type          Type            `json:"type"`
	InteractionID string          `json:"interaction_id,omitempty"`
	Service       string          `json:"service,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	Data          json.RawMessage `json:"data"`
}

// Body is the JSON body of a webhook delivery of e.
func (e Event) Body() ([]byte, error) {
	return json.Marshal(struct {
		ID        string          `json:"id"`
		Type      Type            `json:"type"`
		CreatedAt time.Time       `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}{e.ID, e.Type, e.CreatedAt.UTC(), e.Data})
}

// Filter selects events. Zero fields select everything.
type Filter struct {
	Types         []Type
	Services      []string
	InteractionID string
	// AgentID keeps the events of interactions this agent was assigned (offered or accepted);
	// Agent does the same by username.
	AgentID int64
	Agent   string
}

// DispatchArgs is the River job that fans the events of one committed transaction out to the
// webhook endpoints whose filter matches. It is inserted in that transaction.
type DispatchArgs struct {
	Tx uint64 `json:"tx"`
}

// Kind is the River job kind.
func (DispatchArgs) Kind() string { return "notify.dispatch" }

// DeliverArgs is the River job that delivers one webhook delivery, with retries.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind is the River job kind.
func (DeliverArgs) Kind() string { return "notify.deliver" }

// Queue is the River queue of the webhook jobs.
const Queue = "webhooks"

// Agent names the agent an event is about.
type Agent struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

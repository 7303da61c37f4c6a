package api

import (
	"encoding/json"
	"time"

	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// The JSON the API answers (snake_case; the schemas are in openapi.json).

type interactionJSON struct {
	ID           string     `json:"id"`
	Service      string     `json:"service"`
	State        string     `json:"state"`
	CustomerName string     `json:"customer_name"`
	Subject      string     `json:"subject"`
	Agents       []string   `json:"agents"`
	Disposition  string     `json:"disposition"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	QueuedAt     *time.Time `json:"queued_at"`
	EndedAt      *time.Time `json:"ended_at"`
	EndReason    string     `json:"end_reason"`
}

func interactionOf(in notify.InteractionSummary) interactionJSON {
	agents := in.Agents
	if agents == nil {
		agents = []string{}
	}
	return interactionJSON{ID: in.ID, Service: in.Service, State: in.State, CustomerName: in.CustomerName, Subject: in.Subject,
		Agents: agents, Disposition: in.Disposition, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, QueuedAt: in.QueuedAt,
		EndedAt: in.EndedAt, EndReason: in.EndReason}
}

type listJSON struct {
	Interactions []interactionJSON `json:"interactions"`
	NextCursor   *string           `json:"next_cursor"`
}

type partyJSON struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Name     string     `json:"name"`
	UserRef  string     `json:"user_ref"`
	JoinedAt time.Time  `json:"joined_at"`
	LeftAt   *time.Time `json:"left_at"`
}

func partyOf(p chat.Party) partyJSON {
	return partyJSON{ID: p.ID, Type: string(p.Type), Name: p.Name, UserRef: p.UserRef, JoinedAt: p.JoinedAt, LeftAt: p.LeftAt}
}

type eventJSON struct {
	Index       int       `json:"index"`
	Kind        string    `json:"kind"`
	PartyID     *string   `json:"party_id"`
	Text        string    `json:"text"`
	ContentType string    `json:"content_type"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

type entryJSON struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Owner     string          `json:"owner"`
	Visible   bool            `json:"visible"`
	UpdatedAt time.Time       `json:"updated_at"`
}

func entriesOf(es []userdata.Entry) []entryJSON {
	out := make([]entryJSON, len(es))
	for i, e := range es {
		out[i] = entryJSON{Key: e.Key, Value: e.Value, Owner: string(e.Owner), Visible: e.Visible, UpdatedAt: e.UpdatedAt}
	}
	return out
}

type historyJSON struct {
	Seq        int64           `json:"seq"`
	Key        string          `json:"key"`
	Op         string          `json:"op"`
	OldValue   json.RawMessage `json:"old_value"`
	NewValue   json.RawMessage `json:"new_value"`
	Owner      string          `json:"owner"`
	ActorName  string          `json:"actor_name"`
	Visible    bool            `json:"visible"`
	WasVisible bool            `json:"was_visible"`
	At         time.Time       `json:"at"`
}

func historyOf(hs []userdata.HistoryEntry) []historyJSON {
	out := make([]historyJSON, len(hs))
	null := json.RawMessage("null")
	for i, h := range hs {
		out[i] = historyJSON{Seq: h.Seq, Key: h.Key, Op: string(h.Op), OldValue: h.OldValue, NewValue: h.NewValue,
			Owner: string(h.Owner), ActorName: h.ActorName, Visible: h.Visible, WasVisible: h.WasVisible, At: h.At}
		if out[i].OldValue == nil {
			out[i].OldValue = null
		}
		if out[i].NewValue == nil {
			out[i].NewValue = null
		}
	}
	return out
}

type noticeJSON struct {
	Seq      int64           `json:"seq"`
	PartyID  *string         `json:"party_id"`
	Sender   string          `json:"sender"`
	Audience string          `json:"audience"`
	Payload  json.RawMessage `json:"payload"`
	At       time.Time       `json:"at"`
}

func noticeOf(n chat.Notice) noticeJSON {
	v := noticeJSON{Seq: n.Seq, Sender: n.Sender, Audience: string(n.Audience), Payload: n.Payload, At: n.At}
	if n.Party.ID != "" {
		v.PartyID, v.Sender = &n.Party.ID, n.Party.Name
	}
	return v
}

type surveyJSON struct {
	Submitted bool              `json:"submitted"`
	Answers   map[string]string `json:"answers"`
}

type detailJSON struct {
	interactionJSON
	WrapUpNotes string       `json:"wrap_up_notes"`
	Parties     []partyJSON  `json:"parties"`
	Transcript  []eventJSON  `json:"transcript"`
	UserData    []entryJSON  `json:"userdata"`
	Notices     []noticeJSON `json:"notices"`
	Survey      surveyJSON   `json:"survey"`
}

type agentJSON struct {
	Username       string   `json:"username"`
	DisplayName    string   `json:"display_name"`
	Role           string   `json:"role"`
	State          string   `json:"state"`
	NotReadyReason string   `json:"not_ready_reason"`
	Load           int      `json:"load"`
	Capacity       int      `json:"capacity"`
	Services       []string `json:"services"`
}

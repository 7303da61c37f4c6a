package postgres

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/jackc/pgx/v5"

	"agentd/chat"
)

type noticeResult struct {
	Seq int64 `json:"seq"`
}

const noticeQuery = `SELECT n.seq, n.payload, n.created_at, ` + partyColumns + `
	FROM notices n JOIN parties p ON p.id = n.party_id`

func scanNotice(row pgx.CollectableRow) (chat.Notice, error) {
	var n chat.Notice
	var payload []byte
	var typ string
	err := row.Scan(&n.Seq, &payload, &n.At, &n.Party.ID, &n.Party.InteractionID, &typ, &n.Party.Name, &n.Party.UserRef, &n.Party.JoinedAt, &n.Party.LeftAt)
	n.InteractionID, n.Payload, n.Party.Type = n.Party.InteractionID, payload, chat.PartyType(typ)
	return n, err
}

// AddNotice stores a custom notice. The customer cannot send notices after the session ended.
func (s *ChatStore) AddNotice(ctx context.Context, req chat.NoticeRequest) (chat.Notice, error) {
	var n chat.Notice
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		var prev noticeResult
		found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev)
		if err != nil {
			return err
		}
		if !found {
			party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
			if err != nil {
				return err
			}
			if party.Type == chat.PartyClient && in.State.Over() {
				return errEnded()
			}
			if prev.Seq, err = nextSeq(ctx, tx, req.InteractionID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO notices (interaction_id, seq, party_id, payload, created_at)
				VALUES ($1, $2, $3, $4, clock_timestamp())`, req.InteractionID, prev.Seq, req.PartyID, []byte(req.Payload)); err != nil {
				return err
			}
			if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, prev); err != nil {
				return err
			}
			if err := s.notify(ctx, tx, wireNote{Kind: "s", Interaction: req.InteractionID, N: prev.Seq}); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, noticeQuery+` WHERE n.interaction_id = $1 AND n.seq = $2`, req.InteractionID, prev.Seq)
		if err != nil {
			return err
		}
		n, err = pgx.CollectExactlyOneRow(rows, scanNotice)
		return err
	})
	return n, err
}

// SideItems returns up to limit notices and UserData changes from fromSeq, ordered by seq.
func (s *ChatStore) SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error) {
	if !validUUID(interactionID) {
		return nil, errSessionNotFound()
	}
	rows, err := s.db.Pool.Query(ctx, noticeQuery+` WHERE n.interaction_id = $1 AND n.seq >= $2 ORDER BY n.seq LIMIT $3`,
		interactionID, fromSeq, limit)
	if err != nil {
		return nil, translate(err)
	}
	notices, err := pgx.CollectRows(rows, scanNotice)
	if err != nil {
		return nil, translate(err)
	}
	rows, err = s.db.Pool.Query(ctx, `SELECT `+historyColumns+` FROM userdata_history
		WHERE interaction_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`, interactionID, fromSeq, limit)
	if err != nil {
		return nil, translate(err)
	}
	changes, err := pgx.CollectRows(rows, scanHistory)
	if err != nil {
		return nil, translate(err)
	}
	items := make([]chat.SideItem, 0, len(notices)+len(changes))
	for i := range notices {
		items = append(items, chat.SideItem{Seq: notices[i].Seq, Notice: &notices[i]})
	}
	for i := range changes {
		items = append(items, chat.SideItem{Seq: changes[i].Seq, Change: &changes[i]})
	}
	sort.Slice(items, func(a, b int) bool { return items[a].Seq < items[b].Seq })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

// wireNote is the NOTIFY payload: ids and positions, never bodies (typing excepted, which is
// small, ephemeral and has nothing to read back).
type wireNote struct {
	Kind        string      `json:"k"` // e events, s side channel, t typing, q queue, a agent
	Node        string      `json:"o"`
	Interaction string      `json:"i,omitempty"`
	Service     int64       `json:"s,omitempty"`
	User        int64       `json:"u,omitempty"`
	N           int64       `json:"n,omitempty"`
	Typing      *wireTyping `json:"t,omitempty"`
}

type wireTyping struct {
	PartyID   string `json:"p"`
	PartyType string `json:"y"`
	PartyName string `json:"m"`
	IsTyping  bool   `json:"on"`
	Text      string `json:"x,omitempty"`
	At        int64  `json:"a"`
}

// NotifyChannel is the LISTEN/NOTIFY channel every node uses.
const NotifyChannel = "agentd_events"

func (s *ChatStore) notify(ctx context.Context, tx pgx.Tx, n wireNote) error {
	n.Node = s.nodeID
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, string(b))
	return err
}

// NotifyTyping sends a typing notification to the other nodes.
func (s *ChatStore) NotifyTyping(ctx context.Context, interactionID string, t chat.Typing) error {
	b, err := json.Marshal(wireNote{Kind: "t", Node: s.nodeID, Interaction: interactionID, Typing: &wireTyping{
		PartyID: t.Party.ID, PartyType: string(t.Party.Type), PartyName: t.Party.Name, IsTyping: t.IsTyping, Text: t.Text, At: t.At.UnixMilli(),
	}})
	if err != nil {
		return err
	}
	_, err = s.db.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, string(b))
	return translate(err)
}

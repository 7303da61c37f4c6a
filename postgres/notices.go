package postgres

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/jackc/pgx/v5"

	"agentd/chat"
	"agentd/notify"
)

type noticeResult struct {
	Seq int64 `json:"seq"`
}

// An integrator's notice has no party (p.* are NULL): it scans as an external party named by
// its sender.
const noticeQuery = `SELECT n.seq, n.payload, n.created_at, n.sender, n.audience, n.interaction_id,
	coalesce(p.id::text, ''), coalesce(p.type, 'external'), coalesce(p.name, n.sender), coalesce(p.user_ref, ''),
	coalesce(p.joined_at, n.created_at), p.left_at
	FROM notices n LEFT JOIN parties p ON p.id = n.party_id`

func scanNotice(row pgx.CollectableRow) (chat.Notice, error) {
	var n chat.Notice
	var payload []byte
	var typ, audience string
	err := row.Scan(&n.Seq, &payload, &n.At, &n.Sender, &audience, &n.InteractionID,
		&n.Party.ID, &typ, &n.Party.Name, &n.Party.UserRef, &n.Party.JoinedAt, &n.Party.LeftAt)
	n.Party.InteractionID, n.Payload, n.Party.Type, n.Audience = n.InteractionID, payload, chat.PartyType(typ), chat.Audience(audience)
	return n, err
}

// AddNotice stores a custom notice. The customer cannot send notices after the session ended.
func (s *ChatStore) AddNotice(ctx context.Context, req chat.NoticeRequest) (chat.Notice, error) {
	var n chat.Notice
	err := s.c.InBatch(ctx, req.InteractionID, func(ctx context.Context, tx *Tx) error {
		var err error
		n, err = s.AddNoticeTx(ctx, tx, req)
		return err
	})
	return n, err
}

// AddNoticeTx is AddNotice in the caller's transaction (co-browse joined sends its notice in the
// commit that records the session).
func (s *ChatStore) AddNoticeTx(ctx context.Context, tx *Tx, req chat.NoticeRequest) (chat.Notice, error) {
	in, err := lockInteraction(ctx, tx, req.InteractionID)
	if err != nil {
		return chat.Notice{}, err
	}
	var prev noticeResult
	found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev)
	if err != nil {
		return chat.Notice{}, err
	}
	if !found {
		audience := req.Audience
		if audience == "" {
			audience = chat.AudienceAll
		}
		data := map[string]any{"seq": prev.Seq, "audience": audience, "payload": json.RawMessage(req.Payload)}
		var partyID *string
		if req.PartyID == "" && req.Sender != "" {
			// An integrator's notice, sent through the API: no party, refused once the
			// interaction is over (nobody would see it).
			if in.State.Over() {
				return chat.Notice{}, errEnded()
			}
			data["sender"] = req.Sender
		} else {
			party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
			if err != nil {
				return chat.Notice{}, err
			}
			if party.Type == chat.PartyClient {
				if in.State.Over() {
					return chat.Notice{}, errEnded()
				}
				if err := closeStartRetry(ctx, tx, req.InteractionID); err != nil { // the customer uses its session, in this commit
					return chat.Notice{}, err
				}
			}
			partyID, data["party"] = &req.PartyID, partyOf(&party)
		}
		if prev.Seq, err = nextSeq(ctx, tx, req.InteractionID); err != nil {
			return chat.Notice{}, err
		}
		data["seq"] = prev.Seq
		if _, err := tx.Exec(ctx, `INSERT INTO notices (interaction_id, seq, party_id, sender, audience, payload, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())`, req.InteractionID, prev.Seq, partyID, req.Sender, string(audience), []byte(req.Payload)); err != nil {
			return chat.Notice{}, err
		}
		if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, prev); err != nil {
			return chat.Notice{}, err
		}
		if err := tx.emit(notify.NoticeCustom, req.InteractionID, data); err != nil {
			return chat.Notice{}, err
		}
		if err := tx.notifySide(ctx, req.InteractionID, prev.Seq); err != nil {
			return chat.Notice{}, err
		}
	}
	rows, err := tx.Query(ctx, noticeQuery+` WHERE n.interaction_id = $1 AND n.seq = $2`, req.InteractionID, prev.Seq)
	if err != nil {
		return chat.Notice{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanNotice)
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

// NotifyTyping announces a typing notification to this node and the others; it is never stored.
func (s *ChatStore) NotifyTyping(ctx context.Context, interactionID string, t chat.Typing) error {
	return s.c.Announce(ctx, chat.Notification{Kind: chat.NotifyTyping, InteractionID: interactionID, Typing: &t})
}

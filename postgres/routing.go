package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// SetState changes an agent's presence.
func (s *AgentStore) SetState(ctx context.Context, userID int64, state agent.State, reason string, at time.Time) (agent.User, error) {
	var u agent.User
	err := s.c.InTx(ctx, func(tx *Tx) error {
		if state == agent.StateOffline {
			if err := withdrawOffers(ctx, tx, userID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET state = $2, not_ready_reason = $3,
			state_since = CASE WHEN state = $2 AND not_ready_reason = $3 THEN state_since ELSE $4 END,
			last_seen_at = $4 WHERE id = $1`, userID, state, reason, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errUserNotFound()
		}
		if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, userID)); err != nil {
			return err
		}
		return tx.notifyAgent(ctx, userID)
	})
	return u, err
}

// Lock order. Every transaction here takes row locks in the order interaction → assignment →
// user, the order Accept, Decline, Transfer and WrapUp follow, so two of them never wait on each
// other in a cycle (an offer timing out while the agent clicks Accept, or goes offline). Where one
// transaction locks several rows of a kind and waits for them, it takes them sorted by id.

// withdrawOffers puts the chats offered to (but not accepted by) an agent back in their queue.
func withdrawOffers(ctx context.Context, tx *Tx, userID int64) error {
	rows, err := tx.Query(ctx, `SELECT interaction_id FROM assignments WHERE user_id = $1 AND state = 'offered' ORDER BY interaction_id`, userID)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM interactions WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE assignments SET state = 'withdrawn', finished_at = now()
			WHERE interaction_id = $1 AND user_id = $2 AND state = 'offered'`, id, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			continue // accepted or withdrawn meanwhile
		}
		if err := requeue(ctx, tx, id); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		return tx.notifyAgent(ctx, userID)
	}
	return nil
}

// requeue puts an offered interaction back in its queue, keeping its place (queued_at).
func requeue(ctx context.Context, tx *Tx, interactionID string) error {
	var serviceID int64
	err := tx.QueryRow(ctx, `UPDATE interactions SET state = 'queued' WHERE id = $1 AND state = 'offered' RETURNING service_id`,
		interactionID).Scan(&serviceID)
	if noRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := tx.emit(notify.InteractionQueued, interactionID, map[string]any{"requeued": true}); err != nil {
		return err
	}
	return tx.notifyQueue(ctx, serviceID)
}

// Heartbeat records that one of the agent's consoles is connected at at.
func (s *AgentStore) Heartbeat(ctx context.Context, userID int64, at time.Time) error {
	_, err := s.db.Pool.Exec(ctx, `UPDATE users SET last_seen_at = $2 WHERE id = $1`, userID, at)
	return translate(err)
}

// SweepAbsent sets agents whose consoles have all been gone for longer than grace offline, and
// re-queues the chats offered to them. Their active chats stay theirs (docs/console.md). Each
// agent is one transaction, so the lock order (interactions, then the user) holds.
func (s *AgentStore) SweepAbsent(ctx context.Context, now time.Time, grace time.Duration) ([]int64, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT id FROM users
		WHERE state <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < $1::timestamptz - $2::interval) ORDER BY id`, now, grace)
	if err != nil {
		return nil, translate(err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, translate(err)
	}
	var ids []int64
	for _, id := range candidates {
		err := s.c.InTx(ctx, func(tx *Tx) error {
			if err := withdrawOffers(ctx, tx, id); err != nil {
				return err
			}
			// Checked again under the row lock: a console may have come back meanwhile.
			tag, err := tx.Exec(ctx, `UPDATE users SET state = 'offline', not_ready_reason = '', state_since = $2
				WHERE id = $1 AND state <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < $2::timestamptz - $3::interval)`, id, now, grace)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			ids = append(ids, id)
			return tx.notifyAgent(ctx, id)
		})
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

func loadStrategy(ctx context.Context, q querier, serviceID int64) (agent.Strategy, error) {
	var raw []byte
	if err := q.QueryRow(ctx, `SELECT strategy FROM services WHERE id = $1`, serviceID).Scan(&raw); err != nil {
		return agent.Strategy{}, err
	}
	var st agent.Strategy
	if err := json.Unmarshal(raw, &st); err != nil {
		return agent.Strategy{}, fmt.Errorf("service %d strategy: %w", serviceID, err)
	}
	return st, nil
}

// agentHasRoom is the condition, on users u, that an agent can take another chat now: ready,
// enabled, and with fewer open assignments than capacity. The count is that of the statement's
// snapshot, a filter only: whoever adds to an agent's load counts again with the row lock held.
const agentHasRoom = `u.state = 'ready' AND NOT u.disabled AND u.capacity > (SELECT count(*) FROM assignments l
	WHERE l.user_id = u.id AND l.state IN ('offered', 'active'))`

// Assign offers up to max queued chats, oldest first, each to the agent of its service who has
// been idle longest and has free capacity, in one transaction. It returns the offers made; none
// means there is nothing to assign now.
//
// Only chats some agent can take are candidates, so chats waiting in a service whose agents are
// all busy (or that its free agents declined) never hold back the chats of other services.
//
// Capacity can never be exceeded, even with several nodes routing at once: the candidate agent's
// row is locked (FOR UPDATE SKIP LOCKED, so routers do not wait on each other), and the agent's
// load is counted by a separate statement after the lock is held. Every transaction that adds to
// an agent's load takes the same lock first, so that count sees every committed offer, and this
// transaction's own earlier offers.
func (s *AgentStore) Assign(ctx context.Context, now time.Time, max int) ([]agent.Offer, error) {
	var offers []agent.Offer
	err := s.c.InTx(ctx, func(tx *Tx) error {
		offers = offers[:0]
		// The cheap question first: when every agent is busy, as in a long queue, a pass is this
		// one small query.
		rows, err := tx.Query(ctx, `SELECT DISTINCT us.service_id FROM users u
			JOIN user_services us ON us.user_id = u.id WHERE `+agentHasRoom)
		if err != nil {
			return err
		}
		staffed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(staffed) == 0 {
			return err
		}
		// Usually the oldest chats of the services with room can be placed. Only when none of
		// them can (declined by every agent with room, or those agents are busy with another
		// router) the slower query that checks every queued chat for an agent is run.
		strategies := map[int64]agent.Strategy{}
		for _, query := range []string{queuedInServices, queuedWithAgent} {
			candidates, err := lockQueued(ctx, tx, query, staffed, max, now)
			if err != nil {
				return err
			}
			for _, q := range candidates {
				offer, ok, err := offerTo(ctx, tx, now, q, strategies)
				if err != nil {
					return err
				}
				if ok {
					offers = append(offers, offer)
				}
			}
			if len(offers) > 0 || len(candidates) == 0 {
				break
			}
		}
		// One notification per service and agent touched, however many offers (Tx.Notify).
		for _, o := range offers {
			if err := tx.notifyQueue(ctx, o.ServiceID); err != nil {
				return err
			}
			if err := tx.notifyAgent(ctx, o.UserID); err != nil {
				return err
			}
		}
		return nil
	})
	return offers, err
}

// barred is the condition, on the interaction whose id is the SQL expression iid and agent u, that
// u may not be offered it now: u missed an offer of it and has not become ready since (a missed
// offer sets the agent not ready; pressing Ready again means "offer me chats"), or declined it
// less than the service's decline cool-down (the SQL expression cooldown, an interval) before
// now ($3). Passing on a chat never bars an agent for good: with one agent on duty, a chat they
// missed or declined would otherwise wait forever.
func barred(iid, cooldown string) string {
	return `EXISTS (SELECT 1 FROM assignments b WHERE b.interaction_id = ` + iid + ` AND b.user_id = u.id AND (
			(b.state = 'timed_out' AND b.finished_at >= u.state_since) OR
			(b.state = 'declined' AND b.finished_at > $3::timestamptz - ` + cooldown + `)))`
}

// passedOn is the condition that agent u missed or declined the interaction iid before: such
// agents get it only when no one else can take it.
func passedOn(iid string) string {
	return `EXISTS (SELECT 1 FROM assignments b WHERE b.interaction_id = ` + iid + ` AND b.user_id = u.id
			AND b.state IN ('declined', 'timed_out'))`
}

// The queued chats of the services $1, oldest first, locked; the second query keeps only those
// some agent with room may be offered now ($3 is now, $4 the default decline cool-down in
// seconds).
var (
	queuedInServices = `SELECT i.id, i.service_id FROM interactions i
		WHERE i.state = 'queued' AND i.service_id = ANY($1)
		ORDER BY i.queued_at, i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED`
	queuedWithAgent = `SELECT i.id, i.service_id FROM interactions i JOIN services sv ON sv.id = i.service_id
		WHERE i.state = 'queued' AND i.service_id = ANY($1)
			AND EXISTS (SELECT 1 FROM users u JOIN user_services us ON us.user_id = u.id AND us.service_id = i.service_id
				WHERE ` + agentHasRoom + ` AND NOT ` + barred("i.id",
		`make_interval(secs => coalesce(nullif((sv.strategy->>'decline_cooldown_seconds')::int, 0), $4::int))`) + `)
		ORDER BY i.queued_at, i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED`
)

type queuedChat struct {
	id        string
	serviceID int64
}

func lockQueued(ctx context.Context, tx pgx.Tx, query string, services []int64, limit int, now time.Time) ([]queuedChat, error) {
	args := []any{services, limit}
	if query == queuedWithAgent {
		args = append(args, now, int(agent.DefaultDeclineCooldown/time.Second))
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (queuedChat, error) {
		var q queuedChat
		return q, r.Scan(&q.id, &q.serviceID)
	})
}

// offerTo offers the locked queued chat q to the agent pickAgent finds, if there is one.
// strategies caches the services' strategies for the transaction.
func offerTo(ctx context.Context, tx pgx.Tx, now time.Time, q queuedChat, strategies map[int64]agent.Strategy) (agent.Offer, bool, error) {
	st, ok := strategies[q.serviceID]
	if !ok {
		var err error
		if st, err = loadStrategy(ctx, tx, q.serviceID); err != nil {
			return agent.Offer{}, false, err
		}
		strategies[q.serviceID] = st
	}
	userID, ok, err := pickAgent(ctx, tx, q.serviceID, q.id, 0, now, st.DeclineCooldown())
	if err != nil || !ok {
		return agent.Offer{}, false, err
	}
	// The offer's deadline and the agent's last offer come from the router's clock, the clock
	// ExpireOffers compares them with. An agent offered a chat in this pass sorts after every
	// agent who has been idle since before now.
	offer := agent.Offer{InteractionID: q.id, ServiceID: q.serviceID, UserID: userID,
		ExpiresAt: now.Add(st.AcceptTimeout()), AutoAnswered: st.AutoAnswer}
	err = tx.QueryRow(ctx, `WITH
			i AS (UPDATE interactions SET state = 'offered' WHERE id = $1),
			u AS (UPDATE users SET last_offer_at = $4 WHERE id = $2)
		INSERT INTO assignments (interaction_id, user_id, state, offered_at, expires_at)
		VALUES ($1, $2, 'offered', $4, $3) RETURNING id`, q.id, userID, offer.ExpiresAt, now).Scan(&offer.AssignmentID)
	return offer, err == nil, err
}

// pickAgent locks and returns the longest-idle ready agent of the service with free capacity
// that may be offered this interaction now (not barred); agents who missed or declined it come
// after every other agent. onlyUser restricts it to one agent.
// Agents that look full are skipped in the query, so any number of busy agents idle longer than
// one with room cannot hide it.
//
// The router skips agents another transaction holds; a transfer to one named agent waits for
// that agent's lock instead (a router looks at ready agents all the time, and the agent is not
// unavailable because of that). Waiting is safe: routers never wait for a lock while holding an
// agent's, and everyone else takes locks in the order interaction, assignment, user.
func pickAgent(ctx context.Context, tx pgx.Tx, serviceID int64, interactionID string, onlyUser int64, now time.Time, cooldown time.Duration) (int64, bool, error) {
	lock := "FOR UPDATE OF u SKIP LOCKED"
	if onlyUser != 0 {
		lock = "FOR UPDATE OF u"
	}
	rows, err := tx.Query(ctx, `SELECT u.id, u.capacity FROM users u
		JOIN user_services us ON us.user_id = u.id AND us.service_id = $1
		WHERE `+agentHasRoom+` AND ($4 = 0 OR u.id = $4)
			AND NOT `+barred("$2", "$5::interval")+`
		ORDER BY `+passedOn("$2")+`, greatest(u.state_since, coalesce(u.last_offer_at, u.state_since)), u.id
		LIMIT 10 `+lock, serviceID, interactionID, now, onlyUser, cooldown)
	if err != nil {
		return 0, false, err
	}
	type cand struct {
		id       int64
		capacity int
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		return c, r.Scan(&c.id, &c.capacity)
	})
	if err != nil {
		return 0, false, err
	}
	for _, c := range cands {
		// A statement of its own, run with the row lock held: it sees every committed offer.
		var load int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM assignments WHERE user_id = $1 AND state IN ('offered', 'active')`,
			c.id).Scan(&load); err != nil {
			return 0, false, err
		}
		if load < c.capacity {
			return c.id, true, nil
		}
	}
	return 0, false, nil
}

// ExpireOffers times out offers past their deadline: the interaction goes back to its place in
// the queue and the agent who missed it is set not ready. Interactions another transaction holds
// (an Accept in progress) are skipped, not waited for; the next pass sees them again.
func (s *AgentStore) ExpireOffers(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.c.InTx(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, interaction_id, user_id FROM assignments
			WHERE state = 'offered' AND expires_at < $1 ORDER BY expires_at LIMIT 200`, now)
		if err != nil {
			return err
		}
		type offer struct {
			id, user      int64
			interactionID string
		}
		overdue, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (offer, error) {
			var o offer
			return o, r.Scan(&o.id, &o.interactionID, &o.user)
		})
		if err != nil {
			return err
		}
		for _, o := range overdue {
			var locked bool
			err := tx.QueryRow(ctx, `SELECT true FROM interactions WHERE id = $1 FOR UPDATE SKIP LOCKED`, o.interactionID).Scan(&locked)
			if noRows(err) {
				continue
			}
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE assignments SET state = 'timed_out', finished_at = $2 WHERE id = $1 AND state = 'offered'`, o.id, now)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if err := requeue(ctx, tx, o.interactionID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE users SET state = 'not_ready', not_ready_reason = $2, state_since = $3
				WHERE id = $1 AND state = 'ready'`, o.user, agent.ReasonMissedOffer, now); err != nil {
				return err
			}
			if err := tx.notifyAgent(ctx, o.user); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func errOfferGone() error {
	return agentd.Errorf(agentd.ECONFLICT, "offer_gone", "This chat is no longer offered to you.")
}

// Accept turns the agent's offer into an active chat: the agent joins as a party, the interaction
// becomes active and the strategy's UserData is attached, all in one transaction.
func (s *AgentStore) Accept(ctx context.Context, req agent.AcceptRequest) (chat.Party, []chat.Event, error) {
	var party chat.Party
	var events []chat.Event
	err := s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		var assignmentID int64
		err = tx.QueryRow(ctx, `SELECT id FROM assignments WHERE interaction_id = $1 AND user_id = $2 AND state = 'offered'
			FOR UPDATE`, req.InteractionID, req.UserID).Scan(&assignmentID)
		if err != nil || in.State.Over() {
			return translate(err, errOfferGone())
		}
		party, events, err = acceptTx(ctx, tx, in, assignmentID, req)
		return err
	})
	return party, events, err
}

// acceptTx turns the offered assignment of the locked interaction in into the agent's active
// chat: the agent's party joins, the interaction becomes active and req's UserData is written.
func acceptTx(ctx context.Context, tx *Tx, in chat.Interaction, assignmentID int64, req agent.AcceptRequest) (chat.Party, []chat.Event, error) {
	party, err := insertParty(ctx, tx, in.ID, chat.PartyAgent, req.AgentName, fmt.Sprint(req.UserID))
	if err != nil {
		return party, nil, err
	}
	ev, err := appendEvent(ctx, tx, in.ID, chat.EventPartyJoined, &party, "", "", "")
	if err != nil {
		return party, nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE assignments SET state = 'active', accepted_at = now(), party_id = $2 WHERE id = $1`,
		assignmentID, party.ID); err != nil {
		return party, nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE interactions SET state = 'active' WHERE id = $1`, in.ID); err != nil {
		return party, nil, err
	}
	who, err := eventAgent(ctx, tx, req.UserID)
	if err != nil {
		return party, nil, err
	}
	if err := tx.emit(notify.InteractionAssigned, in.ID, map[string]any{"agent": who, "party": partyOf(&party)}); err != nil {
		return party, nil, err
	}
	changes := req.RoutedUserData
	if req.Survey != nil {
		link, err := attachSurvey(ctx, tx, in.ID, *req.Survey)
		if err != nil {
			return party, nil, err
		}
		changes = append(changes, link...)
	}
	if err := writeStrategyUserData(ctx, tx, in.ID, changes, req.Limits); err != nil {
		return party, nil, err
	}
	if err := tx.notifyEvents(ctx, in.ID, ev); err != nil {
		return party, nil, err
	}
	if err := tx.notifyQueue(ctx, in.ServiceID); err != nil {
		return party, nil, err
	}
	return party, []chat.Event{ev}, tx.notifyAgent(ctx, req.UserID)
}

// PickUp has an agent take the oldest chat waiting in one of their services, at once: offered
// and accepted in one commit, within the agent's capacity (ready or not: picking up is the
// agent's own choice). req.Prepare builds the accept (routed UserData, survey link) for the
// chat found. Lock order as everywhere: interaction, then the agent's row.
func (s *AgentStore) PickUp(ctx context.Context, req agent.PickUpRequest) (chat.Party, string, error) {
	var party chat.Party
	var id string
	err := s.c.InTx(ctx, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `SELECT i.id FROM interactions i JOIN services s ON s.id = i.service_id
			JOIN user_services us ON us.service_id = s.id AND us.user_id = $2
			WHERE s.name = $1 AND i.state = 'queued'
			ORDER BY i.queued_at, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED`, req.Service, req.UserID).Scan(&id)
		if err != nil {
			return translate(err, agentd.Errorf(agentd.ENOTFOUND, "queue_empty", "No chat is waiting in %s.", req.Service))
		}
		in, err := lockInteraction(ctx, tx, id)
		if err != nil {
			return err
		}
		var capacity, load int
		if err := tx.QueryRow(ctx, `SELECT capacity FROM users WHERE id = $1 AND NOT disabled FOR UPDATE`, req.UserID).Scan(&capacity); err != nil {
			return translate(err, errUserNotFound())
		}
		// Counted with the row lock held, as every transaction that adds to an agent's load does.
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM assignments WHERE user_id = $1 AND state IN ('offered', 'active')`,
			req.UserID).Scan(&load); err != nil {
			return err
		}
		if load >= capacity {
			return agentd.Errorf(agentd.ECONFLICT, "agent_full", "You are working as many chats as you can take (%d).", capacity)
		}
		var assignmentID int64
		if err := tx.QueryRow(ctx, `INSERT INTO assignments (interaction_id, user_id, state, offered_at)
			VALUES ($1, $2, 'offered', $3) RETURNING id`, id, req.UserID, req.At).Scan(&assignmentID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET last_offer_at = $2 WHERE id = $1`, req.UserID, req.At); err != nil {
			return err
		}
		st, err := loadStrategy(ctx, tx, in.ServiceID)
		if err != nil {
			return err
		}
		ar := req.Prepare(in, st)
		ar.UserID, ar.InteractionID = req.UserID, id
		party, _, err = acceptTx(ctx, tx, in, assignmentID, ar)
		return err
	})
	return party, id, err
}

// attachSurvey stores the survey token of a chat that has none yet and returns the SurveyURL
// change to write with it; nothing when the chat already has a link (one survey per chat, also
// when it is accepted again after a transfer). The caller holds the interaction's lock.
func attachSurvey(ctx context.Context, tx *Tx, interactionID string, link agent.SurveyLink) ([]userdata.Change, error) {
	tag, err := tx.Exec(ctx, `UPDATE interactions SET survey_token_hash = $2 WHERE id = $1 AND survey_token_hash IS NULL`,
		interactionID, link.TokenHash)
	if err != nil || tag.RowsAffected() == 0 {
		return nil, err
	}
	visible := true
	return []userdata.Change{{Key: userdata.KeySurveyURL, Value: link.URL, Visible: &visible}}, nil
}

// writeStrategyUserData writes changes as owner "strategy" (routed UserData, SurveyURL).
func writeStrategyUserData(ctx context.Context, tx *Tx, interactionID string, changes []userdata.Change, lim userdata.Limits) error {
	if len(changes) == 0 {
		return nil
	}
	seq, err := planAndApply(ctx, tx, interactionID, userdata.OwnerStrategy, "strategy", changes, lim)
	if err != nil {
		return err
	}
	return tx.notifySide(ctx, interactionID, seq)
}

// Decline refuses an offer: the interaction goes back to its place in the queue and will not be
// offered to this agent again.
func (s *AgentStore) Decline(ctx context.Context, userID int64, interactionID string, at time.Time) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		if _, err := lockInteraction(ctx, tx, interactionID); err != nil {
			return err
		}
		// finished_at is on the domain's clock: the decline cool-down is measured from it.
		tag, err := tx.Exec(ctx, `UPDATE assignments SET state = 'declined', finished_at = $3
			WHERE interaction_id = $1 AND user_id = $2 AND state = 'offered'`, interactionID, userID, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errOfferGone()
		}
		if err := requeue(ctx, tx, interactionID); err != nil {
			return err
		}
		return tx.notifyAgent(ctx, userID)
	})
}

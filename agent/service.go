package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"agentd"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// Store is what an agent's work on chats needs from storage: presence, offers and assignments,
// and the operations on a chat. Each changing method is one commit that also announces what it
// changed; the ones touching a chat (End, WrapUp, ChangeUserData, CoBrowseJoined, Transfer)
// write their audit row and their UserData in that same commit.
type Store interface {
	SetState(ctx context.Context, userID int64, state State, reason string, at time.Time) (User, error)
	Heartbeat(ctx context.Context, userID int64, at time.Time) error
	Assignments(ctx context.Context, userID int64) ([]Assignment, error)
	Assignment(ctx context.Context, userID int64, interactionID string) (Assignment, error)
	QueueCounts(ctx context.Context, userID int64) (map[string]int, error)
	ServiceStrategy(ctx context.Context, serviceID int64) (Strategy, error)
	Services(ctx context.Context) ([]ServiceInfo, error)
	Users(ctx context.Context) ([]User, error)
	Accept(ctx context.Context, req AcceptRequest) (chat.Party, []chat.Event, error)
	PickUp(ctx context.Context, req PickUpRequest) (chat.Party, string, error)
	Decline(ctx context.Context, userID int64, interactionID string, at time.Time) error
	Transfer(ctx context.Context, req TransferRequest) ([]chat.Event, error)
	End(ctx context.Context, req EndRequest) error
	WrapUp(ctx context.Context, req WrapUpRequest) error
	ChangeUserData(ctx context.Context, req UserDataEdit) error
	CoBrowseJoined(ctx context.Context, req CoBrowseRequest) error
	CannedResponses(ctx context.Context, serviceID int64, query string, limit int) ([]CannedResponse, error)
}

// Chats is what the agent side needs from the chat core.
type Chats interface {
	Party(ctx context.Context, partyID string) (chat.Party, error)
	Send(ctx context.Context, p chat.Party, commandID, text, contentType string) (chat.Event, error)
	SendTyping(ctx context.Context, p chat.Party, isTyping bool, text string) (time.Time, error)
	SendNotice(ctx context.Context, p chat.Party, commandID string, payload json.RawMessage) (chat.Notice, error)
	Config() chat.Config
}

// Config configures the agent's work on chats (docs/configuration.md).
type Config struct {
	// PublicURL is agentd's base URL as customers reach it, for survey links.
	PublicURL string
	// CoBrowseURL is the co-browse provider's URL template ({CoBrowseSessionId}, {interactionId},
	// {context}); empty when no provider is configured (docs/cobrowse.md).
	CoBrowseURL string
	// CoBrowseContextKey signs the {context} placeholder's token (notify.SignCoBrowseContext).
	CoBrowseContextKey string
	// CoBrowseContextTTL is how long a context verifies; notify.CoBrowseContextTTL when 0.
	CoBrowseContextTTL time.Duration
}

// Service is an agent's work on chats: presence, offers, the chat itself (messages, typing,
// notices, UserData), co-browse, transfer, end and wrap-up. The console and tests call it.
type Service struct {
	store  Store
	chat   Chats
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
}

// Deps is what a Service is built from.
type Deps struct {
	Store  Store
	Chat   Chats
	Config Config
	Logger *slog.Logger
	Now    func() time.Time // time.Now when nil
}

// NewService returns the service.
func NewService(d Deps) *Service {
	return &Service{store: d.Store, chat: d.Chat, cfg: d.Config, logger: d.Logger, now: clockOr(d.Now)}
}

// Config returns the configuration.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) limits() userdata.Limits { return s.chat.Config().UserDataLimits }

// SetState changes the agent's presence. Not ready needs one of NotReadyReasons (or the router's
// own reason).
func (s *Service) SetState(ctx context.Context, u User, state State, reason string) (User, error) {
	switch state {
	case StateReady, StateOffline:
		reason = ""
	case StateNotReady:
		if reason == "" {
			reason = "Break"
		}
		if utf8.RuneCountInString(reason) > 100 || strings.ContainsAny(reason, "\x00\r\n") {
			return User{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "The not-ready reason must be one short line.")
		}
	default:
		return User{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "State must be ready, not_ready or offline.")
	}
	return s.store.SetState(ctx, u.ID, state, reason, s.now())
}

// Heartbeat records a live console.
func (s *Service) Heartbeat(ctx context.Context, u User) error {
	return s.store.Heartbeat(ctx, u.ID, s.now())
}

// Assignments returns the agent's offered and active chats.
func (s *Service) Assignments(ctx context.Context, u User) ([]Assignment, error) {
	return s.store.Assignments(ctx, u.ID)
}

// Assignment returns one of the agent's chats; any other chat is not_your_chat.
func (s *Service) Assignment(ctx context.Context, u User, interactionID string) (Assignment, error) {
	return s.store.Assignment(ctx, u.ID, interactionID)
}

// QueueCounts returns the waiting chats per service of the agent.
func (s *Service) QueueCounts(ctx context.Context, u User) (map[string]int, error) {
	return s.store.QueueCounts(ctx, u.ID)
}

// Strategy returns a service's strategy.
func (s *Service) Strategy(ctx context.Context, serviceID int64) (Strategy, error) {
	return s.store.ServiceStrategy(ctx, serviceID)
}

// Services lists the services.
func (s *Service) Services(ctx context.Context) ([]ServiceInfo, error) { return s.store.Services(ctx) }

// TransferAgents returns the agents u can transfer a chat of service to: ready, enabled, in that
// service, and not u.
func (s *Service) TransferAgents(ctx context.Context, u User, service string) ([]User, error) {
	users, err := s.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	var out []User
	for _, o := range users {
		if o.ID != u.ID && o.State == StateReady && !o.Disabled && slices.Contains(o.Services, service) {
			out = append(out, o)
		}
	}
	return out, nil
}

// CannedResponses searches the canned responses usable in a service (0: all).
func (s *Service) CannedResponses(ctx context.Context, serviceID int64, query string) ([]CannedResponse, error) {
	return s.store.CannedResponses(ctx, serviceID, strings.TrimSpace(query), 50)
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the stored form of a survey token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte("survey:" + token))
	return h[:]
}

// surveyLink returns a new survey token's hash and the SurveyURL for it.
func (s *Service) surveyLink(st Strategy, in chat.Interaction) SurveyLink {
	token := newToken()
	url := strings.TrimRight(s.cfg.PublicURL, "/") + "/survey/" + token
	if st.Survey.URLTemplate != "" {
		url = Expand(st.Survey.URLTemplate, map[string]string{"token": token, "interactionId": in.ID, "service": in.ServiceName})
	}
	return SurveyLink{TokenHash: HashToken(token), URL: url}
}

// Accept accepts an offer made to the agent.
func (s *Service) Accept(ctx context.Context, u User, interactionID string) (chat.Party, error) {
	a, err := s.store.Assignment(ctx, u.ID, interactionID)
	if err != nil {
		return chat.Party{}, err
	}
	if a.State != AssignOffered {
		return chat.Party{}, agentd.Errorf(agentd.ECONFLICT, "offer_gone", "This chat is no longer offered to you.")
	}
	st, err := s.store.ServiceStrategy(ctx, a.Interaction.ServiceID)
	if err != nil {
		return chat.Party{}, err
	}
	party, _, err := s.store.Accept(ctx, s.acceptRequest(u, a.Interaction, st))
	return party, err
}

// acceptRequest is what accepting chat in writes as its strategy st says: routed UserData and,
// for services that survey when a chat is routed, its survey link.
func (s *Service) acceptRequest(u User, in chat.Interaction, st Strategy) AcceptRequest {
	req := AcceptRequest{UserID: u.ID, InteractionID: in.ID, AgentName: u.DisplayName, Limits: s.limits()}
	vars := map[string]string{"interactionId": in.ID, "service": in.ServiceName}
	if st.SurveyWhen() == "routed" {
		link := s.surveyLink(st, in)
		req.Survey, vars["surveyUrl"] = &link, link.URL
	}
	for _, k := range slices.Sorted(maps.Keys(st.RoutedUserData)) {
		if k == userdata.KeySurveyURL && vars["surveyUrl"] != "" {
			continue
		}
		visible := slices.Contains(st.VisibleUserData, k)
		req.RoutedUserData = append(req.RoutedUserData, userdata.Change{Key: k, Value: Expand(st.RoutedUserData[k], vars), Visible: &visible})
	}
	return req
}

// PickUp takes the oldest chat waiting in service, one of the agent's services, at once (the
// queue list's "Pick up"): offered and accepted in one commit, within the agent's capacity. It
// returns the chat's id.
func (s *Service) PickUp(ctx context.Context, u User, service string) (string, error) {
	if !slices.Contains(u.Services, service) {
		return "", agentd.Errorf(agentd.EFORBIDDEN, "not_your_service", "You do not take chats of %q.", service)
	}
	_, id, err := s.store.PickUp(ctx, PickUpRequest{UserID: u.ID, Service: service, At: s.now(),
		Prepare: func(in chat.Interaction, st Strategy) AcceptRequest { return s.acceptRequest(u, in, st) }})
	return id, err
}

// Decline refuses an offer; the chat goes to another agent (the commit wakes the router).
func (s *Service) Decline(ctx context.Context, u User, interactionID string) error {
	return s.store.Decline(ctx, u.ID, interactionID, s.now())
}

// party returns the agent's party in one of its active chats.
func (s *Service) party(ctx context.Context, u User, interactionID string) (chat.Party, Assignment, error) {
	a, err := s.store.Assignment(ctx, u.ID, interactionID)
	if err != nil {
		return chat.Party{}, Assignment{}, err
	}
	if a.State != AssignActive || a.PartyID == "" {
		return chat.Party{}, Assignment{}, agentd.Errorf(agentd.ECONFLICT, "not_accepted", "Accept the chat first.")
	}
	p, err := s.chat.Party(ctx, a.PartyID)
	return p, a, err
}

// Send sends a message from the agent.
func (s *Service) Send(ctx context.Context, u User, interactionID, commandID, text string) (chat.Event, error) {
	p, _, err := s.party(ctx, u, interactionID)
	if err != nil {
		return chat.Event{}, err
	}
	return s.chat.Send(ctx, p, commandID, text, chat.ContentText)
}

// Typing tells the customer the agent is typing.
func (s *Service) Typing(ctx context.Context, u User, interactionID string, on bool, text string) error {
	p, _, err := s.party(ctx, u, interactionID)
	if err != nil {
		return err
	}
	_, err = s.chat.SendTyping(ctx, p, on, text)
	return err
}

// SendNotice sends a custom notice to the customer, while the chat is live: after the end nobody
// is there to read it.
func (s *Service) SendNotice(ctx context.Context, u User, interactionID, commandID string, payload json.RawMessage) (chat.Notice, error) {
	p, a, err := s.party(ctx, u, interactionID)
	if err != nil {
		return chat.Notice{}, err
	}
	if a.Interaction.State.Over() {
		return chat.Notice{}, agentd.Errorf(agentd.ECONFLICT, "session_ended", "The chat session has ended.")
	}
	return s.chat.SendNotice(ctx, p, commandID, payload)
}

// ChangeUserData edits UserData as the agent (not system keys); visible marks a key readable by
// the customer. Allowed while the chat is live: an ended chat is read-only until its wrap-up,
// which records the disposition itself (session_ended). The edit and its audit row commit
// together.
func (s *Service) ChangeUserData(ctx context.Context, u User, interactionID, commandID string, changes []userdata.Change) error {
	if len(changes) == 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "No UserData to change.")
	}
	return s.store.ChangeUserData(ctx, UserDataEdit{UserID: u.ID, InteractionID: interactionID, CommandID: commandID,
		AgentName: u.DisplayName, Changes: changes, Limits: s.limits()})
}

// End ends the chat for the customer; the agent then wraps it up. Services whose survey is sent
// when the chat ends get their SurveyURL in the same commit.
func (s *Service) End(ctx context.Context, u User, interactionID string) error {
	a, err := s.store.Assignment(ctx, u.ID, interactionID)
	if err != nil {
		return err
	}
	if a.State != AssignActive {
		return agentd.Errorf(agentd.ECONFLICT, "not_accepted", "Accept the chat first.")
	}
	if a.Interaction.State.Over() {
		return nil
	}
	req := EndRequest{UserID: u.ID, InteractionID: interactionID, Limits: s.limits(), At: s.now()}
	if req.Survey, err = s.surveyAtEnd(ctx, a.Interaction); err != nil {
		return err
	}
	return s.store.End(ctx, req)
}

// surveyAtEnd returns a survey link for services whose survey is attached when the chat ends
// (the store attaches it only to a chat that has none yet); nil for the others.
func (s *Service) surveyAtEnd(ctx context.Context, in chat.Interaction) (*SurveyLink, error) {
	st, err := s.store.ServiceStrategy(ctx, in.ServiceID)
	if err != nil || st.SurveyWhen() != "ended" {
		return nil, err
	}
	link := s.surveyLink(st, in)
	return &link, nil
}

// WrapUp finishes the agent's work on an ended chat with a disposition and notes ("Done").
func (s *Service) WrapUp(ctx context.Context, u User, interactionID, disposition, notes string) error {
	disposition = strings.TrimSpace(disposition)
	if utf8.RuneCountInString(notes) > 4000 || !utf8.ValidString(notes) || strings.IndexByte(notes, 0) >= 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Notes must be text of at most 4000 characters.")
	}
	a, err := s.store.Assignment(ctx, u.ID, interactionID)
	if err != nil {
		return err
	}
	req := WrapUpRequest{UserID: u.ID, InteractionID: interactionID, Disposition: disposition, Notes: notes,
		Limits: s.limits(), AgentName: u.DisplayName}
	if st := a.Interaction.State; st == chat.StateAbandoned || st == chat.StateEnded {
		// A customer who left first gets the survey link now, if the strategy says "ended".
		if req.Survey, err = s.surveyAtEnd(ctx, a.Interaction); err != nil {
			return err
		}
	}
	return s.store.WrapUp(ctx, req)
}

// Transfer hands an active chat to a service queue or a ready agent (the commit wakes the router).
func (s *Service) Transfer(ctx context.Context, u User, interactionID string, target TransferTarget) error {
	if (target.Service == "") == (target.UserID == 0) {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Transfer to either a service or an agent.")
	}
	_, err := s.store.Transfer(ctx, TransferRequest{UserID: u.ID, InteractionID: interactionID, Target: target, At: s.now()})
	return err
}

// CoBrowseURL returns the provider URL for agent u joining co-browse session sessionID of an
// interaction, or "" when no provider is configured. {context} becomes a fresh signed context
// (docs/cobrowse.md) naming u, the interaction and the session.
func (s *Service) CoBrowseURL(u User, sessionID, interactionID string) string {
	if s.cfg.CoBrowseURL == "" {
		return ""
	}
	vars := map[string]string{"CoBrowseSessionId": urlEscape(sessionID), "interactionId": urlEscape(interactionID)}
	if strings.Contains(s.cfg.CoBrowseURL, "{context}") {
		vars["context"] = urlEscape(notify.SignCoBrowseContext([]byte(s.cfg.CoBrowseContextKey),
			notify.CoBrowseAgent{ID: u.ID, Username: u.Username, Name: u.DisplayName}, interactionID, sessionID, s.now(), s.cfg.CoBrowseContextTTL))
	}
	return Expand(s.cfg.CoBrowseURL, vars)
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// keyCoBrowseLast is agentd's own record of the co-browse session the agent last joined, so
// opening the same session again changes nothing.
const keyCoBrowseLast = userdata.ReservedPrefix + "cobrowse.last"

// CoBrowseJoined records that the agent's console opened co-browse session sessionID: it writes
// CoBrowseAssociated, CoBrowseStartTime and CoBrowseSessionsQuantity back to UserData and tells
// the customer with a notice, all in one commit. Opening the same id again changes nothing.
func (s *Service) CoBrowseJoined(ctx context.Context, u User, interactionID, sessionID string) error {
	at := s.now()
	return s.store.CoBrowseJoined(ctx, CoBrowseRequest{UserID: u.ID, InteractionID: interactionID, AgentName: u.DisplayName,
		Limits: s.limits(), Decide: func(entries []userdata.Entry) (*CoBrowseWrite, error) {
			return planCoBrowse(entries, sessionID, at)
		}})
}

// planCoBrowse decides what joining co-browse session sessionID writes, given the chat's UserData
// as it is under the commit's lock; nil when the agent already joined that session.
func planCoBrowse(entries []userdata.Entry, sessionID string, at time.Time) (*CoBrowseWrite, error) {
	var current, associated string
	quantity := 0
	for _, e := range entries {
		switch e.Key {
		case userdata.KeyCoBrowseSessionID:
			_ = json.Unmarshal(e.Value, &current)
		case userdata.KeyCoBrowseSessionsQuantity:
			var n float64
			_ = json.Unmarshal(e.Value, &n)
			quantity = int(n)
		case keyCoBrowseLast:
			_ = json.Unmarshal(e.Value, &associated)
		}
	}
	if current != sessionID {
		return nil, agentd.Errorf(agentd.ECONFLICT, "cobrowse_stale", "The customer's co-browse session id has changed.")
	}
	if associated == sessionID {
		return nil, nil
	}
	notice, _ := json.Marshal(map[string]string{"type": "cobrowse", "event": "agent_joined", "CoBrowseSessionId": sessionID})
	return &CoBrowseWrite{
		AgentKeys: []userdata.Change{
			{Key: userdata.KeyCoBrowseAssociated, Value: true},
			{Key: userdata.KeyCoBrowseStartTime, Value: at.UTC().Format(time.RFC3339)},
			{Key: userdata.KeyCoBrowseSessionsQuantity, Value: quantity + 1},
		},
		SystemKeys: []userdata.Change{{Key: keyCoBrowseLast, Value: sessionID}},
		Notice:     notice,
		Audit:      map[string]any{"session": sessionID, "n": strconv.Itoa(quantity + 1)},
	}, nil
}

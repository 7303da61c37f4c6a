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
	"agentd/userdata"
)

// Store persists users, presence and routing. Changing methods notify the other nodes in their
// transaction and the local node after commit.
type Store interface {
	CreateUser(ctx context.Context, nu NewUser, passwordHash string) (User, error)
	User(ctx context.Context, id int64) (User, error)
	Users(ctx context.Context) ([]User, error)
	UserForLogin(ctx context.Context, username string) (User, string, error)
	SetState(ctx context.Context, userID int64, state State, reason string) (User, error)
	Heartbeat(ctx context.Context, userID int64) error
	SweepAbsent(ctx context.Context, grace time.Duration) ([]int64, error)
	Assign(ctx context.Context, max int) ([]Offer, error)
	ExpireOffers(ctx context.Context) (int, error)
	Accept(ctx context.Context, req AcceptRequest) (chat.Party, []chat.Event, error)
	Decline(ctx context.Context, userID int64, interactionID string) error
	Assignments(ctx context.Context, userID int64) ([]Assignment, error)
	Assignment(ctx context.Context, userID int64, interactionID string) (Assignment, error)
	QueueCounts(ctx context.Context, userID int64) (map[string]int, error)
	ServiceStrategy(ctx context.Context, serviceID int64) (Strategy, error)
	Transfer(ctx context.Context, req TransferRequest) ([]chat.Event, error)
	WrapUp(ctx context.Context, req WrapUpRequest) error
	SetSurveyToken(ctx context.Context, interactionID string, hash []byte) (bool, error)
	SurveyByToken(ctx context.Context, hash []byte) (SurveyTarget, error)
	SubmitSurvey(ctx context.Context, hash []byte, answers map[string]string, lim userdata.Limits) (string, error)
	SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error)
	Audit(ctx context.Context, userID int64, action, target string, details any) error
	CreateWebSession(ctx context.Context, token string, userID int64, csrf string, expires time.Time) error
	WebSession(ctx context.Context, token string, idle time.Duration) (User, string, error)
	DeleteWebSession(ctx context.Context, token string) error
	CannedResponses(ctx context.Context, serviceID int64, query string, limit int) ([]CannedResponse, error)
	SaveCannedResponse(ctx context.Context, userID int64, c CannedResponse) (int64, error)
	DeleteCannedResponse(ctx context.Context, userID, id int64) error
	Services(ctx context.Context) ([]ServiceInfo, error)
	RecentChats(ctx context.Context, userID int64, limit int) ([]RecentChat, error)
	Handled(ctx context.Context, userID int64, interactionID string) (bool, error)
	WrapInfo(ctx context.Context, interactionID string) (disposition, notes string, err error)
}

// Config configures the agent side (docs/configuration.md).
type Config struct {
	// PublicURL is agentd's base URL as customers reach it, for survey links.
	PublicURL string
	// CoBrowseURL is the co-browse provider's URL template ({CoBrowseSessionId}, {interactionId});
	// empty when no provider is configured.
	CoBrowseURL string
	// RouteInterval is how often the router looks at the queues without being woken.
	RouteInterval time.Duration
	// AbsentGrace is how long an agent may have no console open before being set offline.
	AbsentGrace time.Duration
}

// Service is the agent side's API: what the console, the CLI and tests call.
type Service struct {
	store  Store
	chat   *chat.Service
	cfg    Config
	logger *slog.Logger
	wake   chan struct{}
}

// NewService returns the service.
func NewService(store Store, chats *chat.Service, cfg Config, logger *slog.Logger) *Service {
	if cfg.RouteInterval == 0 {
		cfg.RouteInterval = time.Second
	}
	if cfg.AbsentGrace == 0 {
		cfg.AbsentGrace = 90 * time.Second
	}
	return &Service{store: store, chat: chats, cfg: cfg, logger: logger, wake: make(chan struct{}, 1)}
}

// Config returns the configuration.
func (s *Service) Config() Config { return s.cfg }

// Chat returns the chat service.
func (s *Service) Chat() *chat.Service { return s.chat }

// Wake asks the router to look at the queues now (a chat was queued, an agent became ready).
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run routes until ctx is done: on every wake-up and every RouteInterval it expires overdue
// offers and assigns queued chats; now and then it sets absent agents offline. Every node runs
// it; the row locks make concurrent routers safe.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.RouteInterval)
	defer tick.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
		if time.Since(lastSweep) > s.cfg.AbsentGrace/3 {
			lastSweep = time.Now()
			if ids, err := s.store.SweepAbsent(ctx, s.cfg.AbsentGrace); err != nil {
				s.logIfLive(ctx, "sweep absent agents", err)
			} else if len(ids) > 0 {
				s.logger.Info("agents without a console set offline", "agent_ids", ids)
			}
		}
		s.RouteOnce(ctx)
	}
}

func (s *Service) logIfLive(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		s.logger.Error(what, "err", err)
	}
}

// RouteOnce expires overdue offers and assigns as many queued chats as it can.
func (s *Service) RouteOnce(ctx context.Context) {
	if _, err := s.store.ExpireOffers(ctx); err != nil {
		s.logIfLive(ctx, "expire offers", err)
		return
	}
	for range 20 { // at most 200 offers, so one pass cannot starve the rest of the loop
		offers, err := s.store.Assign(ctx, 10)
		if err != nil {
			s.logIfLive(ctx, "assign", err)
			return
		}
		if len(offers) == 0 {
			return
		}
		for _, offer := range offers {
			if !offer.AutoAnswered {
				continue
			}
			u, err := s.store.User(ctx, offer.UserID)
			if err == nil {
				_, err = s.Accept(ctx, u, offer.InteractionID)
			}
			if err != nil {
				s.logIfLive(ctx, "auto-answer", err)
			}
		}
	}
}

// Login checks a username and password. Unknown users, wrong passwords and disabled accounts all
// give the same error.
func (s *Service) Login(ctx context.Context, username, password string) (User, error) {
	u, hash, err := s.store.UserForLogin(ctx, username)
	if err != nil && agentd.ErrorClass(err) != agentd.ENOTFOUND {
		return User{}, err
	}
	if !CheckPassword(hash, password) || u.Disabled {
		return User{}, agentd.Errorf(agentd.EUNAUTHORIZED, "bad_credentials", "Wrong username or password.")
	}
	return u, nil
}

// SessionIdle is how long a browser session lives without being used.
const SessionIdle = 12 * time.Hour

// StartWebSession opens a browser session for a signed-in user and returns its cookie value and
// CSRF token. Only a hash of the cookie value is stored.
func (s *Service) StartWebSession(ctx context.Context, u User) (token, csrf string, err error) {
	token, csrf = newToken(), newToken()
	if err := s.store.CreateWebSession(ctx, token, u.ID, csrf, time.Now().Add(SessionIdle)); err != nil {
		return "", "", err
	}
	return token, csrf, s.store.Audit(ctx, u.ID, "session.login", u.Username, nil)
}

// WebSession returns the user and CSRF token of a browser session.
func (s *Service) WebSession(ctx context.Context, token string) (User, string, error) {
	if token == "" {
		return User{}, "", agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in.")
	}
	return s.store.WebSession(ctx, token, SessionIdle)
}

// EndWebSession signs a browser session out.
func (s *Service) EndWebSession(ctx context.Context, token string) error {
	return s.store.DeleteWebSession(ctx, token)
}

// Audit records an action of a user.
func (s *Service) Audit(ctx context.Context, u User, action, target string, details any) error {
	return s.store.Audit(ctx, u.ID, action, target, details)
}

// CreateUser creates a user.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	if err := nu.Validate(); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	return s.store.CreateUser(ctx, nu, hash)
}

// Users lists users.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.Users(ctx) }

// User returns a user.
func (s *Service) User(ctx context.Context, id int64) (User, error) { return s.store.User(ctx, id) }

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
	nu, err := s.store.SetState(ctx, u.ID, state, reason)
	if err == nil && state == StateReady {
		s.Wake()
	}
	return nu, err
}

// Heartbeat records a live console.
func (s *Service) Heartbeat(ctx context.Context, u User) error { return s.store.Heartbeat(ctx, u.ID) }

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

// surveyURL returns a new survey token's hash and the SurveyURL for it.
func (s *Service) surveyURL(st Strategy, in chat.Interaction) ([]byte, string) {
	token := newToken()
	url := strings.TrimRight(s.cfg.PublicURL, "/") + "/survey/" + token
	if st.Survey.URLTemplate != "" {
		url = Expand(st.Survey.URLTemplate, map[string]string{"token": token, "interactionId": in.ID, "service": in.ServiceName})
	}
	return HashToken(token), url
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
	req := AcceptRequest{UserID: u.ID, InteractionID: interactionID, AgentName: u.DisplayName, Limits: s.chat.Config().UserDataLimits}
	vars := map[string]string{"interactionId": interactionID, "service": a.Interaction.ServiceName}
	if st.SurveyWhen() == "routed" {
		var url string
		req.SurveyTokenHash, url = s.surveyURL(st, a.Interaction)
		vars["surveyUrl"] = url
		req.SurveyURL = url
	}
	for _, k := range slices.Sorted(maps.Keys(st.RoutedUserData)) {
		if k == userdata.KeySurveyURL && vars["surveyUrl"] != "" {
			continue
		}
		visible := contains(st.VisibleUserData, k)
		req.RoutedUserData = append(req.RoutedUserData, userdata.Change{Key: k, Value: Expand(st.RoutedUserData[k], vars), Visible: &visible})
	}
	party, _, err := s.store.Accept(ctx, req)
	if err != nil {
		return chat.Party{}, err
	}
	return party, nil
}

func visibleChange(key, value string) userdata.Change {
	t := true
	return userdata.Change{Key: key, Value: value, Visible: &t}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Decline refuses an offer; the chat goes to another agent.
func (s *Service) Decline(ctx context.Context, u User, interactionID string) error {
	if err := s.store.Decline(ctx, u.ID, interactionID); err != nil {
		return err
	}
	s.Wake()
	return nil
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

// SendNotice sends a custom notice to the customer.
func (s *Service) SendNotice(ctx context.Context, u User, interactionID, commandID string, payload json.RawMessage) (chat.Notice, error) {
	p, _, err := s.party(ctx, u, interactionID)
	if err != nil {
		return chat.Notice{}, err
	}
	return s.chat.SendNotice(ctx, p, commandID, payload)
}

// ChangeUserData edits UserData as the agent (not system keys); visible marks a key readable by
// the customer. Allowed until the chat is wrapped up.
func (s *Service) ChangeUserData(ctx context.Context, u User, interactionID, commandID string, changes []userdata.Change) error {
	a, err := s.store.Assignment(ctx, u.ID, interactionID)
	if err != nil {
		return err
	}
	if a.State != AssignActive {
		return agentd.Errorf(agentd.ECONFLICT, "not_accepted", "Accept the chat first.")
	}
	p, err := s.chat.Party(ctx, a.PartyID)
	if err != nil {
		return err
	}
	if _, err := s.chat.ChangeUserData(ctx, p, commandID, changes); err != nil {
		return err
	}
	return s.store.Audit(ctx, u.ID, "userdata.change", interactionID, changeKeys(changes))
}

func changeKeys(changes []userdata.Change) map[string]any {
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = c.Key
	}
	return map[string]any{"keys": keys}
}

// End ends the chat for the customer; the agent then wraps it up.
func (s *Service) End(ctx context.Context, u User, interactionID string) error {
	p, a, err := s.party(ctx, u, interactionID)
	if err != nil {
		return err
	}
	if !a.Interaction.State.Over() {
		if err := s.attachSurveyAtEnd(ctx, a.Interaction); err != nil {
			return err
		}
		if err := s.chat.End(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// attachSurveyAtEnd writes SurveyURL for services whose survey is attached when the chat ends.
func (s *Service) attachSurveyAtEnd(ctx context.Context, in chat.Interaction) error {
	st, err := s.store.ServiceStrategy(ctx, in.ServiceID)
	if err != nil || st.SurveyWhen() != "ended" {
		return err
	}
	hash, url := s.surveyURL(st, in)
	if set, err := s.store.SetSurveyToken(ctx, in.ID, hash); err != nil || !set {
		return err // a link was issued already
	}
	_, err = s.chat.ChangeUserDataAs(ctx, in.ID, userdata.OwnerStrategy, "strategy", []userdata.Change{visibleChange(userdata.KeySurveyURL, url)})
	return err
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
	if a.Interaction.State == chat.StateAbandoned || a.Interaction.State == chat.StateEnded {
		// A customer who left first gets the survey link now, if the strategy says "ended".
		if err := s.attachSurveyAtEnd(ctx, a.Interaction); err != nil {
			return err
		}
	}
	return s.store.WrapUp(ctx, WrapUpRequest{UserID: u.ID, InteractionID: interactionID, Disposition: disposition, Notes: notes,
		Limits: s.chat.Config().UserDataLimits, AgentName: u.DisplayName})
}

// Transfer hands an active chat to a service queue or a ready agent.
func (s *Service) Transfer(ctx context.Context, u User, interactionID string, target TransferTarget) error {
	if (target.Service == "") == (target.UserID == 0) {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Transfer to either a service or an agent.")
	}
	if _, err := s.store.Transfer(ctx, TransferRequest{UserID: u.ID, InteractionID: interactionID, Target: target}); err != nil {
		return err
	}
	s.Wake()
	return nil
}

// CoBrowseURL returns the provider URL for a co-browse session id, or "" when no provider is
// configured.
func (s *Service) CoBrowseURL(sessionID, interactionID string) string {
	if s.cfg.CoBrowseURL == "" {
		return ""
	}
	return Expand(s.cfg.CoBrowseURL, map[string]string{
		"CoBrowseSessionId": urlEscape(sessionID), "interactionId": urlEscape(interactionID),
	})
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

// CoBrowseJoined records that the agent's console opened co-browse session sessionID: it writes
// CoBrowseAssociated, CoBrowseStartTime and CoBrowseSessionsQuantity back to UserData and tells
// the customer with a notice. Opening the same id again changes nothing.
func (s *Service) CoBrowseJoined(ctx context.Context, u User, interactionID, sessionID string) error {
	p, _, err := s.party(ctx, u, interactionID)
	if err != nil {
		return err
	}
	entries, err := s.chat.UserData(ctx, interactionID)
	if err != nil {
		return err
	}
	var current string
	quantity := 0
	associated := ""
	for _, e := range entries {
		switch e.Key {
		case userdata.KeyCoBrowseSessionID:
			_ = json.Unmarshal(e.Value, &current)
		case userdata.KeyCoBrowseSessionsQuantity:
			var n float64
			_ = json.Unmarshal(e.Value, &n)
			quantity = int(n)
		case "_agentd.cobrowse.last":
			_ = json.Unmarshal(e.Value, &associated)
		}
	}
	if current != sessionID {
		return agentd.Errorf(agentd.ECONFLICT, "cobrowse_stale", "The customer's co-browse session id has changed.")
	}
	if associated == sessionID {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if _, err := s.chat.ChangeUserData(ctx, p, "", []userdata.Change{
		{Key: userdata.KeyCoBrowseAssociated, Value: true},
		{Key: userdata.KeyCoBrowseStartTime, Value: now},
		{Key: userdata.KeyCoBrowseSessionsQuantity, Value: quantity + 1},
	}); err != nil {
		return err
	}
	if _, err := s.chat.ChangeUserDataAs(ctx, interactionID, userdata.OwnerSystem, "cobrowse", []userdata.Change{
		{Key: "_agentd.cobrowse.last", Value: sessionID},
	}); err != nil {
		return err
	}
	payload, _ := json.Marshal(map[string]string{"type": "cobrowse", "event": "agent_joined", "CoBrowseSessionId": sessionID})
	if _, err := s.chat.SendNotice(ctx, p, "", payload); err != nil {
		return err
	}
	return s.store.Audit(ctx, u.ID, "cobrowse.joined", interactionID, map[string]any{"session": sessionID, "n": strconv.Itoa(quantity + 1)})
}

// SurveyForm is what the survey page shows.
type SurveyForm struct {
	Questions []SurveyQuestion
	Answered  bool
}

// Survey returns the survey behind a token.
func (s *Service) Survey(ctx context.Context, token string) (SurveyForm, error) {
	t, err := s.store.SurveyByToken(ctx, HashToken(token))
	if err != nil {
		return SurveyForm{}, err
	}
	st, err := s.store.ServiceStrategy(ctx, t.ServiceID)
	if err != nil {
		return SurveyForm{}, err
	}
	return SurveyForm{Questions: st.Questions(), Answered: t.Answered}, nil
}

// SubmitSurvey validates and stores the answers of a survey, once.
func (s *Service) SubmitSurvey(ctx context.Context, token string, answers map[string]string) error {
	form, err := s.Survey(ctx, token)
	if err != nil {
		return err
	}
	clean := map[string]string{}
	for _, q := range form.Questions {
		v := strings.TrimSpace(answers[q.ID])
		switch {
		case v == "":
			continue
		case q.Type == "scale":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return agentd.Errorf(agentd.EINVALID, "invalid_argument", "%s: choose a value from 1 to 5.", q.Label)
			}
		case !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 || utf8.RuneCountInString(v) > 2000:
			return agentd.Errorf(agentd.EINVALID, "invalid_argument", "%s: at most 2000 characters of text.", q.Label)
		}
		clean[q.ID] = v
	}
	if len(clean) == 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Please answer at least one question.")
	}
	_, err = s.store.SubmitSurvey(ctx, HashToken(token), clean, s.chat.Config().UserDataLimits)
	return err
}

// SurveyAnswers returns the survey answers of a chat the agent handles or handled.
func (s *Service) SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error) {
	return s.store.SurveyAnswers(ctx, interactionID)
}

// CannedResponses searches the canned responses usable in a service (0: all).
func (s *Service) CannedResponses(ctx context.Context, serviceID int64, query string) ([]CannedResponse, error) {
	return s.store.CannedResponses(ctx, serviceID, strings.TrimSpace(query), 50)
}

// Services lists the services.
func (s *Service) Services(ctx context.Context) ([]ServiceInfo, error) { return s.store.Services(ctx) }

// RecentChats returns the chats the agent finished most recently.
func (s *Service) RecentChats(ctx context.Context, u User) ([]RecentChat, error) {
	return s.store.RecentChats(ctx, u.ID, 20)
}

// CanRead reports whether u may read an interaction's history: supervisors and admins always,
// agents for the chats they handled.
func (s *Service) CanRead(ctx context.Context, u User, interactionID string) error {
	if u.Role.AtLeast(RoleSupervisor) {
		return nil
	}
	ok, err := s.store.Handled(ctx, u.ID, interactionID)
	if err != nil {
		return err
	}
	if !ok {
		return agentd.Errorf(agentd.EFORBIDDEN, "not_your_chat", "This chat is not one of yours.")
	}
	return nil
}

// WrapInfo returns an interaction's disposition and notes.
func (s *Service) WrapInfo(ctx context.Context, interactionID string) (string, string, error) {
	return s.store.WrapInfo(ctx, interactionID)
}

package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"agentd"
	"agentd/userdata"
)

// Config is the chat core's tunable part (docs/configuration.md).
type Config struct {
	MaxMessageChars  int           // characters per message
	MaxNoticeBytes   int           // encoded bytes per custom notice payload
	MaxTypingChars   int           // typing preview is cut to this
	EndedReadable    time.Duration // how long an ended session stays readable by its customer
	StartRetryWindow time.Duration // how long a retried start finds its first attempt
	UserDataLimits   userdata.Limits
}

// DefaultConfig is used where a field is zero.
var DefaultConfig = Config{
	MaxMessageChars:  4096,
	MaxNoticeBytes:   8192,
	MaxTypingChars:   1024,
	EndedReadable:    time.Hour,
	StartRetryWindow: 10 * time.Minute,
	UserDataLimits:   userdata.DefaultLimits,
}

// Service is the session service: every customer and agent command goes through it. It validates
// and decides; the Store persists each operation in one transaction that also announces what
// changed (to this node after the commit, to the others by NOTIFY), so the service itself never
// broadcasts.
type Service struct {
	store  Store
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
}

// Deps is what a Service is built from.
type Deps struct {
	Store  Store
	Config Config // zero fields take DefaultConfig's values
	Logger *slog.Logger
	Now    func() time.Time // the clock; time.Now when nil
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	cfg := d.Config
	if cfg.MaxMessageChars == 0 {
		cfg.MaxMessageChars = DefaultConfig.MaxMessageChars
	}
	if cfg.MaxNoticeBytes == 0 {
		cfg.MaxNoticeBytes = DefaultConfig.MaxNoticeBytes
	}
	if cfg.MaxTypingChars == 0 {
		cfg.MaxTypingChars = DefaultConfig.MaxTypingChars
	}
	if cfg.EndedReadable == 0 {
		cfg.EndedReadable = DefaultConfig.EndedReadable
	}
	if cfg.StartRetryWindow == 0 {
		cfg.StartRetryWindow = DefaultConfig.StartRetryWindow
	}
	if cfg.UserDataLimits == (userdata.Limits{}) {
		cfg.UserDataLimits = DefaultConfig.UserDataLimits
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: d.Store, cfg: cfg, logger: d.Logger, now: now}
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.now() }

// HashSecret returns the stored form of a secure key or start token.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newSecureKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// StartParams are a customer's start command.
type StartParams struct {
	CommandID string // the client's id for the start command (at least 16 characters)
	// ID is the id the new interaction gets (NewInteractionID), so a caller can subscribe to it
	// before the start commits; empty: one is chosen. A retried start returns the session it
	// created the first time, whose id differs.
	ID       string
	Service  string
	Username string
	Subject  string
	Origin   string
	UserData map[string]json.RawMessage
}

// Session is a started (or restored) customer session.
type Session struct {
	Interaction Interaction
	Party       Party
	SecureKey   string // only set by Start
	// Events are the transcript events Start committed (none for a retried start): the caller
	// hands them to its socket instead of reading them back.
	Events []Event
}

// NewInteractionID returns a new random interaction id (a version 4 UUID) for StartParams.ID.
func NewInteractionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// MinStartIDLen is the shortest start command id accepted: until the session is first used the
// id finds it again (a retried start whose answer was lost), so it must be unguessable: 128
// random bits from a CSPRNG, 32 hexadecimal digits (chat-service.js sends "c-" and 32).
const MinStartIDLen = 32

// Start creates a customer session, or, when the same start command is retried within the retry
// window, returns the session it created with a newly issued secure key.
func (s *Service) Start(ctx context.Context, p StartParams) (Session, error) {
	if len(p.CommandID) < MinStartIDLen {
		return Session{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "The start command id must have at least %d characters.", MinStartIDLen)
	}
	if p.Service == "" {
		p.Service = "default"
	}
	name, err := cleanLine("username", p.Username, 128)
	if err != nil {
		return Session{}, err
	}
	subject, err := cleanLine("subject", p.Subject, 512)
	if err != nil {
		return Session{}, err
	}
	changes := userdata.ChangesOf(p.UserData)
	// Validate before touching the database so a bad start leaves nothing behind.
	if _, err := userdata.Plan(userdata.OwnerClient, nil, changes, s.cfg.UserDataLimits); err != nil {
		return Session{}, err
	}
	key := newSecureKey()
	res, err := s.store.StartInteraction(ctx, StartRequest{
		ID:             p.ID,
		ServiceName:    p.Service,
		CustomerName:   name,
		Subject:        subject,
		Origin:         p.Origin,
		UserData:       changes,
		SecureKeyHash:  HashSecret(key),
		StartTokenHash: HashSecret("start:" + p.CommandID),
		RetryWindow:    s.cfg.StartRetryWindow,
		Limits:         s.cfg.UserDataLimits,
		At:             s.now(),
	})
	if err != nil {
		return Session{}, fmt.Errorf("chat: start: %w", err)
	}
	return Session{Interaction: res.Interaction, Party: res.Party, SecureKey: key, Events: res.Events}, nil
}

// SessionUsed records that the customer used its session (a command after start): from now on
// a start sent again with the same id is refused, so a leaked start id is worth nothing. The
// customer's messages, UserData changes and notices record it in their own commit (the store
// closes the retry in the same transaction), so the customer surface calls this only for its
// other commands, and after one of those that failed.
func (s *Service) SessionUsed(ctx context.Context, interactionID string) error {
	if err := s.store.CloseStartRetry(ctx, interactionID); err != nil {
		return fmt.Errorf("chat: session used: %w", err)
	}
	return nil
}

// Restore authenticates a customer's session id and secure key. An unknown id and a wrong key give
// the same session_not_found error; an ended session gives session_ended.
func (s *Service) Restore(ctx context.Context, interactionID, secureKey string) (Session, error) {
	if interactionID == "" || secureKey == "" {
		return Session{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "session_id and secure_key are required.")
	}
	in, party, err := s.store.AuthenticateCustomer(ctx, interactionID, HashSecret(secureKey))
	if err != nil {
		return Session{}, fmt.Errorf("chat: restore: %w", err)
	}
	if in.State.Over() {
		return Session{}, agentd.Errorf(agentd.ECONFLICT, "session_ended", "The chat session has ended.")
	}
	return Session{Interaction: in, Party: party}, nil
}

// Send appends a message from party p to the transcript.
func (s *Service) Send(ctx context.Context, p Party, commandID, text, contentType string) (Event, error) {
	switch contentType {
	case "":
		contentType = ContentText
	case ContentText, ContentURL:
	default:
		return Event{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "Message type must be \"text\" or \"url\".")
	}
	if err := CheckText(text, s.cfg.MaxMessageChars); err != nil {
		return Event{}, err
	}
	if contentType == ContentURL && !strings.HasPrefix(text, "https://") && !strings.HasPrefix(text, "http://") {
		return Event{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "A url message must start with http:// or https://.")
	}
	ev, err := s.store.AppendMessage(ctx, MessageRequest{InteractionID: p.InteractionID, PartyID: p.ID, CommandID: commandID, Text: text, ContentType: contentType})
	if err != nil {
		return Event{}, fmt.Errorf("chat: send: %w", err)
	}
	return ev, nil
}

// CheckText checks a message's text: not blank, valid UTF-8 without NUL, at most maxChars
// characters. Every party's messages pass it (customers, agents, supervisors).
func CheckText(text string, maxChars int) error {
	switch {
	case strings.TrimSpace(text) == "":
		return agentd.Errorf(agentd.EINVALID, "invalid_text", "The message is empty.")
	case !utf8.ValidString(text):
		return agentd.Errorf(agentd.EINVALID, "invalid_utf8", "The message is not valid UTF-8.")
	case strings.IndexByte(text, 0) >= 0:
		return agentd.Errorf(agentd.EINVALID, "invalid_text", "The message contains a NUL character.")
	case utf8.RuneCountInString(text) > maxChars:
		return agentd.Errorf(agentd.EINVALID, "invalid_text", "The message is longer than %d characters.", maxChars)
	}
	return nil
}

func cleanLine(field, v string, maxChars int) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case !utf8.ValidString(v):
		return "", agentd.Errorf(agentd.EINVALID, "invalid_utf8", "The %s is not valid UTF-8.", field)
	case strings.ContainsAny(v, "\x00\r\n"):
		return "", agentd.Errorf(agentd.EINVALID, "invalid_argument", "The %s must be one line without NUL characters.", field)
	case utf8.RuneCountInString(v) > maxChars:
		return "", agentd.Errorf(agentd.EINVALID, "invalid_argument", "The %s is longer than %d characters.", field, maxChars)
	}
	return v, nil
}

// SendTyping tells the other parties that p is (or stopped) typing. Typing is never persisted.
func (s *Service) SendTyping(ctx context.Context, p Party, isTyping bool, text string) (time.Time, error) {
	if !utf8.ValidString(text) || strings.IndexByte(text, 0) >= 0 {
		return time.Time{}, agentd.Errorf(agentd.EINVALID, "invalid_text", "The typing preview must be valid UTF-8 without NUL characters.")
	}
	if !isTyping {
		text = ""
	}
	if r := []rune(text); len(r) > s.cfg.MaxTypingChars {
		text = string(r[:s.cfg.MaxTypingChars])
	}
	in, err := s.store.Interaction(ctx, p.InteractionID)
	if err != nil {
		return time.Time{}, fmt.Errorf("chat: typing: %w", err)
	}
	if in.State.Over() {
		return time.Time{}, errEnded()
	}
	t := Typing{Party: p, IsTyping: isTyping, Text: text, At: s.now()}
	if err := s.store.NotifyTyping(ctx, p.InteractionID, t); err != nil {
		return time.Time{}, fmt.Errorf("chat: typing: %w", err)
	}
	return t.At, nil
}

func errEnded() error {
	return agentd.Errorf(agentd.ECONFLICT, "session_ended", "The chat session has ended.")
}

// Leave removes the customer from the session and ends it (reason leave_request).
func (s *Service) Leave(ctx context.Context, p Party, commandID string) (time.Time, error) {
	return s.leave(ctx, p, commandID, true, EndLeaveRequest)
}

// End ends the session on behalf of a party other than the customer (a supervisor, a system
// party): it leaves and the session ends with reason agent. An agent ends its chats through the
// agent package, which adds the survey link to the same commit.
func (s *Service) End(ctx context.Context, p Party) error {
	_, err := s.leave(ctx, p, "", true, EndAgent)
	return err
}

func (s *Service) leave(ctx context.Context, p Party, commandID string, end bool, reason EndReason) (time.Time, error) {
	res, err := s.store.LeaveParty(ctx, LeaveRequest{InteractionID: p.InteractionID, PartyID: p.ID, CommandID: commandID,
		End: end, Reason: reason, At: s.now()})
	if err != nil {
		return time.Time{}, fmt.Errorf("chat: leave: %w", err)
	}
	return res.At, nil
}

// JoinAgent adds an agent (or supervisor) party to an interaction; a queued interaction becomes
// active.
func (s *Service) JoinAgent(ctx context.Context, interactionID string, typ PartyType, name, userRef string) (Party, error) {
	if typ != PartyAgent && typ != PartySupervisor && typ != PartyExternal {
		return Party{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "Only agent, supervisor and external parties can join.")
	}
	name, err := cleanLine("name", name, 128)
	if err != nil {
		return Party{}, err
	}
	party, _, err := s.store.JoinParty(ctx, JoinRequest{InteractionID: interactionID, Type: typ, Name: name, UserRef: userRef})
	if err != nil {
		return Party{}, fmt.Errorf("chat: join: %w", err)
	}
	return party, nil
}

// Interaction returns an interaction.
func (s *Service) Interaction(ctx context.Context, interactionID string) (Interaction, error) {
	return s.store.Interaction(ctx, interactionID)
}

// Party returns a party.
func (s *Service) Party(ctx context.Context, partyID string) (Party, error) {
	return s.store.Party(ctx, partyID)
}

// MaxTranscriptPage is the most events one Transcript call returns.
const MaxTranscriptPage = 1000

// Transcript returns up to limit events from fromIndex (agents, supervisors, integrations).
func (s *Service) Transcript(ctx context.Context, interactionID string, fromIndex, limit int) ([]Event, error) {
	if fromIndex < 0 || fromIndex > math.MaxInt32 { // transcript_events.idx is an integer
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_argument", "from_index must be from 0 to 2147483647.")
	}
	if limit <= 0 || limit > MaxTranscriptPage {
		limit = MaxTranscriptPage
	}
	return s.store.Events(ctx, interactionID, fromIndex, limit)
}

// WholeTranscript returns every event of an interaction's transcript, in order, reading it page
// by page (the review pages and the API's detail show all of it).
func (s *Service) WholeTranscript(ctx context.Context, interactionID string) ([]Event, error) {
	var all []Event
	for from := 0; ; {
		evs, err := s.store.Events(ctx, interactionID, from, MaxTranscriptPage)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(evs) < MaxTranscriptPage {
			return all, nil
		}
		from = evs[len(evs)-1].Index + 1
	}
}

// SideItems returns notices and UserData changes from fromSeq.
func (s *Service) SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]SideItem, error) {
	if limit <= 0 || limit > MaxTranscriptPage {
		limit = MaxTranscriptPage
	}
	return s.store.SideItems(ctx, interactionID, fromSeq, limit)
}

// CustomerReadable checks that the customer may still read its session, open or ended less than
// EndedReadable ago, and returns it.
func (s *Service) CustomerReadable(ctx context.Context, interactionID string) (Interaction, error) {
	in, err := s.store.Interaction(ctx, interactionID)
	if err != nil {
		return Interaction{}, err
	}
	if in.EndedAt != nil && s.now().Sub(*in.EndedAt) > s.cfg.EndedReadable {
		return Interaction{}, errEnded()
	}
	return in, nil
}

// CheckPositions checks a client's transcript index and side-channel seq against an
// interaction: each from 0 up to the next one to be written. Anything past that is a client bug
// or a forgery, answered invalid_argument instead of being looked up.
func CheckPositions(in Interaction, fromIndex int, fromSeq int64) error {
	if fromIndex < 0 || fromSeq < 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "from_index and from_seq must not be negative.")
	}
	if fromIndex > in.NextIndex {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "from_index %d is past the end of the transcript (next index %d).", fromIndex, in.NextIndex)
	}
	if fromSeq > in.NextSeq {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "from_seq %d is past the end of the side channel (next seq %d).", fromSeq, in.NextSeq)
	}
	return nil
}

// ChangeUserData applies changes as party p (owner from the party type). It is applied whole or
// not at all.
func (s *Service) ChangeUserData(ctx context.Context, p Party, commandID string, changes []userdata.Change) (ChangeResult, error) {
	return s.changeUserData(ctx, UserDataRequest{
		InteractionID: p.InteractionID, PartyID: p.ID, CommandID: commandID,
		Actor: p.Type.Owner(), ActorName: p.Name, Changes: changes,
	})
}

// ChangeUserDataAs applies changes for an owner that is not a party (strategy, system,
// integrations).
func (s *Service) ChangeUserDataAs(ctx context.Context, interactionID string, owner userdata.Owner, actorName string, changes []userdata.Change) (ChangeResult, error) {
	return s.changeUserData(ctx, UserDataRequest{InteractionID: interactionID, Actor: owner, ActorName: actorName, Changes: changes})
}

func (s *Service) changeUserData(ctx context.Context, req UserDataRequest) (ChangeResult, error) {
	if len(req.Changes) == 0 {
		return ChangeResult{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "No UserData to change.")
	}
	req.Limits = s.cfg.UserDataLimits
	res, err := s.store.ChangeUserData(ctx, req)
	if err != nil {
		return ChangeResult{}, fmt.Errorf("chat: userdata: %w", err)
	}
	return res, nil
}

// UserData returns every key of an interaction with its owner (agents, supervisors, integrations).
func (s *Service) UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error) {
	return s.store.UserData(ctx, interactionID)
}

// UserDataHistory returns every UserData change of an interaction, oldest first.
func (s *Service) UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error) {
	return s.store.UserDataHistory(ctx, interactionID)
}

// CustomerUserData returns the value of key as the customer may see it: absent (ok false) when
// the key does not exist or is neither owned by the customer nor visible to it.
func (s *Service) CustomerUserData(ctx context.Context, interactionID, key string) (json.RawMessage, bool, error) {
	if err := userdata.ValidateKey(key, s.cfg.UserDataLimits); err != nil {
		return nil, false, err
	}
	entries, err := s.store.UserData(ctx, interactionID)
	if err != nil {
		return nil, false, err
	}
	for _, e := range entries {
		if e.Key == key && e.CustomerCanRead() {
			return e.Value, true, nil
		}
	}
	return nil, false, nil
}

// SendNotice stores a custom notice from party p and delivers it to the other side.
func (s *Service) SendNotice(ctx context.Context, p Party, commandID string, payload json.RawMessage) (Notice, error) {
	if err := checkNoticePayload(payload, s.cfg.MaxNoticeBytes); err != nil {
		return Notice{}, err
	}
	n, err := s.store.AddNotice(ctx, NoticeRequest{InteractionID: p.InteractionID, PartyID: p.ID, CommandID: commandID, Payload: payload})
	if err != nil {
		return Notice{}, fmt.Errorf("chat: notice: %w", err)
	}
	return n, nil
}

// SendIntegrationNotice stores a custom notice from an integration (sender is
// integration:<token name>) to audience: everyone sees it as any notice, or only the agent's
// console. It is refused once the interaction is over, like a customer's.
func (s *Service) SendIntegrationNotice(ctx context.Context, interactionID string, sender userdata.Owner, audience Audience, payload json.RawMessage) (Notice, error) {
	if err := checkNoticePayload(payload, s.cfg.MaxNoticeBytes); err != nil {
		return Notice{}, err
	}
	if audience != AudienceAll && audience != AudienceAgent {
		return Notice{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "A notice goes to the customer or to the agent.")
	}
	n, err := s.store.AddNotice(ctx, NoticeRequest{InteractionID: interactionID, Sender: string(sender), Audience: audience, Payload: payload})
	if err != nil {
		return Notice{}, fmt.Errorf("chat: notice: %w", err)
	}
	return n, nil
}

// checkNoticePayload checks a custom notice's payload: present (not null), at most max bytes,
// one JSON value, and no NUL character in any string or key (Postgres jsonb cannot hold one).
func checkNoticePayload(payload json.RawMessage, max int) error {
	if len(payload) > max {
		return agentd.Errorf(agentd.EINVALID, "notice_too_large", "A notice payload must be at most %d bytes.", max)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		if len(bytes.TrimSpace(payload)) == 0 {
			return agentd.Errorf(agentd.EINVALID, "invalid_argument", "A notice needs a payload.")
		}
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "A notice payload must be JSON.")
	}
	if v == nil {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "A notice needs a payload.")
	}
	if hasNUL(v) {
		// Postgres jsonb cannot hold NUL; refuse it clearly instead of failing in the database.
		return agentd.Errorf(agentd.EINVALID, "invalid_text", "A notice payload must not contain NUL characters.")
	}
	return nil
}

// hasNUL reports whether a decoded JSON value has a NUL character in any string or object key.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		return slices.ContainsFunc(x, hasNUL)
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// QueuePositions returns the 1-based position of every chat waiting in a service's queue.
func (s *Service) QueuePositions(ctx context.Context, serviceID int64) (map[string]int, error) {
	return s.store.QueuePositions(ctx, serviceID)
}

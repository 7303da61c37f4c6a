package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// Listing sizes: limit defaults to defaultLimit and may be at most maxLimit.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// maxBody is the largest JSON body the API reads: UserData's limits (64 keys of 4 KiB by
// default) and a notice's 8 KiB fit with room to spare.
const maxBody = 256 << 10

// states are the interaction states a listing may be filtered by.
var states = []chat.State{chat.StateQueued, chat.StateOffered, chat.StateActive, chat.StateEnded, chat.StateWrapped, chat.StateAbandoned}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func errInvalid(code, format string, args ...any) error {
	return agentd.Errorf(agentd.EINVALID, code, format, args...)
}

func errNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "interaction_not_found", "No interaction with this id.")
}

// interactionID returns the request's interaction id once the token may see it: a token bound
// to a user sees only the interactions its agent was assigned, and any other answers 404 as if
// it did not exist.
func (s *Surface) interactionID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return "", errInvalid("invalid_id", "An interaction id is a UUID.")
	}
	id = strings.ToLower(id)
	if t := tokenOf(c); t.UserID != 0 {
		if err := s.store.AssignedTo(c.Request().Context(), id, t.UserID); err != nil {
			return "", err
		}
	}
	return id, nil
}

// notFound turns the chat core's "no such session" into the API's "no such interaction".
func notFound(err error) error {
	if agentd.ErrorClass(err) == agentd.ENOTFOUND {
		return errNotFound()
	}
	return err
}

// encodeCursor and decodeCursor keep a listing's position opaque: base64url of
// "<created_at in unix microseconds>.<id>".
func encodeCursor(in notify.InteractionSummary) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(in.CreatedAt.UnixMicro(), 10) + "." + in.ID))
}

func decodeCursor(s string) (*notify.InteractionCursor, error) {
	bad := errInvalid("invalid_cursor", "The cursor is not one this API returned.")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	micros, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !uuidRE.MatchString(id) {
		return nil, bad
	}
	return &notify.InteractionCursor{CreatedAt: time.UnixMicro(n), ID: id}, nil
}

func (s *Surface) handleInteractions(c echo.Context) error {
	q := c.QueryParams()
	f := notify.InteractionFilter{State: q.Get("state"), Service: q.Get("service"), Agent: q.Get("agent"),
		UserID: tokenOf(c).UserID, Limit: defaultLimit}
	if f.State != "" && !slices.Contains(states, chat.State(f.State)) {
		return errInvalid("invalid_argument", "state is one of queued, offered, active, ended, wrapped, abandoned.")
	}
	if v := q.Get("updated_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return errInvalid("invalid_argument", "updated_since is an RFC 3339 time, such as 2026-01-02T15:04:05Z.")
		}
		f.UpdatedSince = &t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return errInvalid("invalid_argument", "limit is a number from 1 to %d.", maxLimit)
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			return err
		}
		f.After = cur
	}
	page := f.Limit
	f.Limit++ // one more tells whether there is a next page
	ins, err := s.store.Interactions(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listJSON{Interactions: make([]interactionJSON, 0, min(len(ins), page))}
	for i, in := range ins {
		if i == page {
			next := encodeCursor(ins[i-1])
			out.NextCursor = &next
			break
		}
		out.Interactions = append(out.Interactions, interactionOf(in))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Surface) handleInteraction(c echo.Context) error {
	id, err := s.interactionID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ins, err := s.store.Interactions(ctx, notify.InteractionFilter{ID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		return errNotFound()
	}
	out := detailJSON{interactionJSON: interactionOf(ins[0]), Parties: []partyJSON{}, Transcript: []eventJSON{}, Notices: []noticeJSON{}}
	seen := map[string]bool{}
	evs, err := s.chat.WholeTranscript(ctx, id)
	if err != nil {
		return notFound(err)
	}
	for _, ev := range evs {
		e := eventJSON{Index: ev.Index, Kind: string(ev.Kind), Text: ev.Text, ContentType: ev.ContentType, Reason: string(ev.Reason), At: ev.At}
		if ev.Party != nil {
			e.PartyID = &ev.Party.ID
			if !seen[ev.Party.ID] {
				seen[ev.Party.ID] = true
				out.Parties = append(out.Parties, partyOf(*ev.Party))
			}
		}
		out.Transcript = append(out.Transcript, e)
	}
	entries, err := s.chat.UserData(ctx, id)
	if err != nil {
		return notFound(err)
	}
	out.UserData = entriesOf(entries)
	const sidePage = 500
	for from := int64(1); ; {
		items, err := s.chat.SideItems(ctx, id, from, sidePage)
		if err != nil {
			return notFound(err)
		}
		for _, it := range items {
			if it.Notice != nil {
				out.Notices = append(out.Notices, noticeOf(*it.Notice))
			}
		}
		if len(items) < sidePage {
			break
		}
		from = items[len(items)-1].Seq + 1
	}
	if out.Disposition, out.WrapUpNotes, err = s.history.WrapInfo(ctx, id); err != nil {
		return notFound(err)
	}
	answers, ok, err := s.history.SurveyAnswers(ctx, id)
	if err != nil {
		return err
	}
	if answers == nil {
		answers = map[string]string{}
	}
	out.Survey = surveyJSON{Submitted: ok, Answers: answers}
	return c.JSON(http.StatusOK, out)
}

func (s *Surface) handleUserDataHistory(c echo.Context) error {
	id, err := s.interactionID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.chat.Interaction(ctx, id); err != nil {
		return notFound(err)
	}
	hs, err := s.chat.UserDataHistory(ctx, id)
	if err != nil {
		return notFound(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"history": historyOf(hs)})
}

// decodeBody decodes the request's JSON body (read by readBody) into v: one JSON object, no unknown field.
func decodeBody(c echo.Context, v any) error {
	b, _ := c.Get(bodyKey).([]byte) // read by readBody
	if len(bytes.TrimSpace(b)) == 0 {
		return errInvalid("invalid_json", "This request takes a JSON body.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return errInvalid("unknown_field", "Unknown field %s.", msg)
		}
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return errInvalid("invalid_json", "A field has the wrong type: %s.", err.Error())
		}
		return errInvalid("invalid_json", "The body is not valid JSON.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalid("invalid_json", "The body must be one JSON object.")
	}
	return nil
}

// userDataAnswer is what a UserData write answers: the interaction's UserData after it.
func (s *Surface) userDataAnswer(c echo.Context, id string, res chat.ChangeResult) error {
	entries, err := s.chat.UserData(c.Request().Context(), id)
	if err != nil {
		return notFound(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"seq": res.Seq, "userdata": entriesOf(entries)})
}

func (s *Surface) handlePutUserData(c echo.Context) error {
	id, err := s.interactionID(c)
	if err != nil {
		return err
	}
	var body struct {
		UserData map[string]json.RawMessage `json:"userdata"`
		// Visible sets whether the customer sees a key written (unset: as it was; a new key is
		// hidden).
		Visible map[string]bool `json:"visible"`
	}
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	if len(body.UserData) == 0 {
		return errInvalid("invalid_argument", `The body names the keys to write: {"userdata": {"Key": "value", "Other": null}}.`)
	}
	for k := range body.Visible {
		if _, ok := body.UserData[k]; !ok {
			return errInvalid("invalid_argument", "visible names %q, which userdata does not write.", k)
		}
	}
	changes := userdata.ChangesOf(body.UserData)
	for i := range changes {
		if raw, _ := changes[i].Value.(json.RawMessage); string(bytes.TrimSpace(raw)) == "null" {
			changes[i].Value = nil // null deletes the key
		}
		if v, ok := body.Visible[changes[i].Key]; ok {
			changes[i].Visible = &v
		}
	}
	t := tokenOf(c)
	res, err := s.chat.ChangeUserDataAs(c.Request().Context(), id, t.Owner(), t.Name, changes)
	if err != nil {
		return notFound(err)
	}
	return s.userDataAnswer(c, id, res)
}

func (s *Surface) handleDeleteUserData(c echo.Context) error {
	id, err := s.interactionID(c)
	if err != nil {
		return err
	}
	// Echo leaves path parameters escaped: a key with a space or a slash arrives as %20, %2F.
	key, err := url.PathUnescape(c.Param("key"))
	if err != nil {
		return errInvalid("userdata_invalid_key", "The key in the path is not validly escaped.")
	}
	t := tokenOf(c)
	res, err := s.chat.ChangeUserDataAs(c.Request().Context(), id, t.Owner(), t.Name, []userdata.Change{{Key: key}})
	if err != nil {
		return notFound(err)
	}
	return s.userDataAnswer(c, id, res)
}

func (s *Surface) handlePostNotice(c echo.Context) error {
	id, err := s.interactionID(c)
	if err != nil {
		return err
	}
	var body struct {
		To      string          `json:"to"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	var audience chat.Audience
	switch body.To {
	case "customer":
		audience = chat.AudienceAll
	case "agent":
		audience = chat.AudienceAgent
	default:
		return errInvalid("invalid_argument", `"to" is "customer" or "agent".`)
	}
	if p := bytes.TrimSpace(body.Payload); len(p) == 0 || p[0] != '{' {
		return errInvalid("invalid_argument", `"payload" is a JSON object.`)
	}
	n, err := s.chat.SendIntegrationNotice(c.Request().Context(), id, tokenOf(c).Owner(), audience, body.Payload)
	if err != nil {
		return notFound(err)
	}
	return c.JSON(http.StatusCreated, noticeOf(n))
}

func (s *Surface) handleAgents(c echo.Context) error {
	as, err := s.store.Agents(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]agentJSON, len(as))
	for i, a := range as {
		svcs := a.Services
		if svcs == nil {
			svcs = []string{}
		}
		out[i] = agentJSON{Username: a.Username, DisplayName: a.DisplayName, Role: a.Role, State: a.State,
			NotReadyReason: a.NotReadyReason, Load: a.Load, Capacity: a.Capacity, Services: svcs}
	}
	return c.JSON(http.StatusOK, map[string]any{"agents": out})
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"agentd"
	"agentd/userdata"
)

// ServiceInfo is a chat service (queue) as the agent side and the admin pages see it.
type ServiceInfo struct {
	ID          int64
	Name        string
	DisplayName string
	Enabled     bool
	Strategy    json.RawMessage
	CreatedAt   time.Time
}

// CannedResponse is a prepared answer agents can insert into the composer.
type CannedResponse struct {
	ID        int64
	ServiceID int64 // 0: every service
	Service   string
	Title     string
	Body      string
	UpdatedAt time.Time
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID       int64
	At       time.Time
	UserID   int64  // 0: agentd itself
	Username string // "" when UserID is 0
	Action   string
	Target   string
	Details  json.RawMessage
}

// AdminStore is what administration needs from storage. Every changing method writes its audit
// row in the transaction of the change, so no change is committed without its audit row.
type AdminStore interface {
	Services(ctx context.Context) ([]ServiceInfo, error)
	Service(ctx context.Context, name string) (ServiceInfo, error)
	CreateService(ctx context.Context, actorID int64, si ServiceInfo) (ServiceInfo, error)
	UpdateService(ctx context.Context, actorID int64, si ServiceInfo, details any) error
	CannedResponses(ctx context.Context, serviceID int64, query string, limit int) ([]CannedResponse, error)
	CannedResponse(ctx context.Context, id int64) (CannedResponse, error)
	SaveCannedResponse(ctx context.Context, userID int64, c CannedResponse) (int64, error)
	DeleteCannedResponse(ctx context.Context, userID, id int64) error
	Users(ctx context.Context) ([]User, error)
	User(ctx context.Context, id int64) (User, error)
	CreateUserAudited(ctx context.Context, actorID int64, nu NewUser, passwordHash string) (User, error)
	UpdateUserAudited(ctx context.Context, actorID int64, u User, passwordHash string, details any) error
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
}

// Admin is the administration API behind /admin: services and their strategies, canned
// responses, users and the audit log. Every change is audited; passwords never are.
type Admin struct {
	store AdminStore
}

// NewAdmin returns the administration API.
func NewAdmin(store AdminStore) *Admin {
	return &Admin{store: store}
}

// InvalidFields is the error of an admin change with invalid values: one message per form field.
// It wraps an EINVALID *agentd.Error, so agentd.ErrorClass and the web error handler treat it as
// any other invalid argument; the admin pages show each message next to its field.
type InvalidFields struct {
	Fields map[string]string // field name → message
	err    *agentd.Error
}

func (e *InvalidFields) Error() string { return e.err.Error() }

// Unwrap returns the *agentd.Error.
func (e *InvalidFields) Unwrap() error { return e.err }

// fieldErrors collects messages per field; the first message of a field wins.
type fieldErrors map[string]string

func (f fieldErrors) add(field string, err error) {
	if err != nil && f[field] == "" {
		f[field] = agentd.ErrorMessage(err)
	}
}

func (f fieldErrors) addf(field, format string, args ...any) {
	f.add(field, agentd.Errorf(agentd.EINVALID, "invalid_argument", format, args...))
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &InvalidFields{Fields: f, err: agentd.Errorf(agentd.EINVALID, "invalid_argument", "Please correct the highlighted fields.")}
}

// onField turns the errors of err with one of the given codes (such as a name taken, found only
// when the database is asked) into an *InvalidFields for field; other errors pass unchanged.
func onField(err error, field string, codes ...string) error {
	if err == nil || !slices.Contains(codes, agentd.ErrorCode(err)) {
		return err
	}
	f := fieldErrors{}
	f.add(field, err)
	return f.err()
}

// FieldsOf returns the per-field messages of err, or nil when err is not an *InvalidFields.
func FieldsOf(err error) map[string]string {
	if e, ok := errors.AsType[*InvalidFields](err); ok {
		return e.Fields
	}
	return nil
}

func isOneLine(s string, max int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max && strings.IndexFunc(s, unicode.IsControl) < 0
}

func isText(s string, max int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max && strings.IndexByte(s, 0) < 0
}

// Services

var serviceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CreateServiceRequest is what creating a service needs.
type CreateServiceRequest struct {
	Name        string
	DisplayName string
}

// Validate checks a new service and trims its values.
func (ns *CreateServiceRequest) Validate() error {
	f := fieldErrors{}
	ns.Name = strings.TrimSpace(ns.Name)
	ns.DisplayName = strings.TrimSpace(ns.DisplayName)
	if !serviceNameRE.MatchString(ns.Name) {
		f.addf("name", "The name must be 1 to 63 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit.")
	}
	validateDisplayName(f, ns.DisplayName)
	return f.err()
}

func validateDisplayName(f fieldErrors, s string) {
	if s == "" || !isOneLine(s, 100) {
		f.addf("display_name", "The display name must be one line of 1 to 100 characters.")
	}
}

// ServiceChange is an edit of a service: display name, enabled flag and strategy.
type ServiceChange struct {
	DisplayName string
	Enabled     bool
	Strategy    Strategy
}

// Limits of strategy values the admin pages accept. Strategy.Validate holds the rules every
// writer must obey; these bound what a person can type.
const (
	maxWelcomeNotice = 1000
	maxSurveyLabel   = 200
	maxPendingSecs   = 86400
)

var questionIDRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// Validate checks a service change field by field and returns an *InvalidFields. Each group of
// fields also goes through Strategy.Validate on its own, so its messages land next to the right
// field, and the whole strategy through it at the end.
func (ch *ServiceChange) Validate() error {
	f := fieldErrors{}
	ch.DisplayName = strings.TrimSpace(ch.DisplayName)
	validateDisplayName(f, ch.DisplayName)
	st := &ch.Strategy

	if !isText(st.WelcomeNotice, maxWelcomeNotice) {
		f.addf("welcome_notice", "The welcome notice must be text of at most %d characters.", maxWelcomeNotice)
	}
	f.add("accept_timeout", Strategy{AcceptTimeoutSeconds: st.AcceptTimeoutSeconds}.Validate())
	f.add("decline_cooldown", Strategy{DeclineCooldownSeconds: st.DeclineCooldownSeconds}.Validate())

	f.add("dispositions", Strategy{Dispositions: st.Dispositions}.Validate())
	seen := map[string]bool{}
	for _, d := range st.Dispositions {
		if !isOneLine(d, 100) {
			f.addf("dispositions", "Each disposition must be one line of at most 100 characters.")
		}
		if seen[d] {
			f.addf("dispositions", "The disposition %q is listed twice.", d)
		}
		seen[d] = true
	}
	if st.DispositionRequired && len(st.Dispositions) == 0 {
		f.addf("disposition_required", "A mandatory disposition needs a list of dispositions.")
	}

	if sv := st.Survey; sv != nil {
		f.add("survey_when", Strategy{Survey: &Survey{When: sv.When}}.Validate())
		if u := sv.URLTemplate; u != "" && (!isOneLine(u, 2000) || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://"))) {
			f.addf("survey_url", "The survey URL must start with https:// or http:// (or be empty for agentd's own survey page).")
		}
		f.add("survey_questions", Strategy{Survey: &Survey{Questions: sv.Questions}}.Validate())
		ids := map[string]bool{}
		for _, q := range sv.Questions {
			if !questionIDRE.MatchString(q.ID) {
				f.addf("survey_questions", "Question id %q must be 1 to 64 letters, digits or '_' (answers are stored as Survey.<id>).", q.ID)
			}
			if ids[q.ID] {
				f.addf("survey_questions", "The question id %q is used twice.", q.ID)
			}
			ids[q.ID] = true
			if !isOneLine(q.Label, maxSurveyLabel) {
				f.addf("survey_questions", "Question labels must be one line of at most %d characters.", maxSurveyLabel)
			}
		}
	}

	for _, k := range slices.Sorted(maps.Keys(st.RoutedUserData)) {
		if err := userdata.ValidateKey(k, userdata.DefaultLimits); err != nil {
			f.add("routed_userdata", err)
		}
		if strings.HasPrefix(k, userdata.ReservedPrefix) {
			f.addf("routed_userdata", "Keys starting with %q are reserved for agentd.", userdata.ReservedPrefix)
		}
		// Checked as it will be written: the limit is on the encoded JSON, quotes and escapes
		// included. Placeholders are filled in at routing time, so leave room for them.
		if _, err := userdata.EncodeValue(k, st.RoutedUserData[k], userdata.DefaultLimits); err != nil {
			f.add("routed_userdata", err)
		} else if !isText(st.RoutedUserData[k], userdata.DefaultLimits.MaxValueBytes) {
			f.addf("routed_userdata", "The value of %q must be text.", k)
		}
	}
	for _, k := range st.VisibleUserData {
		if _, ok := st.RoutedUserData[k]; !ok {
			f.addf("visible_userdata", "%q is not one of the routed UserData keys.", k)
		}
	}

	for field, n := range map[string]int{"pending_warn": st.PendingWarnSeconds, "pending_late": st.PendingLateSeconds} {
		if n < 0 || n > maxPendingSecs {
			f.addf(field, "Must be between 0 and %d seconds (0: the default).", maxPendingSecs)
		}
	}
	warn, late := effectiveSeconds(st.PendingWarnSeconds, DefaultPendingWarn), effectiveSeconds(st.PendingLateSeconds, DefaultPendingLate)
	if f["pending_warn"] == "" && f["pending_late"] == "" && warn >= late {
		f.addf("pending_late", "The late threshold (%ds) must come after the warning threshold (%ds).", late, warn)
	}

	if len(f) == 0 {
		f.add("strategy", st.Validate())
	}
	return f.err()
}

func effectiveSeconds(n int, def time.Duration) int {
	if n == 0 {
		return int(def / time.Second)
	}
	return n
}

// Services lists every service.
func (a *Admin) Services(ctx context.Context) ([]ServiceInfo, error) { return a.store.Services(ctx) }

// Service returns a service by name.
func (a *Admin) Service(ctx context.Context, name string) (ServiceInfo, error) {
	return a.store.Service(ctx, name)
}

// CreateService creates an enabled service with an empty strategy. Audited as service.create.
func (a *Admin) CreateService(ctx context.Context, actor User, ns CreateServiceRequest) (ServiceInfo, error) {
	if err := ns.Validate(); err != nil {
		return ServiceInfo{}, err
	}
	si, err := a.store.CreateService(ctx, actor.ID, ServiceInfo{Name: ns.Name, DisplayName: ns.DisplayName, Enabled: true, Strategy: json.RawMessage(`{}`)})
	return si, onField(err, "name", "service_exists")
}

// UpdateService changes a service's display name, enabled flag and strategy. Keys of the stored
// strategy JSON that Strategy does not know (written by other parts of agentd or by a newer
// version) are kept. Audited as service.update with the old and new value of every change.
func (a *Admin) UpdateService(ctx context.Context, actor User, name string, ch ServiceChange) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	old, err := a.store.Service(ctx, name)
	if err != nil {
		return err
	}
	raw, strategyChanges, err := mergeStrategy(old.Strategy, ch.Strategy)
	if err != nil {
		return err
	}
	changes := map[string]any{}
	if old.DisplayName != ch.DisplayName {
		changes["display_name"] = oldNew(old.DisplayName, ch.DisplayName)
	}
	if old.Enabled != ch.Enabled {
		changes["enabled"] = oldNew(old.Enabled, ch.Enabled)
	}
	for k, v := range strategyChanges {
		changes["strategy."+k] = v
	}
	if len(changes) == 0 {
		return nil // nothing to save, nothing to audit
	}
	next := old
	next.DisplayName, next.Enabled, next.Strategy = ch.DisplayName, ch.Enabled, raw
	return a.store.UpdateService(ctx, actor.ID, next, map[string]any{"changes": changes})
}

func oldNew(o, n any) map[string]any { return map[string]any{"old": o, "new": n} }

// strategyKeys are the JSON names of Strategy's fields: the keys the admin form owns.
var strategyKeys = func() []string {
	var keys []string
	t := reflect.TypeFor[Strategy]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	return keys
}()

// mergeStrategy writes st over the stored strategy JSON, keeping the keys Strategy does not own,
// and returns the new JSON with the old and new value of every changed key.
func mergeStrategy(stored json.RawMessage, st Strategy) (json.RawMessage, map[string]any, error) {
	var old map[string]json.RawMessage
	if len(stored) > 0 {
		if err := json.Unmarshal(stored, &old); err != nil {
			return nil, nil, err
		}
	}
	if old == nil { // no strategy yet, or a stored JSON null
		old = map[string]json.RawMessage{}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, nil, err
	}
	next := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &next); err != nil {
		return nil, nil, err
	}
	changes := map[string]any{}
	merged := maps.Clone(old)
	for _, k := range strategyKeys {
		o := old[k]
		n, hasNew := next[k]
		delete(merged, k)
		if hasNew {
			merged[k] = n
		}
		// A key left out and a key holding its zero value mean the same (Strategy omits zeros).
		if !jsonEqual(o, n) {
			changes[k] = oldNew(rawOrNil(o), rawOrNil(n))
		}
	}
	out, err := json.Marshal(merged)
	return out, changes, err
}

func rawOrNil(r json.RawMessage) any {
	if r == nil {
		return nil
	}
	return r
}

// jsonEqual compares two JSON values; an absent value (nil) equals any zero value (null, false,
// 0, "", [] or {}).
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if a != nil && json.Unmarshal(a, &x) != nil || b != nil && json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	if isZeroJSON(x) && isZeroJSON(y) {
		return true
	}
	return reflect.DeepEqual(x, y)
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// Canned responses

// CannedResponses searches every canned response by title or body.
func (a *Admin) CannedResponses(ctx context.Context, query string) ([]CannedResponse, error) {
	return a.store.CannedResponses(ctx, 0, strings.TrimSpace(query), 500)
}

// CannedResponse returns one canned response.
func (a *Admin) CannedResponse(ctx context.Context, id int64) (CannedResponse, error) {
	return a.store.CannedResponse(ctx, id)
}

// Validate checks a canned response and trims its title.
func (c *CannedResponse) Validate() error {
	f := fieldErrors{}
	c.Title = strings.TrimSpace(c.Title)
	if c.Title == "" || !isOneLine(c.Title, 200) {
		f.addf("title", "The title must be one line of 1 to 200 characters.")
	}
	c.Body = strings.TrimRight(strings.ReplaceAll(c.Body, "\r\n", "\n"), " \n\t")
	if strings.TrimSpace(c.Body) == "" || !isText(c.Body, 4000) {
		f.addf("body", "The text must have 1 to 4000 characters.")
	}
	if c.ServiceID < 0 {
		f.addf("service", "Choose a service from the list.")
	}
	return f.err()
}

// SaveCannedResponse creates (ID 0) or updates a canned response. Audited as canned.create or
// canned.update.
func (a *Admin) SaveCannedResponse(ctx context.Context, actor User, c CannedResponse) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	id, err := a.store.SaveCannedResponse(ctx, actor.ID, c)
	return id, onField(err, "service", "service_not_found")
}

// DeleteCannedResponse deletes a canned response. Audited as canned.delete.
func (a *Admin) DeleteCannedResponse(ctx context.Context, actor User, id int64) error {
	return a.store.DeleteCannedResponse(ctx, actor.ID, id)
}

// Users

// Users lists every user.
func (a *Admin) Users(ctx context.Context) ([]User, error) { return a.store.Users(ctx) }

// User returns a user.
func (a *Admin) User(ctx context.Context, id int64) (User, error) { return a.store.User(ctx, id) }

func validatePassword(f fieldErrors, field, pw string) {
	switch {
	case utf8.RuneCountInString(pw) < 8:
		f.addf(field, "The password must have at least 8 characters.")
	case len(pw) > 72:
		f.addf(field, "The password must be at most 72 bytes.")
	}
}

func validateProfile(f fieldErrors, displayName string, role Role, capacity int) {
	if displayName != "" && !isOneLine(displayName, 100) {
		f.addf("display_name", "The display name must be one line of at most 100 characters.")
	}
	if _, err := ParseRole(string(role)); err != nil {
		f.add("role", err)
	}
	if capacity < 0 || capacity > 50 {
		f.addf("capacity", "Capacity must be between 0 and 50 chats.")
	}
}

// CreateUser creates a user. Unlike NewUser.Validate, a capacity of 0 means 0 (a supervisor who
// takes no chats), not the default. Audited as user.create, without the password.
func (a *Admin) CreateUser(ctx context.Context, actor User, nu NewUser) (User, error) {
	f := fieldErrors{}
	nu.Username = strings.TrimSpace(nu.Username)
	nu.DisplayName = strings.TrimSpace(nu.DisplayName)
	if !usernameRE.MatchString(nu.Username) {
		f.addf("username", "The username must be 1 to 64 characters: letters, digits, '.', '_', '-', '@', starting with a letter or digit.")
	}
	validatePassword(f, "password", nu.Password)
	validateProfile(f, nu.DisplayName, nu.Role, nu.Capacity)
	if err := f.err(); err != nil {
		return User{}, err
	}
	capacity := nu.Capacity
	if err := nu.Validate(); err != nil {
		return User{}, err
	}
	nu.Capacity = capacity
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	u, err := a.store.CreateUserAudited(ctx, actor.ID, nu, hash)
	return u, onField(onField(err, "username", "username_taken"), "services", "service_not_found")
}

// UserChange is an edit of a user. An empty NewPassword keeps the password.
type UserChange struct {
	ID          int64
	DisplayName string
	Role        Role
	Capacity    int
	Disabled    bool
	Services    []string
	NewPassword string
}

// UpdateUser changes a user. An admin cannot disable or demote themself, so there is always an
// admin left who can undo a mistake. Audited as user.update with the changed fields (a new
// password only as "password_changed").
func (a *Admin) UpdateUser(ctx context.Context, actor User, ch UserChange) (User, error) {
	f := fieldErrors{}
	ch.DisplayName = strings.TrimSpace(ch.DisplayName)
	validateProfile(f, ch.DisplayName, ch.Role, ch.Capacity)
	if ch.NewPassword != "" {
		validatePassword(f, "new_password", ch.NewPassword)
	}
	if ch.ID == actor.ID {
		if ch.Role != RoleAdmin {
			f.addf("role", "You cannot remove your own admin role; ask another admin.")
		}
		if ch.Disabled {
			f.addf("disabled", "You cannot disable your own account; ask another admin.")
		}
	}
	if err := f.err(); err != nil {
		return User{}, err
	}
	old, err := a.store.User(ctx, ch.ID)
	if err != nil {
		return User{}, err
	}
	if ch.DisplayName == "" {
		ch.DisplayName = old.Username
	}
	services := slices.Clone(ch.Services)
	slices.Sort(services)
	services = slices.Compact(services)
	next := old
	next.DisplayName, next.Role, next.Capacity, next.Disabled, next.Services = ch.DisplayName, ch.Role, ch.Capacity, ch.Disabled, services

	changes := map[string]any{}
	if old.DisplayName != next.DisplayName {
		changes["display_name"] = oldNew(old.DisplayName, next.DisplayName)
	}
	if old.Role != next.Role {
		changes["role"] = oldNew(old.Role, next.Role)
	}
	if old.Capacity != next.Capacity {
		changes["capacity"] = oldNew(old.Capacity, next.Capacity)
	}
	if old.Disabled != next.Disabled {
		changes["disabled"] = oldNew(old.Disabled, next.Disabled)
	}
	if !slices.Equal(old.Services, next.Services) {
		changes["services"] = oldNew(nonNilStrings(old.Services), nonNilStrings(next.Services))
	}
	var hash string
	if ch.NewPassword != "" {
		if hash, err = HashPassword(ch.NewPassword); err != nil {
			return User{}, err
		}
		changes["password_changed"] = true
	}
	if len(changes) == 0 {
		return old, nil
	}
	if err := a.store.UpdateUserAudited(ctx, actor.ID, next, hash, map[string]any{"changes": changes}); err != nil {
		return User{}, onField(err, "services", "service_not_found")
	}
	return a.store.User(ctx, ch.ID)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// AuditLog returns the most recent audit entries, newest first.
func (a *Admin) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	return a.store.AuditLog(ctx, limit)
}

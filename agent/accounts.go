package agent

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"agentd"
)

// AccountStore is what Accounts needs from storage.
type AccountStore interface {
	CreateUser(ctx context.Context, nu NewUser, passwordHash string) (User, error)
	User(ctx context.Context, id int64) (User, error)
	Users(ctx context.Context) ([]User, error)
	UserForLogin(ctx context.Context, username string) (User, string, error)
	// CreateWebSession stores the session and audits the sign-in in one commit.
	CreateWebSession(ctx context.Context, ws NewWebSession) error
	// WebSession returns a live session's user and CSRF token and slides its idle expiry, never
	// past created_at + maxAge; now is the Accounts clock.
	WebSession(ctx context.Context, token string, now time.Time, idle, maxAge time.Duration) (User, string, error)
	DeleteWebSession(ctx context.Context, token string) error
	SessionAlive(ctx context.Context, token string, now time.Time, maxAge time.Duration) error
	SetUserDisabled(ctx context.Context, username string, disabled bool) (User, bool, error)
	// LoginFailed audits a refused sign-in; userID is 0 for an unknown username.
	LoginFailed(ctx context.Context, userID int64, username, from string) error
}

// NewWebSession is a browser session being opened. Only a hash of Token is stored.
type NewWebSession struct {
	Token string
	User  User
	CSRF  string
	At    time.Time
	Idle  time.Duration
}

// Session lifetimes (docs/configuration.md).
const (
	// SessionIdle is how long a browser session lives without being used.
	SessionIdle = 12 * time.Hour
	// DefaultSessionMaxAge is how long a browser session lives at most, however much it is used:
	// a stolen cookie stops working then, and every user signs in again at least this often.
	DefaultSessionMaxAge = 7 * 24 * time.Hour
)

// AccountsConfig configures Accounts.
type AccountsConfig struct {
	// SessionMaxAge is a browser session's absolute lifetime; DefaultSessionMaxAge when zero.
	SessionMaxAge time.Duration
}

// Accounts is the people who sign in: users, their passwords and their browser sessions.
type Accounts struct {
	store  AccountStore
	cfg    AccountsConfig
	logger *slog.Logger
	now    func() time.Time
}

// AccountsDeps is what Accounts is built from.
type AccountsDeps struct {
	Store  AccountStore
	Config AccountsConfig
	Logger *slog.Logger
	Now    func() time.Time // time.Now when nil
}

// NewAccounts returns the accounts service.
func NewAccounts(d AccountsDeps) *Accounts {
	if d.Config.SessionMaxAge <= 0 {
		d.Config.SessionMaxAge = DefaultSessionMaxAge
	}
	return &Accounts{store: d.Store, cfg: d.Config, logger: d.Logger, now: clockOr(d.Now)}
}

func clockOr(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// Config returns the effective configuration.
func (a *Accounts) Config() AccountsConfig { return a.cfg }

// Login checks a username and password from the client address from. Unknown users, wrong
// passwords and disabled accounts all give the same error, and each failure is audited
// (session.login_failed, with the address) so an admin sees an attack on /admin/audit.
func (a *Accounts) Login(ctx context.Context, username, password, from string) (User, error) {
	u, hash, err := a.store.UserForLogin(ctx, username)
	if err != nil && agentd.ErrorClass(err) != agentd.ENOTFOUND {
		return User{}, err
	}
	if !CheckPassword(hash, password) || u.Disabled {
		if err := a.store.LoginFailed(ctx, u.ID, username, from); err != nil {
			return User{}, err
		}
		return User{}, agentd.Errorf(agentd.EUNAUTHORIZED, "bad_credentials", "Wrong username or password.")
	}
	return u, nil
}

// StartWebSession opens a browser session for a signed-in user and returns its cookie value and
// CSRF token. The session and the sign-in's audit row commit together.
func (a *Accounts) StartWebSession(ctx context.Context, u User) (token, csrf string, err error) {
	token, csrf = newToken(), newToken()
	if err := a.store.CreateWebSession(ctx, NewWebSession{Token: token, User: u, CSRF: csrf, At: a.now(), Idle: SessionIdle}); err != nil {
		return "", "", err
	}
	return token, csrf, nil
}

// WebSession returns the user and CSRF token of a browser session.
func (a *Accounts) WebSession(ctx context.Context, token string) (User, string, error) {
	if token == "" {
		return User{}, "", agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in.")
	}
	return a.store.WebSession(ctx, token, a.now(), SessionIdle, a.cfg.SessionMaxAge)
}

// EndWebSession signs a browser session out; the consoles opened with it close.
func (a *Accounts) EndWebSession(ctx context.Context, token string) error {
	return a.store.DeleteWebSession(ctx, token)
}

// SessionAlive returns nil while a browser session is live (an unauthorized error once it was
// signed out or expired), without extending it: a console checks it every few seconds.
func (a *Accounts) SessionAlive(ctx context.Context, token string) error {
	if token == "" {
		return agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in.")
	}
	return a.store.SessionAlive(ctx, token, a.now(), a.cfg.SessionMaxAge)
}

// SetDisabled disables or enables the user called username (`agentd user disable|enable`),
// audited as user.update like the admin form. A disabled user's sessions end and their open
// consoles close on every node. changed is false when the user was in that state already.
func (a *Accounts) SetDisabled(ctx context.Context, username string, disabled bool) (u User, changed bool, err error) {
	return a.store.SetUserDisabled(ctx, strings.TrimSpace(username), disabled)
}

// CreateUser creates a user.
func (a *Accounts) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	if err := nu.Validate(); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	return a.store.CreateUser(ctx, nu, hash)
}

// Users lists users.
func (a *Accounts) Users(ctx context.Context) ([]User, error) { return a.store.Users(ctx) }

// User returns a user.
func (a *Accounts) User(ctx context.Context, id int64) (User, error) { return a.store.User(ctx, id) }

package postgres

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
)

// AgentStore is the agent side's storage: users and web sessions, presence, routing, the agent's
// work on chats (accept, transfer, end, wrap-up, co-browse), surveys, history and administration.
// It implements the narrow store interfaces the agent package declares (agent.AccountStore,
// agent.RouterStore, agent.Store, agent.SurveyStore, agent.HistoryStore, agent.AdminStore).
// Operations on chats compose the chat store's XxxTx methods in their own unit of work.
type AgentStore struct {
	c     *Committer
	db    *DB
	chats *ChatStore
}

// NewAgentStore returns the agent store; it commits through the chat store's committer.
func NewAgentStore(chats *ChatStore) *AgentStore {
	return &AgentStore{c: chats.c, db: chats.db, chats: chats}
}

const userColumns = `u.id, u.username, u.display_name, u.role, u.capacity, u.disabled, u.state, u.not_ready_reason,
	u.state_since, u.created_at,
	coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM user_services us JOIN services s ON s.id = us.service_id
		WHERE us.user_id = u.id), '{}')`

func scanUser(row pgx.Row) (agent.User, error) {
	var u agent.User
	var role, state string
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &role, &u.Capacity, &u.Disabled, &state, &u.NotReadyReason,
		&u.StateSince, &u.CreatedAt, &u.Services)
	u.Role, u.State = agent.Role(role), agent.State(state)
	return u, err
}

func errUserNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "user_not_found", "No such user.")
}

// CreateUser inserts a user with its service memberships.
func (s *AgentStore) CreateUser(ctx context.Context, nu agent.NewUser, passwordHash string) (agent.User, error) {
	var u agent.User
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		id, err := insertUser(ctx, tx, nu, passwordHash)
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
		return err
	})
	return u, err
}

func setUserServices(ctx context.Context, tx pgx.Tx, userID int64, services []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM user_services WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, name := range services {
		tag, err := tx.Exec(ctx, `INSERT INTO user_services (user_id, service_id) SELECT $1, id FROM services WHERE name = $2`, userID, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return agentd.Errorf(agentd.EINVALID, "service_not_found", "There is no service named %q.", name)
		}
	}
	return nil
}

// SetUserServices replaces a user's service memberships.
func (s *AgentStore) SetUserServices(ctx context.Context, userID int64, services []string) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error { return setUserServices(ctx, tx, userID, services) })
}

// Users lists every user.
func (s *AgentStore) Users(ctx context.Context) ([]agent.User, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY lower(u.username)`)
	if err != nil {
		return nil, translate(err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.User, error) { return scanUser(r) })
	return us, translate(err)
}

// User returns a user by id.
func (s *AgentStore) User(ctx context.Context, id int64) (agent.User, error) {
	u, err := scanUser(s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	return u, translate(err, errUserNotFound())
}

// UserForLogin returns a user and its password hash by username (case-insensitive).
func (s *AgentStore) UserForLogin(ctx context.Context, username string) (agent.User, string, error) {
	var hash string
	var u agent.User
	row := s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+`, u.password_hash FROM users u WHERE lower(u.username) = lower($1)`, username)
	var role, state string
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &role, &u.Capacity, &u.Disabled, &state, &u.NotReadyReason,
		&u.StateSince, &u.CreatedAt, &u.Services, &hash)
	u.Role, u.State = agent.Role(role), agent.State(state)
	return u, hash, translate(err, errUserNotFound())
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateWebSession stores a new browser session and audits the sign-in, in one commit.
func (s *AgentStore) CreateWebSession(ctx context.Context, ws agent.NewWebSession) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5)`, tokenHash(ws.Token), ws.User.ID, ws.CSRF, ws.At, ws.At.Add(ws.Idle)); err != nil {
			return err
		}
		return audit(ctx, tx, ws.User.ID, "session.login", ws.User.Username, nil)
	})
}

// WebSession returns the user and CSRF token of a live browser session and slides its idle
// expiry, never past the session's absolute lifetime (created_at + maxAge). Times come from the
// caller's clock, the one that created the session.
func (s *AgentStore) WebSession(ctx context.Context, token string, now time.Time, idle, maxAge time.Duration) (agent.User, string, error) {
	var userID int64
	var csrf string
	err := s.db.Pool.QueryRow(ctx, `UPDATE web_sessions SET last_seen_at = $2,
			expires_at = least(greatest(expires_at, $2 + $3::interval), created_at + $4::interval)
		WHERE token_hash = $1 AND expires_at > $2 AND created_at + $4::interval > $2
		RETURNING user_id, csrf_token`, tokenHash(token), now, idle, maxAge).Scan(&userID, &csrf)
	if err != nil {
		return agent.User{}, "", translate(err, agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in."))
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return agent.User{}, "", err
	}
	if u.Disabled {
		return agent.User{}, "", agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in.")
	}
	return u, csrf, nil
}

// DeleteWebSession ends a browser session (signing out). It is announced to the user's consoles
// on every node, so the ones opened with that session close.
func (s *AgentStore) DeleteWebSession(ctx context.Context, token string) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		var userID int64
		err := tx.QueryRow(ctx, `DELETE FROM web_sessions WHERE token_hash = $1 RETURNING user_id`, tokenHash(token)).Scan(&userID)
		if noRows(err) {
			return nil // signed out already
		}
		if err != nil {
			return err
		}
		return tx.notifyAgent(ctx, userID)
	})
}

// SessionAlive reports, without touching it, whether a browser session is live at now: not
// signed out, not idle past its expiry, not past created_at + maxAge. Consoles check it while
// they are open, so a session that ends closes them.
func (s *AgentStore) SessionAlive(ctx context.Context, token string, now time.Time, maxAge time.Duration) error {
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT true FROM web_sessions
		WHERE token_hash = $1 AND expires_at > $2 AND created_at + $3::interval > $2`, tokenHash(token), now, maxAge).Scan(&ok)
	return translate(err, agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "Please sign in."))
}

// SetUserDisabled disables or enables a user by username, audited as user.update by agentd
// itself (the CLI), like the admin form's change. Disabling ends the user's browser sessions, and
// the change is announced to the user's consoles on every node. changed is false when the user
// was in that state already (nothing is written then).
func (s *AgentStore) SetUserDisabled(ctx context.Context, username string, disabled bool) (u agent.User, changed bool, err error) {
	err = s.c.InTx(ctx, func(tx *Tx) error {
		var id int64
		var was bool
		err := tx.QueryRow(ctx, `SELECT id, disabled FROM users WHERE lower(username) = lower($1) FOR UPDATE`, username).Scan(&id, &was)
		if err != nil {
			return translate(err, errUserNotFound())
		}
		if was != disabled {
			changed = true
			if _, err := tx.Exec(ctx, `UPDATE users SET disabled = $2 WHERE id = $1`, id, disabled); err != nil {
				return err
			}
			if disabled {
				if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, id); err != nil {
					return err
				}
			}
			if err := audit(ctx, tx, 0, "user.update", username, map[string]any{"changes": map[string]any{
				"disabled": map[string]any{"old": was, "new": disabled}}}); err != nil {
				return err
			}
			if err := tx.notifyAgent(ctx, id); err != nil {
				return err
			}
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
		return err
	})
	return u, changed, err
}

// LoginFailed audits a refused sign-in (session.login_failed) with the username tried and the
// client's address; userID is 0 for an unknown username.
func (s *AgentStore) LoginFailed(ctx context.Context, userID int64, username, from string) error {
	if len(username) > 128 {
		username = username[:128]
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		return audit(ctx, tx, userID, "session.login_failed", strings.ToValidUTF8(username, "?"), map[string]any{"remote_ip": from})
	})
}

// AuditTx records an action of a user in the caller's transaction, so the action and its audit
// row commit together.
func (s *AgentStore) AuditTx(ctx context.Context, tx *Tx, userID int64, action, target string, details any) error {
	return audit(ctx, tx, userID, action, target, details)
}

func audit(ctx context.Context, tx pgx.Tx, userID int64, action, target string, details any) error {
	if details == nil {
		details = map[string]any{}
	}
	var uid *int64
	if userID != 0 {
		uid = &userID
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (user_id, action, target, details) VALUES ($1, $2, $3, $4)`, uid, action, target, details)
	return err
}

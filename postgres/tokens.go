package postgres

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentd"
	"agentd/notify"
)

// TokenStore keeps the API tokens (stored as sha256 hashes; the secret is shown once).
type TokenStore struct {
	db  *DB
	now func() time.Time
}

// NewTokenStore returns the token store of db; now stamps last use.
func NewTokenStore(db *DB, now func() time.Time) *TokenStore {
	if now == nil {
		now = time.Now
	}
	return &TokenStore{db: db, now: now}
}

const tokenColumns = `t.id, t.name, t.prefix, t.scopes, coalesce(t.user_id, 0), coalesce(u.username, ''),
	t.created_at, t.last_used_at, t.revoked_at`

const tokenFrom = ` FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id`

func scanToken(row pgx.CollectableRow) (notify.Token, error) {
	var t notify.Token
	var scopes []string
	err := row.Scan(&t.ID, &t.Name, &t.Prefix, &scopes, &t.UserID, &t.Username, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	for _, s := range scopes {
		t.Scopes = append(t.Scopes, notify.Scope(s))
	}
	return t, err
}

func errTokenNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "token_not_found", "No live token has that name.")
}

// tokenName is the name a token may have (the table's check).
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CreateToken stores a new token named name with scopes, bound to username when it is not
// empty, and returns the secret (shown once) with the stored token. Audited as token.create
// by agentd (the CLI).
func (s *TokenStore) CreateToken(ctx context.Context, name string, scopes []notify.Scope, username string) (string, notify.Token, error) {
	return s.CreateTokenAudited(ctx, 0, name, scopes, username)
}

// CreateTokenAudited is CreateToken audited as token.create by the user actorID (0: agentd),
// in the same commit; the audit row carries the scopes, the bound user and the prefix, never
// the secret.
func (s *TokenStore) CreateTokenAudited(ctx context.Context, actorID int64, name string, scopes []notify.Scope, username string) (string, notify.Token, error) {
	name = strings.TrimSpace(name)
	if !tokenName.MatchString(name) {
		return "", notify.Token{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "A token needs a name of 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
	}
	if len(scopes) == 0 {
		scopes = []notify.Scope{notify.ScopeRead}
	}
	secret, hash := notify.NewToken()
	var t notify.Token
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var userID *int64
		if username != "" {
			var id int64
			if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE lower(username) = lower($1)`, username).Scan(&id); err != nil {
				return translate(err, errUserNotFound())
			}
			userID = &id
		}
		strs := make([]string, len(scopes))
		for i, sc := range scopes {
			strs[i] = string(sc)
		}
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO api_tokens (name, token_hash, prefix, scopes, user_id) VALUES ($1, $2, $3, $4, $5)
			RETURNING id`, name, hash, secret[:len(notify.TokenPrefix)+6], strs, userID).Scan(&id)
		if isUniqueViolation(err) {
			return agentd.Errorf(agentd.ECONFLICT, "token_exists", "A live token named %q exists already.", name)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+tokenColumns+tokenFrom+` WHERE t.id = $1`, id)
		if err != nil {
			return err
		}
		if t, err = pgx.CollectExactlyOneRow(rows, scanToken); err != nil {
			return err
		}
		return audit(ctx, tx, actorID, "token.create", t.Name, map[string]any{"scopes": strs, "user": t.Username, "prefix": t.Prefix})
	})
	if err != nil {
		return "", notify.Token{}, err
	}
	return secret, t, nil
}

// Tokens lists the tokens, live ones first, then by name.
func (s *TokenStore) Tokens(ctx context.Context) ([]notify.Token, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+tokenColumns+tokenFrom+` ORDER BY t.revoked_at IS NOT NULL, lower(t.name), t.id`)
	if err != nil {
		return nil, translate(err)
	}
	ts, err := pgx.CollectRows(rows, scanToken)
	return ts, translate(err)
}

// RevokeToken revokes the live token named name; it stops working at once on every node.
// Audited as token.revoke by agentd (the CLI).
func (s *TokenStore) RevokeToken(ctx context.Context, name string) error {
	return s.RevokeTokenAudited(ctx, 0, name)
}

// RevokeTokenAudited is RevokeToken audited as token.revoke by the user actorID (0: agentd).
func (s *TokenStore) RevokeTokenAudited(ctx context.Context, actorID int64, name string) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var stored string
		err := tx.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE lower(name) = lower($1) AND revoked_at IS NULL
			RETURNING name`, strings.TrimSpace(name), s.now()).Scan(&stored)
		if err != nil {
			return translate(err, errTokenNotFound())
		}
		return audit(ctx, tx, actorID, "token.revoke", stored, nil)
	})
}

// lastUsedEvery is how often a token's last use is written: not on every request.
const lastUsedEvery = time.Minute

// Authenticate returns the live token whose secret is secret, or unauthorized. A disabled
// bound user makes the token unauthorized too.
func (s *TokenStore) Authenticate(ctx context.Context, secret string) (notify.Token, error) {
	unauthorized := agentd.Errorf(agentd.EUNAUTHORIZED, "unauthorized", "The API token is missing, unknown or revoked.")
	if !strings.HasPrefix(secret, notify.TokenPrefix) || len(secret) > 200 {
		return notify.Token{}, unauthorized
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+tokenColumns+tokenFrom+`
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT coalesce(u.disabled, false)`, notify.HashToken(secret))
	if err != nil {
		return notify.Token{}, translate(err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if err != nil {
		return notify.Token{}, translate(err, unauthorized)
	}
	now := s.now()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedEvery {
		if _, err := s.db.Pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, now); err != nil {
			return notify.Token{}, translate(err)
		}
		t.LastUsedAt = &now
	}
	return t, nil
}

func isUniqueViolation(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == "23505"
}

// Package postgres is agentd's only SQL adapter: the pool, migrations, every statement, the one
// place driver errors are translated (translate), and LISTEN/NOTIFY fan-out between nodes.
//
// Every changing operation is one unit of work, a Tx run by the node's Committer: the change,
// its transcript events, its audit row and the notifications it announces commit together
// (NOTIFY is sent inside the transaction, so other nodes hear of it only if it commits; this
// node's fan-out gets it right after the commit). Operations that other packages compose into
// their own commit have exported XxxTx variants taking the *Tx.
//
// Times the domain compares (offer deadlines, presence, queue order, session expiry, the end of a
// chat) come from the domain's clock as arguments, so one clock both sets and reads them; now()
// and clock_timestamp() only stamp records nobody compares against the domain's clock.
//
// Files hold one aggregate each: interactions, transcript, userdata, notices (the chat store);
// users, routing, assignments, agentwork, surveys, canned, admin (the agent store); tx, wire and
// listen for the unit of work and the fan-out between nodes.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentd"
)

// DB is the connection pool plus what every store needs.
type DB struct {
	Pool   *pgxpool.Pool
	url    string
	logger *slog.Logger
	now    func() time.Time
}

// Open connects to databaseURL and checks that the server answers.
func Open(ctx context.Context, databaseURL string, logger *slog.Logger) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %s", describeParseError(err))
	}
	if !strings.Contains(databaseURL, "pool_max_conns") && cfg.MaxConns < 8 {
		// At least 8: the LISTEN connection is separate, but a node's routers, console refreshes
		// and customer commands share the pool (pool size made no difference to throughput on the
		// 2-core test machine, docs/benchmarks.md; set pool_max_conns in the URL to change it).
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach database at %s: %s", redact(cfg.ConnConfig), rootCause(err))
	}
	return &DB{Pool: pool, url: databaseURL, logger: logger, now: time.Now}, nil
}

// connConfig parses a database URL for a single connection. It goes through the pool parser so
// that pool settings in the URL (pool_max_conns, ...) are accepted and not sent to the server.
func connConfig(databaseURL string) (*pgx.ConnConfig, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %s", describeParseError(err))
	}
	return cfg.ConnConfig, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Pool.Ping(ctx) }

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// describeParseError keeps a parse error to one line without echoing a password.
func describeParseError(err error) string {
	if _, ok := errors.AsType[*pgconn.ParseConfigError](err); ok {
		return "cannot parse the connection string (expected postgres://user:password@host:port/dbname)"
	}
	return rootCause(err)
}

// rootCause returns the innermost error's text, on one line: pgx joins the attempts of a
// multi-address connect with newlines, and configuration errors must fit one line.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// translate is the one place driver errors become application errors. notFound, when given, is
// what a missing row (pgx.ErrNoRows) means to the caller, such as session_not_found; without it a
// missing row is a generic not_found. Every query returns through here.
func translate(err error, notFound ...error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if len(notFound) > 0 {
			return notFound[0]
		}
		return &agentd.Error{Class: agentd.ENOTFOUND, Code: "not_found", Message: "Not found."}
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", &agentd.Error{Class: agentd.ECONFLICT, Code: "conflict", Message: "Already exists."}, pgErr.ConstraintName)
		case "22P02", "22021", "22P05", "23514": // invalid text representation, bad encoding, untranslatable char, check
			return fmt.Errorf("%w: %s", &agentd.Error{Class: agentd.EINVALID, Code: "invalid_argument", Message: "Invalid value."}, pgErr.Message)
		}
	}
	return err
}

// noRows reports whether err says a query found no row, for the lookups where absence is an
// answer (a command not seen before, a chat without survey answers) rather than an error.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// inTx runs fn in a plain transaction (no notifications), committing when it returns nil. Errors
// go through translate. Changing operations on chats use Committer.InTx instead.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after commit
	if err := fn(tx); err != nil {
		return translate(err)
	}
	return translate(tx.Commit(ctx))
}

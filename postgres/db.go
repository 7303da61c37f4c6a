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
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

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
// missing row is a generic not_found. Every query returns through here. A transient failure
// (transient) becomes unavailable, wrapping the driver's error for the log.
func translate(err error, notFound ...error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*agentd.Error](err); ok {
		return err // translated already (inTx translates what its function returned)
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", errUnavailable, err)
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

// errUnavailable is what a client sees of a transient failure.
var errUnavailable = &agentd.Error{Class: agentd.EUNAVAILABLE, Code: "unavailable",
	Message: "The service is briefly unavailable; try again in a moment."}

// transient reports whether err is a failure of the database or of the connection to it that
// may well not happen again a moment later: the server down or restarting (a 0.45 s restart
// failed 135 customer commands as internal before, issue 7 finding 4), a broken connection, no
// answer before the deadline, a lost deadlock or serialization conflict. Such a transaction was
// rolled back, or, when the connection broke during COMMIT, its outcome is unknown; customer
// commands are idempotent by their id, so retrying them is safe either way. Errors about the
// statement itself (a constraint, a type, bad SQL) are not transient: retrying cannot help.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up (the client left, the node stops): not the database
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch code := pgErr.Code; {
		case code == "57P01", code == "57P02", code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		case code == "40001", code == "40P01": // serialization_failure, deadlock_detected: rolled back
			return true
		case code == "53300": // too_many_connections
			return true
		case strings.HasPrefix(code, "08"): // connection exceptions, but a protocol violation is a bug
			return code != "08P01"
		}
		// The server answered about the statement (an authentication failure inside a
		// ConnectError too): asking again gets the same answer.
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true // connection refused, reset, timed out
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true // the database did not answer in time
	}
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true // the connection (or the pool, at shutdown) went away under the query
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true // reset, broken pipe
	}
	return pgconn.SafeToRetry(err) // pgconn knows nothing reached the server
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

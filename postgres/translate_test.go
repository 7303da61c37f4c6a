package postgres

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentd"
)

// TestTranslate: the driver's transient failures become unavailable (retryable), the rest keep
// their meaning. Before issue 7 finding 4, every failure of this list was internal.
func TestTranslate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Real driver errors where they are cheap to get: nothing listens on port 1.
	const nowhere = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	_, refused := pgx.Connect(ctx, nowhere)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, gaveUp := pgx.Connect(cancelled, nowhere)
	_, dialErr := net.DialTimeout("tcp", "127.0.0.1:1", time.Second)
	pool, err := pgxpool.New(ctx, nowhere)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	closedPool := pool.Ping(ctx)
	pg := func(code string) error {
		return fmt.Errorf("query: %w", &pgconn.PgError{Severity: "FATAL", Code: code})
	}

	for _, tc := range []struct {
		name  string
		err   error
		class string
	}{
		{"ConnectionRefused", refused, agentd.EUNAVAILABLE},
		{"DialError", dialErr, agentd.EUNAVAILABLE},
		{"ClosedPool", closedPool, agentd.EUNAVAILABLE},
		{"AdminShutdown", pg("57P01"), agentd.EUNAVAILABLE},
		{"CrashShutdown", pg("57P02"), agentd.EUNAVAILABLE},
		{"CannotConnectNow", pg("57P03"), agentd.EUNAVAILABLE},
		{"ConnectionFailure", pg("08006"), agentd.EUNAVAILABLE},
		{"TransactionResolutionUnknown", pg("08007"), agentd.EUNAVAILABLE},
		{"SerializationFailure", pg("40001"), agentd.EUNAVAILABLE},
		{"Deadlock", pg("40P01"), agentd.EUNAVAILABLE},
		{"TooManyConnections", pg("53300"), agentd.EUNAVAILABLE},
		{"ConnectionBrokeMidQuery", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), agentd.EUNAVAILABLE},
		{"ConnClosed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), agentd.EUNAVAILABLE},
		{"DeadlinePassed", fmt.Errorf("query: %w", context.DeadlineExceeded), agentd.EUNAVAILABLE},
		// The caller gave up, or the statement is wrong: retrying cannot help.
		{"ErrCancelled", gaveUp, agentd.EINTERNAL},
		{"ErrCancelledQuery", fmt.Errorf("query: %w", context.Canceled), agentd.EINTERNAL},
		{"ErrProtocolViolation", pg("08P01"), agentd.EINTERNAL},
		{"ErrAuthentication", pg("28P01"), agentd.EINTERNAL},
		{"ErrDivisionByZero", pg("22012"), agentd.EINTERNAL},
		{"ErrUndefinedTable", pg("42P01"), agentd.EINTERNAL},
		{"ErrUniqueViolation", pg("23505"), agentd.ECONFLICT},
		{"ErrNoRows", pgx.ErrNoRows, agentd.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the driver returned no error to translate")
			}
			got := translate(tc.err)
			if class := agentd.ErrorClass(got); class != tc.class {
				t.Fatalf("translate(%v) is %s, want %s", tc.err, class, tc.class)
			}
			if tc.class == agentd.EUNAVAILABLE {
				if agentd.ErrorCode(got) != "unavailable" || agentd.ErrorMessage(got) == "" {
					t.Fatalf("code %q message %q", agentd.ErrorCode(got), agentd.ErrorMessage(got))
				}
				// Translated again (inTx translates what its function returned): unchanged.
				if again := translate(got); again.Error() != got.Error() || strings.Count(again.Error(), "class=unavailable") != 1 {
					t.Fatalf("translated twice: %v", again)
				}
			}
		})
	}
}

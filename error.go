// Package agentd holds the few types every layer shares: the application error with its codes.
// Domain packages (chat, userdata, agent, notify) and adapters (postgres, web) all speak it, so an
// error raised deep in a transaction reaches the customer's browser with its code intact and
// without internal details.
package agentd

import (
	"errors"
	"fmt"
)

// Error classes. Each maps to one HTTP status in web/ and decides how an error is logged.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ERATELIMITED  = "rate_limited"
	// EUNAVAILABLE is a transient failure of the database: unreachable, restarting, not answering
	// in time, or a transaction that lost a deadlock or serialization conflict. Trying again a
	// moment later may succeed. Nothing was committed, unless the connection broke during the
	// commit itself, when the outcome is unknown: that is why clients retry on their own only
	// commands that are idempotent by their id (every changing customer command is).
	EUNAVAILABLE = "unavailable"
	EINTERNAL    = "internal"
)

// Error is the application error. Class is one of the E* constants; Code is the precise,
// documented code a client sees (docs/protocol.md, "Error codes"), such as "userdata_forbidden".
// Message is safe to show to the client; internal details belong in a wrapped error, never here.
type Error struct {
	Class   string
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("agentd error: class=%s code=%s message=%s", e.Class, e.Code, e.Message)
}

// Errorf returns an *Error with the given class, code and formatted message.
func Errorf(class, code, format string, args ...any) *Error {
	return &Error{Class: class, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorClass returns the class of err, or EINTERNAL when err is not (or does not wrap) an *Error.
func ErrorClass(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Class
	}
	return EINTERNAL
}

// ErrorCode returns the client-facing code of err, "internal" for errors that are not an *Error.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return "internal"
}

// ErrorMessage returns the client-safe message of err; internal errors get a generic text so
// nothing about the server leaks.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "Internal error."
}

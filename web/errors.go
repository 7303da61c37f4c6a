package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/web/templates"
)

// ErrorHandler is the one Echo error handler: JSON for APIs and sockets, a templ error page for
// pages. Internal errors are logged once, here, with the request's method and route; their
// details never reach the client.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client went away mid-request: nothing to answer, and not our error. Logged
			// below ERROR, so nobody can fill the error log by hanging up.
			logger.Debug("request aborted by the client", "method", c.Request().Method, "path", c.Path())
			return
		}
		status, code, msg := http.StatusInternalServerError, "internal", "Internal error."
		if he, ok := errors.AsType[*echo.HTTPError](err); ok {
			status, code = he.Code, strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
			msg = http.StatusText(he.Code)
		} else if se, ok := errors.AsType[*statusError](err); ok {
			status, code, msg = se.status, se.code, se.message
		} else {
			status, code, msg = Status(err), agentd.ErrorCode(err), agentd.ErrorMessage(err)
		}
		switch {
		case agentd.ErrorClass(err) == agentd.EUNAVAILABLE:
			// A transient failure of the database (a restart, usually): the client is told to
			// come back, and the log gets one warning per request, not an error.
			logger.Warn("request failed: database unavailable", "method", c.Request().Method, "path", c.Path(), "err", err)
			c.Response().Header().Set("Retry-After", "1")
		case status >= 500:
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
			code, msg = "internal", "Something went wrong on our side. Please try again."
		}
		if WantsHTML(c) {
			// Rendered even when the request's context has ended: a body cut off by the read
			// timeout ends it, and the page may still reach the client (templ refuses to render
			// under an ended context, which left an empty 200).
			r := c.Request()
			c.SetRequest(r.WithContext(context.WithoutCancel(r.Context())))
			_ = Render(c, status, templates.ErrorPage(status, http.StatusText(status), msg))
			return
		}
		_ = c.JSON(status, map[string]any{"error": map[string]string{"code": code, "description": msg}})
	}
}

// Status is the HTTP status of an application error: the one table from error classes to
// statuses.
func Status(err error) int {
	switch agentd.ErrorClass(err) {
	case agentd.EINVALID:
		return http.StatusBadRequest
	case agentd.ENOTFOUND:
		return http.StatusNotFound
	case agentd.ECONFLICT:
		return http.StatusConflict
	case agentd.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case agentd.EFORBIDDEN:
		return http.StatusForbidden
	case agentd.ERATELIMITED:
		return http.StatusTooManyRequests
	case agentd.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WantsHTML tells pages (which get redirects and error pages) from API calls (which get JSON).
// Everything under /api/ is an API call, whatever it sends or accepts.
func WantsHTML(c echo.Context) bool {
	r := c.Request()
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// LogCommandError logs a websocket command's failure once, if it was the server's: an internal
// error at ERROR, unless the command only failed because its socket was closed meanwhile (ctx is
// the connection's), which is the client going away, logged at DEBUG; a transient failure of the
// database (answered unavailable, and retried by the client) at WARN. Other errors are the
// client's and are not logged.
func LogCommandError(ctx context.Context, logger *slog.Logger, cmd string, err error) {
	switch {
	case agentd.ErrorClass(err) == agentd.EUNAVAILABLE:
		logger.Warn("command failed: database unavailable", "cmd", cmd, "err", err)
	case agentd.ErrorClass(err) != agentd.EINTERNAL:
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		logger.Debug("command aborted: the connection closed", "cmd", cmd)
	default:
		logger.Error("command failed", "cmd", cmd, "err", err)
	}
}

package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// FormLimit is the body of a small form: sign-in, sign-out, a user, a canned response (its 4000
// characters of text take 48,000 bytes URL-encoded at worst, 12 bytes a character). Surfaces
// with larger forms declare their own limit with BodyLimit.
const FormLimit = 64 << 10

// Every route has a body limit. Routes that take no body (every GET: pages, websocket upgrades,
// health, metrics, assets) refuse any with 413 before routing goes further (guardBody); forms
// declare theirs with BodyLimit, and a route that declares none reads its body as empty. An
// oversized body is never read, so nothing of it is kept in memory or written to disk (net/http
// writes multipart file parts above 32 MB to the temporary directory).

// statusError is a refusal of the request itself, with a status outside the error classes'
// table (413, 415, 408) and a message safe to show.
type statusError struct {
	status        int
	code, message string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// guardedBody is a request body nothing may read until BodyLimit opened it: reading it fails
// without touching the connection.
type guardedBody struct{ body io.ReadCloser }

var errBodyNotAllowed = errors.New("this route takes no request body")

func (g *guardedBody) Read([]byte) (int, error) { return 0, errBodyNotAllowed }
func (g *guardedBody) Close() error             { return g.body.Close() }

// guardBody is every request's default: no body. A request other than POST that announces one
// (a Content-Length above zero, or a chunked body) is refused with 413 at once; a POST's or
// PUT's body is guarded until the route's BodyLimit (or ReadJSONBody) opens it.
func guardBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			return refuseBody(c, http.StatusRequestEntityTooLarge, "body_too_large", "This address takes no request body.")
		}
		r.Body = &guardedBody{body: r.Body}
		return next(c)
	}
}

// BodyLimit lets a route (or a group) read a form body of at most limit bytes. It must come
// before anything that reads the form (Auth.Require reads its CSRF token); the first BodyLimit
// on a route decides. A Content-Length above the limit is refused with 413 before anything is
// read; otherwise the body is read into memory, and one that runs past the limit (chunked) is
// refused with 413 as well. Our forms are URL-encoded: any other body, multipart above all, is
// refused with 415 rather than parsed.
func BodyLimit(limit int64) echo.MiddlewareFunc {
	return BodyLimitFunc(func(echo.Context) int64 { return limit })
}

// BodyLimitFunc is BodyLimit with the limit chosen per request, for a group whose routes take
// forms of different sizes (c.Path() is the route matched).
func BodyLimitFunc(limit func(echo.Context) int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			g, ok := r.Body.(*guardedBody)
			if !ok {
				return next(c) // no body, or an earlier BodyLimit opened it
			}
			n := limit(c)
			tooLarge := fmt.Sprintf("This form takes at most %s; nothing was saved.", byteSize(n))
			if r.ContentLength > n {
				return refuseBody(c, http.StatusRequestEntityTooLarge, "body_too_large", tooLarge)
			}
			b, err := io.ReadAll(io.LimitReader(g.body, n+1))
			switch {
			case err != nil:
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					return refuseBody(c, http.StatusRequestTimeout, "request_timeout", "The form did not arrive in time. Please try again.")
				}
				return refuseBody(c, http.StatusBadRequest, "bad_request", "The form could not be read.")
			case int64(len(b)) > n:
				return refuseBody(c, http.StatusRequestEntityTooLarge, "body_too_large", tooLarge)
			}
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); len(b) > 0 && mt != "application/x-www-form-urlencoded" {
				return refuseBody(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "Forms are sent URL-encoded (application/x-www-form-urlencoded).")
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			return next(c)
		}
	}
}

// refuseBody answers a request whose body is not read (not all of it, or not at all). It closes
// the connection after the answer: otherwise net/http would first read up to 256 KiB of the rest
// to keep the connection, and the client would wait for its answer until it had sent that.
func refuseBody(c echo.Context, status int, code, message string) error {
	c.Response().Header().Set(echo.HeaderConnection, "close")
	return &statusError{status: status, code: code, message: message}
}

// byteSize says a limit as people read it: 64 KiB, 1 MiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// ReadJSONBody reads the JSON body of an API request (web/api), at most limit bytes: a larger
// one is refused with 413 (body_too_large) without reading the rest, a body not declared JSON
// with 415. A request without a body reads as empty.
func ReadJSONBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	g, ok := r.Body.(*guardedBody)
	if !ok {
		return nil, nil
	}
	tooLarge := fmt.Sprintf("This request takes at most %s of JSON; nothing was saved.", byteSize(limit))
	if r.ContentLength > limit {
		return nil, refuseBody(c, http.StatusRequestEntityTooLarge, "body_too_large", tooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(g.body, limit+1))
	switch {
	case err != nil:
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, refuseBody(c, http.StatusRequestTimeout, "request_timeout", "The request body did not arrive in time. Please try again.")
		}
		return nil, refuseBody(c, http.StatusBadRequest, "bad_request", "The request body could not be read.")
	case int64(len(b)) > limit:
		return nil, refuseBody(c, http.StatusRequestEntityTooLarge, "body_too_large", tooLarge)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); len(b) > 0 && mt != "application/json" {
		return nil, refuseBody(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "The request body is JSON (Content-Type: application/json).")
	}
	return b, nil
}

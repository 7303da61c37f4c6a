package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestReadJSONBody: an API route reads a JSON body within its limit, by POST or PUT; a larger
// one (declared or chunked) is refused with 413, a body of another type with 415, and a body on
// a method that takes none (DELETE) with 413 before the handler runs.
func TestReadJSONBody(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(slog.New(slog.DiscardHandler))
	e.Use(guardBody)
	read := func(c echo.Context) error {
		b, err := ReadJSONBody(c, 64)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, "got="+string(b))
	}
	e.PUT("/api/json", read)
	e.POST("/api/json", read)
	e.DELETE("/api/json", read)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	req := func(method, body, ctype string, chunked bool) *http.Request {
		r, _ := http.NewRequest(method, srv.URL+"/api/json", strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if chunked {
			r.Body = io.NopCloser(struct{ io.Reader }{r.Body})
			r.ContentLength = -1
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		status  int
		content string
	}{
		{"OK_Put", req("PUT", `{"a":1}`, "application/json", false), 200, `got={"a":1}`},
		{"OK_PostCharset", req("POST", `{"a":1}`, "application/json; charset=utf-8", false), 200, `got={"a":1}`},
		{"OK_PutChunked", req("PUT", `{"a":2}`, "application/json", true), 200, `got={"a":2}`},
		{"OK_NoBody", req("PUT", ``, "", false), 200, `got=`},
		{"ErrTooLarge", req("PUT", `{"a":"`+strings.Repeat("x", 100)+`"}`, "application/json", false), 413, "body_too_large"},
		{"ErrTooLargeChunked", req("PUT", `{"a":"`+strings.Repeat("x", 100)+`"}`, "application/json", true), 413, "body_too_large"},
		{"ErrNotJSON", req("PUT", `a=1`, "application/x-www-form-urlencoded", false), 415, "unsupported_media_type"},
		{"ErrDeleteWithBody", req("DELETE", `{"a":1}`, "application/json", false), 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, tc.r)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.content) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
}

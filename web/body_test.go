package web

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// bodyServer serves a form route with a 1 KiB limit, a POST route without one and a page,
// behind guardBody and the error handler, as NewServer wires them. Each handler answers with
// the form field "f" it read.
func bodyServer(t *testing.T) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(slog.New(slog.DiscardHandler))
	e.Use(guardBody)
	echoField := func(c echo.Context) error { return c.String(http.StatusOK, "f="+c.FormValue("f")) }
	e.POST("/form", echoField, BodyLimit(1<<10))
	e.POST("/unlimited", echoField)
	e.GET("/page", echoField)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestBodyLimit: a form route reads a URL-encoded body within its limit and nothing else; other
// routes read no body at all.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	srv := bodyServer(t)
	form := func(path, body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	// chunked hides the body's length, so the request goes chunked.
	chunked := func(req *http.Request) *http.Request {
		req.Body = io.NopCloser(struct{ io.Reader }{req.Body})
		req.ContentLength = -1
		return req
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("f", "multi")
	_ = mw.Close()
	multi, _ := http.NewRequest(http.MethodPost, srv.URL+"/form", &mp)
	multi.Header.Set("Content-Type", mw.FormDataContentType())
	getWithBody, _ := http.NewRequest(http.MethodGet, srv.URL+"/page", strings.NewReader("f=x"))
	full := "f=" + strings.Repeat("a", 1<<10-2)

	for name, tc := range map[string]struct {
		req    *http.Request
		status int
		want   string
	}{
		"OK":                     {form("/form", "f=hello"), http.StatusOK, "f=hello"},
		"OK_AtTheLimit":          {form("/form", full), http.StatusOK, full},
		"OK_Chunked":             {chunked(form("/form", "f=chunks")), http.StatusOK, "f=chunks"},
		"OK_Empty":               {form("/form", ""), http.StatusOK, "f="},
		"ErrTooLarge":            {form("/form", full+"a"), http.StatusRequestEntityTooLarge, "at most 1 KiB"},
		"ErrTooLargeChunked":     {chunked(form("/form", full+"a")), http.StatusRequestEntityTooLarge, "at most 1 KiB"},
		"ErrMultipart":           {multi, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		"ErrBodyOnAGet":          {getWithBody, http.StatusRequestEntityTooLarge, "takes no request body"},
		"OK_NoLimitReadsNothing": {form("/unlimited", "f=ignored"), http.StatusOK, "f="},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := send(t, tc.req)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if tc.status != http.StatusOK && !resp.Close {
				t.Fatal("a refused body's connection is kept: net/http would read the rest first")
			}
		})
	}

	t.Run("ErrTooLarge_PageForAForm", func(t *testing.T) {
		resp, body := send(t, form("/form", full+"a"))
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "nothing was saved") {
			t.Fatalf("%d %s: want a readable page", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// TestBodyLimitAnswersBeforeTheBody: a Content-Length over the limit is answered at once, while
// the client has sent none of its body.
func TestBodyLimitAnswersBeforeTheBody(t *testing.T) {
	t.Parallel()
	srv := bodyServer(t)
	for _, path := range []string{"/form", "/page"} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		method := http.MethodPost
		if path == "/page" {
			method = http.MethodGet
		}
		head := method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 300000000\r\n\r\n"
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s %s without its body: %v, want a 413 at once", method, path, err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s %s: %d, want 413", method, path, resp.StatusCode)
		}
	}
}

// TestBodyLimitSlowBody: a form body cut off by the server's read timeout is answered 408 with
// the error page, though the read error ended the request's context (templ renders nothing
// under an ended context: the answer was an empty 200).
func TestBodyLimitSlowBody(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(slog.New(slog.DiscardHandler))
	e.Use(guardBody)
	e.POST("/form", func(c echo.Context) error { return c.String(http.StatusOK, "read") }, BodyLimit(1<<10))
	srv := httptest.NewUnstartedServer(e)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half the announced body, then nothing.
	if _, err := c.Write([]byte("POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nf=abc")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "did not arrive in time") {
		t.Fatalf("%d %q, want 408 with the error page", resp.StatusCode, b)
	}
}

// Package web is the shared HTTP core of agentd, which every surface is built on: the Echo server
// with its middleware, the listener's connection caps, request body limits, the one error
// handler, sign-in and browser sessions with role and CSRF checks, Prometheus metrics, rendering
// helpers, the one websocket connection core (Conn: a read pump, a write pump, a bounded queue,
// dirty marks and resync) and the hub that fans notifications out to this node's connections.
//
// The surfaces live in packages of their own, each built from an explicit dependencies struct
// and registering its own routes: web/customer (the customer socket and protocol), web/console
// (the agent console), web/admin, web/survey and web/api (the integrator REST API). They use this package and the domain packages,
// never each other. Templates are in web/templates.
package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"log/slog"

	"agentd/static"
)

// Surface is a part of agentd's HTTP side with routes of its own (the customer socket, the
// console, admin, the survey).
type Surface interface {
	Register(e *echo.Echo)
}

// ServerDeps is what a Server is built from.
type ServerDeps struct {
	Logger  *slog.Logger
	Metrics *Metrics // may be nil
	Auth    *Auth
	// Ready reports whether the node can serve (database reachable, migrations current, LISTEN
	// connected), for /readyz.
	Ready func(context.Context) error
	// FrameSrc is the co-browse provider's URL template; its origin may be framed by our pages.
	FrameSrc string
	Surfaces []Surface
}

// Server is the HTTP server of one agentd node: core routes (health, readiness, metrics, static
// assets, sign-in) and the surfaces' routes, behind the shared middleware and error handler.
type Server struct {
	d    ServerDeps
	echo *echo.Echo
}

// NewServer builds the server and its routes.
func NewServer(d ServerDeps) *Server {
	s := &Server{d: d}
	s.echo = s.routes()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Routes returns every route as "METHOD /path/:param", for tests that check each of them (every
// POST has its body limit).
func (s *Server) Routes() []string {
	var routes []string
	for _, r := range s.echo.Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	return routes
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = ErrorHandler(s.d.Logger)
	e.Pre(headAsGet)
	e.Use(middleware.Recover())
	if s.d.Metrics != nil {
		e.Use(s.d.Metrics.middleware)
		e.GET("/metrics", s.d.Metrics.handler())
		s.d.Metrics.registerPprof(e)
	}
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: contentSecurityPolicy(s.d.FrameSrc),
	}))
	e.Use(guardBody)
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/console") })
	s.d.Auth.register(e)
	for _, sf := range s.d.Surfaces {
		sf.Register(e)
	}
	assets := http.StripPrefix("/static/", http.FileServerFS(static.FS))
	e.GET("/static/*", func(c echo.Context) error {
		if strings.HasSuffix(c.Request().URL.Path, ".go") {
			return echo.ErrNotFound
		}
		// Websites embed chat-service.js from us: let them, and keep it fresh across deploys.
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		c.Response().Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	return e
}

// headAsGet answers HEAD like GET: Echo routes HEAD only where a HEAD route is registered, so
// without this a HEAD of a page (a monitor, a link checker) found no route. Echo routes with the
// request's own method, so it is set to GET for the routing and the handler, the body is
// discarded, and the method is HEAD again when the request is done.
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodHead {
			return next(c)
		}
		r.Method = http.MethodGet
		defer func() { r.Method = http.MethodHead }()
		c.Response().Writer = headWriter{c.Response().Writer}
		return next(c)
	}
}

// headWriter sends the headers of a response and none of its body.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// contentSecurityPolicy allows our own resources only, plus frames from the co-browse provider.
func contentSecurityPolicy(frameSrc string) string {
	csp := "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if frameSrc != "" {
		if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(frameSrc)); err == nil && u.Host != "" {
			csp += "; frame-src " + u.Scheme + "://" + u.Host
		}
	}
	return csp
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if err := s.d.Ready(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

package web

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"agentd/chat"
)

// Metrics are the node's Prometheus metrics. They live in their own registry (no global state).
type Metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	reqDuration  *prometheus.HistogramVec
	commands     *prometheus.CounterVec
	cmdDuration  *prometheus.HistogramVec
	broadcasts   *prometheus.CounterVec
	slowDropped  prometheus.Counter
	loginFailed  *prometheus.CounterVec
	metricsToken string
	pprof        bool
}

// Gauges reads values that live in Postgres at scrape time.
type Gauges interface {
	QueueWaiting(ctx context.Context) (map[string]int, error)
	AgentStates(ctx context.Context) (map[string]int, error)
}

// Connections reads the HTTP listener's connection counts at scrape time (LimitListener).
type Connections interface {
	Stats() ConnStats
}

// MetricsDeps is what Metrics is built from.
type MetricsDeps struct {
	Hub    *Hub        // open websockets
	Gauges Gauges      // queue and agent counts, read at scrape time
	Conns  Connections // open and refused connections; may be nil
	// Token, when set, is required as a bearer token by /metrics; without it only loopback may
	// scrape.
	Token string
	// Pprof serves Go's profiles under /debug/pprof/ (AGENTD_PPROF), with the same protection as
	// /metrics. Off by default.
	Pprof bool
}

// NewMetrics creates the registry with process, Go, HTTP, websocket, command and queue metrics.
func NewMetrics(d MetricsDeps) *Metrics {
	hub, gauges := d.Hub, d.Gauges
	m := &Metrics{registry: prometheus.NewRegistry(), metricsToken: d.Token, pprof: d.Pprof}
	if d.Conns != nil {
		m.registry.MustRegister(&connCollector{conns: d.Conns,
			open: prometheus.NewDesc("agentd_http_connections", "Open HTTP connections, websockets included.", nil, nil),
			refused: prometheus.NewDesc("agentd_http_connections_refused_total",
				"Connections refused at accept: per_address (AGENTD_MAX_CONNS_PER_ADDR reached), node (AGENTD_MAX_CONNS reached).", []string{"limit"}, nil),
		})
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentd_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"method", "route", "status"})
	m.reqDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agentd_http_request_duration_seconds", Help: "HTTP request latency (websocket upgrades excluded).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentd_commands_total", Help: "Websocket commands by surface, command and result code.",
	}, []string{"surface", "cmd", "result"})
	m.cmdDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agentd_command_duration_seconds", Help: "Websocket command latency, including the commit.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"surface", "cmd"})
	m.broadcasts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentd_notifications_total", Help: "Notifications fanned out by this node's hub, by kind.",
	}, []string{"kind"})
	m.slowDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agentd_slow_connections_dropped_total", Help: "Sockets closed because the client did not read.",
	})
	m.loginFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentd_login_failures_total",
		Help: "Sign-ins refused: bad_credentials (wrong username or password), throttled (too many from one address), slowed (answered late: many addresses guessing at one account).",
	}, []string{"reason"})
	m.registry.MustRegister(m.loginFailed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.reqDuration, m.commands, m.cmdDuration, m.broadcasts, m.slowDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "agentd_websocket_connections", Help: "Open websockets on this node."},
			func() float64 { return float64(hub.Count()) }),
		&dbCollector{gauges: gauges,
			waiting: prometheus.NewDesc("agentd_queue_waiting", "Chats waiting in each service's queue.", []string{"service"}, nil),
			agents:  prometheus.NewDesc("agentd_agents", "Agents by presence state.", []string{"state"}, nil),
		},
	)
	return m
}

// dbCollector reads queue and agent counts from Postgres when scraped (bounded by a timeout).
type dbCollector struct {
	gauges          Gauges
	waiting, agents *prometheus.Desc
}

func (d *dbCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.waiting; ch <- d.agents }

func (d *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := d.gauges.QueueWaiting(ctx); err == nil {
		for svc, n := range q {
			ch <- prometheus.MustNewConstMetric(d.waiting, prometheus.GaugeValue, float64(n), svc)
		}
	}
	if a, err := d.gauges.AgentStates(ctx); err == nil {
		for st, n := range a {
			ch <- prometheus.MustNewConstMetric(d.agents, prometheus.GaugeValue, float64(n), st)
		}
	}
}

// connCollector reads the listener's counts when scraped.
type connCollector struct {
	conns         Connections
	open, refused *prometheus.Desc
}

func (k *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- k.open; ch <- k.refused }

func (k *connCollector) Collect(ch chan<- prometheus.Metric) {
	st := k.conns.Stats()
	ch <- prometheus.MustNewConstMetric(k.open, prometheus.GaugeValue, float64(st.Open))
	for _, limit := range []string{LimitPerAddr, LimitNode} {
		ch <- prometheus.MustNewConstMetric(k.refused, prometheus.CounterValue, float64(st.Refused[limit]), limit)
	}
}

// Command counts a websocket command of a surface by its result code, and its latency. cmd must
// come from a bounded set (the surface's known commands, else "unknown").
func (m *Metrics) Command(surface, cmd, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(surface, cmd, code).Inc()
	m.cmdDuration.WithLabelValues(surface, cmd).Observe(d.Seconds())
}

// Broadcast counts a notification of the node's fan-out.
func (m *Metrics) Broadcast(n chat.Notification) {
	if m != nil {
		m.broadcasts.WithLabelValues(string(n.Kind)).Inc()
	}
}

// LoginFailed counts a refused or slowed sign-in by reason.
func (m *Metrics) LoginFailed(reason string) {
	if m != nil {
		m.loginFailed.WithLabelValues(reason).Inc()
	}
}

// Dropped counts a socket closed because its client did not read.
func (m *Metrics) Dropped() {
	if m != nil {
		m.slowDropped.Inc()
	}
}

// middleware counts requests by route pattern (never by raw path, which would explode labels),
// with the status the client got. A handler's error is handed to the one error handler here, so
// the response is written before it is counted: a refused /admin counts as 403, not 200.
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
		if !strings.HasPrefix(route, "/ws/") {
			m.reqDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
		return nil
	}
}

// handler serves /metrics to loopback scrapers, or to anyone with the bearer token when one is set.
func (m *Metrics) handler() echo.HandlerFunc {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m.guard(echo.WrapHandler(h))
}

// guard lets through what /metrics lets through: the bearer token when one is set, else
// loopback only.
func (m *Metrics) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if m.metricsToken != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(m.metricsToken)) != 1 {
				return c.String(http.StatusUnauthorized, "metrics need the bearer token (AGENTD_METRICS_TOKEN)\n")
			}
		} else if ip := net.ParseIP(c.RealIP()); ip == nil || !ip.IsLoopback() {
			return c.String(http.StatusForbidden, "metrics are served to loopback only unless AGENTD_METRICS_TOKEN is set\n")
		}
		return next(c)
	}
}

// registerPprof serves Go's profiles under /debug/pprof/ (heap, goroutine, allocs, profile,
// trace, ...) behind guard, when AGENTD_PPROF is on.
func (m *Metrics) registerPprof(e *echo.Echo) {
	if !m.pprof {
		return
	}
	e.GET("/debug/pprof/cmdline", m.guard(echo.WrapHandler(http.HandlerFunc(pprof.Cmdline))))
	e.GET("/debug/pprof/profile", m.guard(echo.WrapHandler(http.HandlerFunc(pprof.Profile))))
	e.GET("/debug/pprof/symbol", m.guard(echo.WrapHandler(http.HandlerFunc(pprof.Symbol))))
	e.GET("/debug/pprof/trace", m.guard(echo.WrapHandler(http.HandlerFunc(pprof.Trace))))
	// Index serves the list at /debug/pprof/ and every named profile below it.
	e.GET("/debug/pprof/*", m.guard(echo.WrapHandler(http.HandlerFunc(pprof.Index))))
}

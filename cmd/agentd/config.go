package main

import (
	"cmp"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/jobs"
	"agentd/notify"
	"agentd/userdata"
	"agentd/web/api"
	"agentd/web/customer"
	"agentd/web/supervisor"
)

// Config is agentd's configuration, from flags and environment (flags win). docs/configuration.md
// lists every setting.
type Config struct {
	Addr         string
	DatabaseURL  string
	NodeID       string
	LogFormat    string // text or json
	LogLevel     slog.Level
	Customer     customer.Config
	Chat         chat.Config
	Agent        agent.Config
	Router       agent.RouterConfig
	Accounts     agent.AccountsConfig
	Jobs         jobs.Config
	Webhooks     notify.WebhookConfig
	HTTP         HTTPConfig
	MetricsToken string
	// Pprof serves Go's profiles at /debug/pprof/ with /metrics' protection (AGENTD_PPROF).
	Pprof bool
	API   api.Config // the integrator REST API (config_api.go)
	// Dashboard is the periods of the supervisors' live dashboard (defaults when zero; only
	// tests set them).
	Dashboard supervisor.DashboardConfig
	// Dev is `agentd dev`: the demo co-browse provider page is served, and used as the co-browse
	// provider unless AGENTD_COBROWSE_URL names one.
	Dev            bool
	allowedOrigins string
	// eventRetention is AGENTD_EVENT_RETENTION as given; load parses it into Jobs.
	eventRetention string
	// commandRetention is AGENTD_COMMAND_RETENTION as given; load parses it into Jobs.
	commandRetention string
	// webhookRotation is AGENTD_WEBHOOK_ROTATION_WINDOW as given; loadWebhooks parses it.
	webhookRotation string
}

// HTTPConfig is the HTTP server's timeouts and connection caps (docs/configuration.md,
// docs/operations.md "Connection limits").
type HTTPConfig struct {
	// ReadTimeout bounds reading a request, headers and body; WriteTimeout bounds handling it and
	// writing the answer, from the end of its headers. Websockets are hijacked from the server
	// and keep their own deadlines (web/conn.go), so neither limits how long a socket lives.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for its next request
	// (AGENTD_HTTP_IDLE_TIMEOUT).
	IdleTimeout time.Duration
	// MaxConnsPerAddr caps the connections open from one client address, websockets included
	// (AGENTD_MAX_CONNS_PER_ADDR).
	MaxConnsPerAddr int
	// MaxConns caps the node's connections (AGENTD_MAX_CONNS); when zero, Run derives it from
	// the process's descriptor limit.
	MaxConns int
}

// DefaultHTTPConfig holds the defaults of HTTPConfig. A request's body is at most 1 MiB (the
// admin service form), so 30 s to read one allows a client as slow as 35 KB/s, and the write
// timeout leaves a request as long again to be handled.
var DefaultHTTPConfig = HTTPConfig{ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxConnsPerAddr: 256}

// env returns the environment variable or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// bindFlags declares the flags shared by serve, migrate and dev, with defaults from the environment.
func (c *Config) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", env("AGENTD_ADDR", "127.0.0.1:8080"), "listen address (AGENTD_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "Postgres URL (DATABASE_URL)")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", env("AGENTD_ALLOWED_ORIGINS", ""), "comma-separated origins allowed to open customer sockets; empty = same origin only; * = any (AGENTD_ALLOWED_ORIGINS)")
	fs.StringVar(&c.NodeID, "node-id", env("AGENTD_NODE_ID", ""), "this node's name in logs and notifications; default host:pid:random (AGENTD_NODE_ID)")
	fs.StringVar(&c.Agent.PublicURL, "public-url", env("AGENTD_PUBLIC_URL", ""), "agentd's base URL as customers reach it, for survey links; default http://ADDR (AGENTD_PUBLIC_URL)")
	fs.StringVar(&c.Agent.CoBrowseURL, "cobrowse-url", env("AGENTD_COBROWSE_URL", ""), "co-browse provider URL template with {CoBrowseSessionId} and {interactionId} (AGENTD_COBROWSE_URL)")
	fs.StringVar(&c.MetricsToken, "metrics-token", env("AGENTD_METRICS_TOKEN", ""), "bearer token for /metrics; without it only loopback may scrape (AGENTD_METRICS_TOKEN)")
	fs.StringVar(&c.LogFormat, "log-format", env("AGENTD_LOG_FORMAT", "text"), "log format: text or json (AGENTD_LOG_FORMAT)")
	fs.StringVar(&c.webhookRotation, "webhook-rotation-window", env("AGENTD_WEBHOOK_ROTATION_WINDOW", ""), "how long a rotated-out webhook secret still signs deliveries; default 24h (AGENTD_WEBHOOK_ROTATION_WINDOW)")
	fs.StringVar(&c.eventRetention, "event-retention", env("AGENTD_EVENT_RETENTION", ""), "how long integration events (the event stream, webhook deliveries) are kept; default 720h (AGENTD_EVENT_RETENTION)")
	fs.StringVar(&c.commandRetention, "command-retention", env("AGENTD_COMMAND_RETENTION", ""), "how long a customer command id is honoured before its stored result is pruned; default 24h (AGENTD_COMMAND_RETENTION)")
}

// load validates the flags and reads the numeric settings from the environment. Every error is
// one line naming the setting.
func (c *Config) load() error {
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set (or use --database-url, or `agentd dev` for a local database)")
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.Contains(c.DatabaseURL, "=") {
		return errors.New("DATABASE_URL must be a postgres:// URL or a key=value connection string")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("AGENTD_ADDR %q is not host:port", c.Addr)
	}
	origins, err := customer.ParseOrigins(c.allowedOrigins)
	if err != nil {
		return fmt.Errorf("AGENTD_ALLOWED_ORIGINS: %w", err)
	}
	c.Customer.AllowedOrigins = origins
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("AGENTD_LOG_FORMAT must be text or json, not %q", c.LogFormat)
	}
	if v := env("AGENTD_PPROF", ""); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("AGENTD_PPROF must be 1 or 0, not %q", v)
		}
		c.Pprof = on
	}
	if err := c.LogLevel.UnmarshalText([]byte(env("AGENTD_LOG_LEVEL", "info"))); err != nil {
		return fmt.Errorf("AGENTD_LOG_LEVEL: %w", err)
	}
	if c.NodeID == "" {
		// Unique per process and per Main: a node ignores NOTIFYs carrying its own id, so two
		// nodes sharing one id would miss each other's events.
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.NodeID = fmt.Sprintf("%s:%d:%x", host, os.Getpid(), b)
	}
	// A value already set (by a program embedding agentd, or a test) is the default the
	// environment can override; unset ones default to the packages' defaults.
	lim := c.Chat.UserDataLimits
	ints := []struct {
		name string
		dst  *int
		def  int
	}{
		{"AGENTD_MAX_FRAME_BYTES", &c.Customer.MaxFrameBytes, customer.DefaultConfig.MaxFrameBytes},
		{"AGENTD_MAX_MESSAGE_CHARS", &c.Chat.MaxMessageChars, chat.DefaultConfig.MaxMessageChars},
		{"AGENTD_STARTS_PER_MINUTE", &c.Customer.StartsPerMinute, customer.DefaultConfig.StartsPerMinute},
		{"AGENTD_CONNECTS_PER_MINUTE", &c.Customer.ConnectsPerMinute, customer.DefaultConfig.ConnectsPerMinute},
		{"AGENTD_USERDATA_MAX_KEYS", &lim.MaxKeys, userdata.DefaultLimits.MaxKeys},
		{"AGENTD_USERDATA_MAX_KEY_LENGTH", &lim.MaxKeyLen, userdata.DefaultLimits.MaxKeyLen},
		{"AGENTD_USERDATA_MAX_VALUE_BYTES", &lim.MaxValueBytes, userdata.DefaultLimits.MaxValueBytes},
		{"AGENTD_USERDATA_MAX_TOTAL_BYTES", &lim.MaxTotalBytes, userdata.DefaultLimits.MaxTotalBytes},
		{"AGENTD_MAX_CONNS_PER_ADDR", &c.HTTP.MaxConnsPerAddr, DefaultHTTPConfig.MaxConnsPerAddr},
	}
	for _, s := range ints {
		def := s.def
		if *s.dst > 0 {
			def = *s.dst
		}
		v, err := strconv.Atoi(env(s.name, strconv.Itoa(def)))
		if err != nil || v <= 0 {
			return fmt.Errorf("%s must be a positive integer", s.name)
		}
		*s.dst = v
	}
	if c.Customer.StartBurst == 0 {
		c.Customer.StartBurst = c.Customer.StartsPerMinute
	}
	if c.Customer.ConnectBurst == 0 {
		c.Customer.ConnectBurst = max(c.Customer.ConnectsPerMinute/2, 1)
	}
	cps, err := strconv.ParseFloat(env("AGENTD_COMMANDS_PER_SECOND", strconv.FormatFloat(customer.DefaultConfig.CommandsPerSecond, 'f', -1, 64)), 64)
	if err != nil || cps <= 0 {
		return errors.New("AGENTD_COMMANDS_PER_SECOND must be a positive number")
	}
	if c.Customer.CommandsPerSecond == 0 {
		c.Customer.CommandsPerSecond, c.Customer.CommandBurst = cps, int(2*cps)
	}
	if c.Customer.MaxFrameBytes > 1<<20-1 {
		return errors.New("AGENTD_MAX_FRAME_BYTES must be below 1048576")
	}
	c.Chat.UserDataLimits = lim
	d, err := time.ParseDuration(env("AGENTD_ENDED_SESSION_READABLE", chat.DefaultConfig.EndedReadable.String()))
	if err != nil || d <= 0 {
		return errors.New("AGENTD_ENDED_SESSION_READABLE must be a positive duration such as 1h or 30m")
	}
	c.Chat.EndedReadable = d
	def := agent.DefaultSessionMaxAge
	if c.Accounts.SessionMaxAge > 0 {
		def = c.Accounts.SessionMaxAge
	}
	if d, err = time.ParseDuration(env("AGENTD_SESSION_MAX_AGE", def.String())); err != nil || d <= 0 {
		return errors.New("AGENTD_SESSION_MAX_AGE must be a positive duration such as 168h")
	}
	c.Accounts.SessionMaxAge = d
	if err := c.loadHTTP(); err != nil {
		return err
	}
	// The flag, else the environment (also for a Config set in code), else a value set in code.
	if v := cmp.Or(c.commandRetention, env("AGENTD_COMMAND_RETENTION", "")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("AGENTD_COMMAND_RETENTION must be a positive duration such as 24h")
		}
		c.Jobs.CommandRetention = d
	}
	if c.Jobs.CommandRetention <= 0 {
		c.Jobs.CommandRetention = jobs.DefaultConfig.CommandRetention
	}
	if v := cmp.Or(c.eventRetention, env("AGENTD_EVENT_RETENTION", "")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("AGENTD_EVENT_RETENTION must be a positive duration such as 720h")
		}
		c.Jobs.EventRetention = d
	}
	if c.Jobs.EventRetention <= 0 {
		c.Jobs.EventRetention = jobs.DefaultConfig.EventRetention
	}
	if c.Jobs.PruneInterval <= 0 {
		c.Jobs.PruneInterval = jobs.DefaultConfig.PruneInterval
	}
	if err := c.loadAPI(); err != nil {
		return err
	}
	if err := c.loadWebhooks(); err != nil {
		return err
	}
	if err := c.loadCoBrowse(); err != nil {
		return err
	}
	for name, v := range map[string]string{"AGENTD_PUBLIC_URL": c.Agent.PublicURL, "AGENTD_COBROWSE_URL": c.Agent.CoBrowseURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(v))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s must be an http(s) URL, not %q", name, v)
		}
	}
	return nil
}

// loadHTTP reads the HTTP server's settings besides AGENTD_MAX_CONNS_PER_ADDR (read with the
// other integers). Values set in code are kept unless the environment sets one.
func (c *Config) loadHTTP() error {
	h := &c.HTTP
	def := DefaultHTTPConfig.IdleTimeout
	if h.IdleTimeout > 0 {
		def = h.IdleTimeout
	}
	d, err := time.ParseDuration(env("AGENTD_HTTP_IDLE_TIMEOUT", def.String()))
	if err != nil || d <= 0 {
		return errors.New("AGENTD_HTTP_IDLE_TIMEOUT must be a positive duration such as 60s")
	}
	h.IdleTimeout = d
	if v, ok := os.LookupEnv("AGENTD_MAX_CONNS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("AGENTD_MAX_CONNS must be a positive integer (unset: derived from the descriptor limit)")
		}
		h.MaxConns = n
	}
	if h.MaxConns < 0 {
		return errors.New("AGENTD_MAX_CONNS must be a positive integer (unset: derived from the descriptor limit)")
	}
	if h.ReadTimeout <= 0 {
		h.ReadTimeout = DefaultHTTPConfig.ReadTimeout
	}
	if h.WriteTimeout <= 0 {
		h.WriteTimeout = DefaultHTTPConfig.WriteTimeout
	}
	return nil
}

func (c *Config) newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("node", c.NodeID)
}

// redactURL hides a password in a database URL before it is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// loadWebhooks reads the webhook settings (docs/webhooks.md); values set in code are kept
// unless the environment sets one.
func (c *Config) loadWebhooks() error {
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
		flag string
	}{
		{"AGENTD_WEBHOOK_TIMEOUT", &c.Webhooks.Timeout, notify.DefaultWebhookConfig.Timeout, ""},
		{"AGENTD_WEBHOOK_ROTATION_WINDOW", &c.Webhooks.RotationWindow, notify.DefaultWebhookConfig.RotationWindow, c.webhookRotation},
	} {
		if v := cmp.Or(d.flag, env(d.name, "")); v != "" {
			p, err := time.ParseDuration(v)
			if err != nil || p <= 0 {
				return fmt.Errorf("%s must be a positive duration such as %s", d.name, d.def)
			}
			*d.dst = p
		}
		if *d.dst <= 0 {
			*d.dst = d.def
		}
	}
	switch v := env("AGENTD_WEBHOOK_ALLOW_PRIVATE", ""); v {
	case "":
	case "1", "true":
		c.Webhooks.AllowPrivate = true
	case "0", "false":
		c.Webhooks.AllowPrivate = false
	default:
		return fmt.Errorf("AGENTD_WEBHOOK_ALLOW_PRIVATE must be 1 or 0, not %q", v)
	}
	return nil
}

package main

import (
	"errors"
	"strings"
	"time"

	"agentd/notify"
)

// loadCoBrowse reads the co-browse context's signing key, AGENTD_COBROWSE_CONTEXT_KEY (at least
// 32 bytes), and its lifetime, AGENTD_COBROWSE_CONTEXT_TTL (docs/cobrowse.md). Values set in
// code are kept unless the environment sets one. Without a key, Run makes a random one.
func (c *Config) loadCoBrowse() error {
	if v := env("AGENTD_COBROWSE_CONTEXT_KEY", ""); v != "" {
		c.Agent.CoBrowseContextKey = v
	}
	if k := c.Agent.CoBrowseContextKey; k != "" && len(k) < notify.CoBrowseKeyMinLen {
		return errors.New("AGENTD_COBROWSE_CONTEXT_KEY must be at least 32 bytes (such as the output of openssl rand -hex 32)")
	}
	if v := env("AGENTD_COBROWSE_CONTEXT_TTL", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("AGENTD_COBROWSE_CONTEXT_TTL must be a positive duration, such as 10m")
		}
		c.Agent.CoBrowseContextTTL = d
	}
	if c.Agent.CoBrowseContextTTL <= 0 {
		c.Agent.CoBrowseContextTTL = notify.CoBrowseContextTTL
	}
	return nil
}

// coBrowseKey makes a random co-browse context key when none is configured. Its contexts verify
// only with this node until it restarts: said as a warning when the provider URL uses {context}
// (in dev mode the demo provider runs in this process and has the key).
func (m *Main) coBrowseKey() {
	if m.Config.Agent.CoBrowseContextKey != "" {
		return
	}
	m.Config.Agent.CoBrowseContextKey = string(notify.NewCoBrowseKey())
	if strings.Contains(m.Config.Agent.CoBrowseURL, "{context}") && !m.Config.Dev {
		m.Logger.Warn("AGENTD_COBROWSE_CONTEXT_KEY is not set: co-browse contexts are signed with a random key and will not verify across restarts or other nodes")
	}
}

// Package devtools holds the pages only `agentd dev` serves: a demo co-browse provider, so the
// first chat of a fresh install shows the console's co-browse panel with a live page instead of
// "no provider". `agentd serve` never registers it.
package devtools

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/notify"
	"agentd/web"
	"agentd/web/templates"
)

// CoBrowsePath is the demo provider page; `agentd dev` points AGENTD_COBROWSE_URL at it.
const CoBrowsePath = "/demo/cobrowse"

// CoBrowseURL is the co-browse URL template of the demo provider on agentd at base.
func CoBrowseURL(base string) string {
	return base + CoBrowsePath + "?session={CoBrowseSessionId}&chat={interactionId}&context={context}"
}

// Surface serves the dev pages.
type Surface struct {
	key []byte
	now func() time.Time
}

// New returns the dev pages' surface; key verifies the co-browse contexts (docs/cobrowse.md),
// handed over in-process.
func New(key string) *Surface { return &Surface{key: []byte(key), now: time.Now} }

// Register adds the dev routes.
func (s *Surface) Register(e *echo.Echo) {
	e.GET(CoBrowsePath, s.handleCoBrowse)
}

func (s *Surface) handleCoBrowse(c echo.Context) error {
	session, chat := c.QueryParam("session"), c.QueryParam("chat")
	if session == "" || len(session) > 256 || len(chat) > 64 {
		return echo.ErrNotFound
	}
	// The console frames this page, from the same origin: every other page of agentd refuses to
	// be framed at all.
	h := c.Response().Header()
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
	// Like a real provider, the page trusts only the signed context to say who is watching.
	v := templates.DemoCoBrowseView{Session: session, Chat: chat}
	if ctx, err := notify.VerifyCoBrowseContext(s.key, c.QueryParam("context"), s.now()); err != nil {
		v.ContextError = agentd.ErrorMessage(err)
	} else {
		v.Agent = ctx.Agent.Name + " (" + ctx.Agent.Username + ")"
		v.Verified = ctx.InteractionID == chat && ctx.SessionID == session
		if !v.Verified {
			v.ContextError = "The co-browse context is for another session."
		}
	}
	return web.Render(c, http.StatusOK, templates.DemoCoBrowse(v))
}

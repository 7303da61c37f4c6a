// Package devtools holds the pages only `agentd dev` serves: a demo co-browse provider, so the
// first chat of a fresh install shows the console's co-browse panel with a live page instead of
// "no provider". `agentd serve` never registers it.
package devtools

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"agentd/web"
	"agentd/web/templates"
)

// CoBrowsePath is the demo provider page; `agentd dev` points AGENTD_COBROWSE_URL at it.
const CoBrowsePath = "/demo/cobrowse"

// CoBrowseURL is the co-browse URL template of the demo provider on agentd at base.
func CoBrowseURL(base string) string {
	return base + CoBrowsePath + "?session={CoBrowseSessionId}&chat={interactionId}"
}

// Surface serves the dev pages.
type Surface struct{}

// New returns the dev pages' surface.
func New() *Surface { return &Surface{} }

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
	return web.Render(c, http.StatusOK, templates.DemoCoBrowse(session, chat))
}

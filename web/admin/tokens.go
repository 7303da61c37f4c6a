package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/notify"
	"agentd/web"
	"agentd/web/templates"
)

// Tokens is what the API tokens page needs (postgres.TokenStore).
type Tokens interface {
	CreateTokenAudited(ctx context.Context, actorID int64, name string, scopes []notify.Scope, username string) (string, notify.Token, error)
	Tokens(ctx context.Context) ([]notify.Token, error)
	RevokeTokenAudited(ctx context.Context, actorID int64, name string) error
}

// registerTokens adds /admin/tokens to the admin group g.
func (s *Surface) registerTokens(g *echo.Group) {
	g.GET("/tokens", s.handleTokens)
	g.POST("/tokens", s.handleTokenCreate)
	g.POST("/tokens/:name/revoke", s.handleTokenRevoke)
}

func tokenFrame(c echo.Context) templates.AdminFrame {
	f := templates.AdminFrame{Title: "API tokens", Section: "tokens"}
	if c.QueryParam("revoked") != "" {
		f.Flash = "Token revoked: it no longer authenticates."
	}
	return f
}

func (s *Surface) renderTokens(c echo.Context, status int, form templates.AdminTokenForm, checked map[string]bool, secret string) error {
	ctx := c.Request().Context()
	ts, err := s.tokens.Tokens(ctx)
	if err != nil {
		return err
	}
	rows := make([]templates.AdminTokenRow, len(ts))
	for i, t := range ts {
		r := templates.AdminTokenRow{Name: t.Name, Prefix: t.Prefix, Scopes: scopeText(t.Scopes), User: t.Username,
			Created: adminTime(t.CreatedAt), LastUsed: "never", Revoked: t.RevokedAt != nil}
		if t.LastUsedAt != nil {
			r.LastUsed = adminTime(*t.LastUsedAt)
		}
		if t.RevokedAt != nil {
			r.RevokedAt = adminTime(*t.RevokedAt)
		}
		rows[i] = r
	}
	for _, sc := range notify.Scopes {
		form.Scopes = append(form.Scopes, templates.AdminOption{Value: string(sc), Label: string(sc), Selected: checked[string(sc)]})
	}
	users, err := s.admin.Users(ctx)
	if err != nil {
		return err
	}
	form.Users = []templates.AdminOption{{Value: "", Label: "No user: every interaction", Selected: form.User == ""}}
	for _, u := range users {
		form.Users = append(form.Users, templates.AdminOption{Value: u.Username, Label: u.Username + " (" + string(u.Role) + ")",
			Selected: strings.EqualFold(u.Username, form.User)})
	}
	f := tokenFrame(c)
	if secret != "" {
		f.Flash = "Token created."
	}
	return web.Render(c, status, templates.AdminTokens(web.Viewer(c), f, rows, form, secret))
}

func scopeText(sc []notify.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func (s *Surface) handleTokens(c echo.Context) error {
	return s.renderTokens(c, http.StatusOK, templates.AdminTokenForm{}, nil, "")
}

func (s *Surface) handleTokenCreate(c echo.Context) error {
	form, err := formValues(c)
	if err != nil {
		return err
	}
	f := templates.AdminTokenForm{Name: form.Get("name"), User: strings.TrimSpace(form.Get("user"))}
	checked := map[string]bool{}
	for _, sc := range form["scopes"] {
		checked[sc] = true
	}
	scopes, err := notify.ParseScopes(strings.Join(form["scopes"], ","))
	if err != nil {
		f.Error = err.Error()
		return s.renderTokens(c, http.StatusUnprocessableEntity, f, checked, "")
	}
	secret, _, err := s.tokens.CreateTokenAudited(c.Request().Context(), web.CurrentUser(c).ID, f.Name, scopes, f.User)
	if err != nil {
		status := http.StatusUnprocessableEntity
		switch {
		case agentd.ErrorCode(err) == "user_not_found":
			f.Errors = map[string]string{"user": "No user has that name."}
		case agentd.ErrorClass(err) == agentd.ECONFLICT:
			f.Errors = map[string]string{"name": agentd.ErrorMessage(err)}
			status = http.StatusConflict
		case agentd.ErrorClass(err) == agentd.EINVALID:
			f.Errors = map[string]string{"name": agentd.ErrorMessage(err)}
		default:
			return err
		}
		return s.renderTokens(c, status, f, checked, "")
	}
	// The token is in this answer only, never kept to show after a redirect: reloading the
	// list does not show it.
	return s.renderTokens(c, http.StatusCreated, templates.AdminTokenForm{}, nil, secret)
}

func (s *Surface) handleTokenRevoke(c echo.Context) error {
	if err := s.tokens.RevokeTokenAudited(c.Request().Context(), web.CurrentUser(c).ID, c.Param("name")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin/tokens?revoked=1")
}

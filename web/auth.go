package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/web/templates"
)

const (
	sessionCookie = "agentd_session"
	// loginCSRFCookie carries the double-submit token of the sign-in form, which has no session yet.
	loginCSRFCookie = "agentd_login_csrf"
)

func (s *Server) secureCookies(c echo.Context) bool {
	return c.Request().TLS != nil || strings.HasPrefix(s.agents.Config().PublicURL, "https://")
}

func (s *Server) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(c),
	})
}

// currentUser returns the signed-in user of a request (set by requireRole).
func currentUser(c echo.Context) agent.User {
	u, _ := c.Get("user").(agent.User)
	return u
}

func viewer(c echo.Context) *templates.Viewer {
	u := currentUser(c)
	csrf, _ := c.Get("csrf").(string)
	return &templates.Viewer{Name: u.DisplayName, Role: string(u.Role), CSRF: csrf}
}

// wantsHTML tells pages (which get redirects and error pages) from API calls (which get JSON).
func wantsHTML(c echo.Context) bool {
	r := c.Request()
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// requireRole lets through signed-in users with at least the given role. Pages without a session
// redirect to the sign-in page; every unsafe method must carry the session's CSRF token.
func (s *Server) requireRole(min agent.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var token string
			if ck, err := c.Cookie(sessionCookie); err == nil {
				token = ck.Value
			}
			u, csrf, err := s.agents.WebSession(c.Request().Context(), token)
			if err != nil {
				if agentd.ErrorClass(err) != agentd.EUNAUTHORIZED {
					return err
				}
				if c.Request().Method == http.MethodGet && wantsHTML(c) {
					return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
				}
				return err
			}
			if !u.Role.AtLeast(min) {
				return agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Your role (%s) cannot open this page.", u.Role)
			}
			if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
				sent := c.Request().Header.Get("X-CSRF-Token")
				if sent == "" {
					sent = c.FormValue("_csrf")
				}
				if subtle.ConstantTimeCompare([]byte(sent), []byte(csrf)) != 1 {
					return agentd.Errorf(agentd.EFORBIDDEN, "csrf", "The form has expired or did not come from this site. Reload the page and try again.")
				}
			}
			c.Set("user", u)
			c.Set("csrf", csrf)
			c.Set("session_token", token)
			return next(c)
		}
	}
}

func (s *Server) handleLoginForm(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if u, _, err := s.agents.WebSession(c.Request().Context(), ck.Value); err == nil {
			return c.Redirect(http.StatusSeeOther, landing(u, safeNext(c.QueryParam("next"))))
		}
	}
	csrf := newConnID() + newConnID()
	s.setCookie(c, loginCSRFCookie, csrf, 3600)
	return render(c, http.StatusOK, templates.Login(csrf, safeNext(c.QueryParam("next")), "", ""))
}

// safeNext keeps post-login redirects on this site; "" when there is none to follow.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	return next
}

// landing is where a user goes after signing in: the page asked for, else their start page.
func landing(u agent.User, next string) string {
	switch {
	case next != "":
		return next
	case u.Role == agent.RoleAdmin:
		return "/admin"
	}
	return "/console"
}

func (s *Server) handleLogin(c echo.Context) error {
	username, password := strings.TrimSpace(c.FormValue("username")), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	again := func(status int, msg string) error {
		csrf := newConnID() + newConnID()
		s.setCookie(c, loginCSRFCookie, csrf, 3600)
		return render(c, status, templates.Login(csrf, next, username, msg))
	}
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
		return again(http.StatusForbidden, "The sign-in form expired. Please try again.")
	}
	// Per address and per username, so neither one client nor many can guess passwords quickly.
	if !s.loginLimiter.allow(c.RealIP()) || !s.loginLimiter.allow("user:"+strings.ToLower(username)) {
		return again(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a minute and try again.")
	}
	u, err := s.agents.Login(c.Request().Context(), username, password)
	if err != nil {
		if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
			s.logger.Info("sign-in refused", "remote_ip", c.RealIP())
			return again(http.StatusUnauthorized, "Wrong username or password.")
		}
		return err
	}
	token, _, err := s.agents.StartWebSession(c.Request().Context(), u)
	if err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, token, int(agent.SessionIdle/time.Second))
	s.setCookie(c, loginCSRFCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, landing(u, next))
}

func (s *Server) handleLogout(c echo.Context) error {
	if token, _ := c.Get("session_token").(string); token != "" {
		if err := s.agents.EndWebSession(c.Request().Context(), token); err != nil {
			return err
		}
	}
	s.setCookie(c, sessionCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, "/login")
}

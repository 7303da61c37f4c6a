package web

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

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

// Sessions is what sign-in needs from the accounts service. Login records a failed attempt
// (audited, with the client's address) itself.
type Sessions interface {
	Login(ctx context.Context, username, password, from string) (agent.User, error)
	StartWebSession(ctx context.Context, u agent.User) (token, csrf string, err error)
	WebSession(ctx context.Context, token string) (agent.User, string, error)
	EndWebSession(ctx context.Context, token string) error
}

// Cookies sets agentd's cookies: HttpOnly, SameSite=Lax, and Secure when agentd is reached over
// https (the request came over TLS, or the public URL is https).
type Cookies struct {
	// PublicURL is agentd's base URL as browsers reach it.
	PublicURL string
}

// Set sets a cookie for the whole site; maxAge -1 deletes it.
func (k Cookies) Set(c echo.Context, name, value string, maxAge int) {
	secure := c.Request().TLS != nil || strings.HasPrefix(k.PublicURL, "https://")
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure,
	})
}

// Auth is sign-in and browser sessions: the /login and /logout routes, and the Require middleware
// that every signed-in route goes through.
type Auth struct {
	sessions Sessions
	cookies  Cookies
	logger   *slog.Logger
	metrics  *Metrics
	// Sign-in limits count failed attempts only, so that a shared office address is not held up
	// by its own people signing in, and anyone guessing is:
	//   - pairLimiter, per username and address: a guesser at one account from one address;
	//   - addrLimiter, per address: one address guessing at many accounts;
	//   - userLimiter, per username across addresses: many addresses guessing at one account.
	//     Far above what a person mistypes, it only slows that username's sign-ins down: it never
	//     refuses the right password, so failures elsewhere cannot lock the user out.
	pairLimiter, addrLimiter, userLimiter *IPLimiter
	slowDown                              time.Duration
	sessionAge                            time.Duration // the session cookie's lifetime
}

// AuthDeps is what Auth is built from.
type AuthDeps struct {
	Sessions Sessions
	Cookies  Cookies
	Logger   *slog.Logger
	Metrics  *Metrics // may be nil
	// SessionMaxAge is the browser session's absolute lifetime, also the cookie's.
	SessionMaxAge time.Duration
}

// NewAuth returns the sign-in core.
func NewAuth(d AuthDeps) *Auth {
	return &Auth{sessions: d.Sessions, cookies: d.Cookies, logger: d.Logger, metrics: d.Metrics,
		pairLimiter: NewIPLimiter(10, 5), addrLimiter: NewIPLimiter(30, 20), userLimiter: NewIPLimiter(1, 30),
		slowDown: 2 * time.Second, sessionAge: d.SessionMaxAge}
}

// Cookies returns the cookie settings, for surfaces that set cookies of their own.
func (a *Auth) Cookies() Cookies { return a.cookies }

func (a *Auth) register(e *echo.Echo) {
	e.GET("/login", a.handleLoginForm)
	e.POST("/login", a.handleLogin, BodyLimit(FormLimit))
	e.POST("/logout", a.handleLogout, BodyLimit(FormLimit), a.Require(agent.RoleAgent))
}

// CurrentUser returns the signed-in user of a request (set by Require).
func CurrentUser(c echo.Context) agent.User {
	u, _ := c.Get("user").(agent.User)
	return u
}

// CSRF returns the CSRF token of the request's browser session (set by Require).
func CSRF(c echo.Context) string {
	csrf, _ := c.Get("csrf").(string)
	return csrf
}

// Viewer is the signed-in user as the page layout shows them.
func Viewer(c echo.Context) *templates.Viewer {
	u := CurrentUser(c)
	return &templates.Viewer{Name: u.DisplayName, Role: string(u.Role), CSRF: CSRF(c)}
}

// Require lets through signed-in users with at least the given role. Pages without a session
// redirect to the sign-in page; every unsafe method must carry the session's CSRF token.
func (a *Auth) Require(min agent.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var token string
			if ck, err := c.Cookie(sessionCookie); err == nil {
				token = ck.Value
			}
			u, csrf, err := a.sessions.WebSession(c.Request().Context(), token)
			if err != nil {
				if agentd.ErrorClass(err) != agentd.EUNAUTHORIZED {
					return err
				}
				if c.Request().Method == http.MethodGet && WantsHTML(c) {
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

func (a *Auth) handleLoginForm(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if u, _, err := a.sessions.WebSession(c.Request().Context(), ck.Value); err == nil {
			return c.Redirect(http.StatusSeeOther, landing(u, safeNext(c.QueryParam("next"))))
		}
	}
	csrf := NewToken()
	a.cookies.Set(c, loginCSRFCookie, csrf, 3600)
	return Render(c, http.StatusOK, templates.Login(csrf, safeNext(c.QueryParam("next")), "", ""))
}

// safeNext keeps post-login redirects on this site: it returns next when it is a path of this
// site, and "" otherwise (there is none to follow). Browsers strip tabs and newlines from URLs and
// read a backslash as a slash, so "/\tevil.example" or "/\\evil.example" would lead to another
// host: anything with a control character or a backslash is refused, and so is anything that
// does not parse as a bare absolute path.
func safeNext(next string) string {
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
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
	case u.Role == agent.RoleSupervisor:
		return "/supervisor"
	}
	return "/console"
}

func (a *Auth) handleLogin(c echo.Context) error {
	username, password := strings.TrimSpace(c.FormValue("username")), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	again := func(status int, msg string) error {
		csrf := NewToken()
		a.cookies.Set(c, loginCSRFCookie, csrf, 3600)
		return Render(c, status, templates.Login(csrf, next, username, msg))
	}
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
		return again(http.StatusForbidden, "The sign-in form expired. Please try again.")
	}
	ip, user := c.RealIP(), strings.ToLower(username)
	pair := user + "\x00" + ip
	if !a.pairLimiter.Ok(pair) || !a.addrLimiter.Ok(ip) {
		a.metrics.LoginFailed("throttled")
		return again(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a minute and try again.")
	}
	if !a.userLimiter.Ok(user) {
		// Many addresses are guessing at this account: answer slowly, but answer.
		a.metrics.LoginFailed("slowed")
		select {
		case <-time.After(a.slowDown):
		case <-c.Request().Context().Done():
			return c.Request().Context().Err()
		}
	}
	u, err := a.sessions.Login(c.Request().Context(), username, password, ip)
	if err != nil {
		if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
			a.pairLimiter.Allow(pair)
			a.addrLimiter.Allow(ip)
			a.userLimiter.Allow(user)
			a.metrics.LoginFailed("bad_credentials")
			a.logger.Info("sign-in refused", "remote_ip", ip)
			return again(http.StatusUnauthorized, "Wrong username or password.")
		}
		return err
	}
	token, _, err := a.sessions.StartWebSession(c.Request().Context(), u)
	if err != nil {
		return err
	}
	a.cookies.Set(c, sessionCookie, token, int(a.sessionAge/time.Second))
	a.cookies.Set(c, loginCSRFCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, landing(u, next))
}

func (a *Auth) handleLogout(c echo.Context) error {
	if token, _ := c.Get("session_token").(string); token != "" {
		if err := a.sessions.EndWebSession(c.Request().Context(), token); err != nil {
			return err
		}
	}
	a.cookies.Set(c, sessionCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, "/login")
}

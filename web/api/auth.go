package api

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"agentd"
	"agentd/notify"
)

// tokenKey is where require leaves the request's token for the handlers.
const tokenKey = "api_token"

// tokenOf returns the authenticated token of an API request.
func tokenOf(c echo.Context) notify.Token {
	t, _ := c.Get(tokenKey).(notify.Token)
	return t
}

// urlTokenParams are query parameters that would carry a token in the URL, where proxies, logs
// and browser history keep it: refused, whatever their value.
var urlTokenParams = []string{"token", "access_token", "api_token", "api_key", "key"}

// require authenticates the request's bearer token, applies the token's rate limit and checks
// that it has scope. 401 (with WWW-Authenticate) without a token or with an unknown or revoked
// one, or with a token in the URL; 429 with Retry-After over the rate; 403 without the scope.
func (s *Surface) require(scope notify.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := refuseURLToken(c); err != nil {
				return err
			}
			t, err := s.authenticate(c, c.Request().Header.Get(echo.HeaderAuthorization), scope)
			if err != nil {
				return err
			}
			c.Set(tokenKey, t)
			return next(c)
		}
	}
}

// refuseURLToken refuses a request that carries a token in its URL.
func refuseURLToken(c echo.Context) error {
	for name, vals := range c.Request().URL.Query() {
		for _, v := range vals {
			if strings.HasPrefix(v, notify.TokenPrefix) || slices.ContainsFunc(urlTokenParams, func(p string) bool { return strings.EqualFold(p, name) }) {
				return unauthorized(c, "token_in_url", "API tokens go in the Authorization header (Bearer), never in the URL. Revoke a token that was sent in a URL.")
			}
		}
	}
	return nil
}

// authenticate checks an Authorization header value: the token, its rate and its scope.
func (s *Surface) authenticate(c echo.Context, header string, scope notify.Scope) (notify.Token, error) {
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return notify.Token{}, unauthorized(c, "unauthorized", "Send an API token as Authorization: Bearer <token>.")
	}
	t, err := s.tokens.Authenticate(c.Request().Context(), strings.TrimSpace(secret))
	if err != nil {
		if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
			return t, unauthorized(c, agentd.ErrorCode(err), agentd.ErrorMessage(err))
		}
		return t, err
	}
	if wait := s.limits.reserve(t.ID); wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return t, agentd.Errorf(agentd.ERATELIMITED, "rate_limited", "Too many requests with this token; try again in %d s.", int(math.Ceil(wait.Seconds())))
	}
	if !t.Has(scope) {
		return t, agentd.Errorf(agentd.EFORBIDDEN, "insufficient_scope", "This token lacks the %q scope.", scope)
	}
	return t, nil
}

// unauthorized is a 401 that tells the client how to authenticate (RFC 6750).
func unauthorized(c echo.Context, code, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="agentd"`)
	return agentd.Errorf(agentd.EUNAUTHORIZED, code, "%s", msg)
}

// tokenLimiter is one token bucket per API token. Idle buckets are swept as it goes: a bucket
// full again after burst/rate seconds is the same as a new one.
type tokenLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	buckets   map[int64]*tokenBucket
	lastSweep time.Time
}

type tokenBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newTokenLimiter(perSecond float64, burst int) *tokenLimiter {
	return &tokenLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: make(map[int64]*tokenBucket)}
}

// reserve counts one request of token id now; it returns 0 when it is allowed, else how long
// until it would be (and does not count it).
func (l *tokenLimiter) reserve(id int64) time.Duration {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[id]
	if b == nil {
		b = &tokenBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[id] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return max(d, time.Second)
	}
	return 0
}

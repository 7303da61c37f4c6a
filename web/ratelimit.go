package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// IPLimiter keeps one token bucket per key (a client address, a username). Idle buckets are swept
// as it goes, so a flood of addresses cannot grow it without bound for long.
type IPLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	buckets   map[string]*ipBucket
	lastSweep time.Time
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewIPLimiter returns a limiter of perMinute events per key, in bursts of burst; a limit of 0
// allows everything.
func NewIPLimiter(perMinute, burst int) *IPLimiter {
	return &IPLimiter{limit: rate.Limit(float64(perMinute) / 60), burst: burst, buckets: make(map[string]*ipBucket)}
}

// Allow reports whether key may have one more event now, and counts it if so.
func (l *IPLimiter) Allow(key string) bool {
	if l == nil || l.limit <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(key, now).AllowN(now, 1)
}

// Ok reports whether key has an event left now, without counting one: for limits that count
// only failures, checked before the attempt and spent (Allow) when it failed.
func (l *IPLimiter) Ok(key string) bool {
	if l == nil || l.limit <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(key, now).TokensAt(now) >= 1
}

// bucket returns key's bucket, sweeping idle ones now and then. l.mu is held.
func (l *IPLimiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.lastSweep) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &ipBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim
}

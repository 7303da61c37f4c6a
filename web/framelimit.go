package web

import (
	"time"

	"golang.org/x/time/rate"
)

// The frame limit's fixed numbers (docs/protocol.md, "Connecting"). The rate itself is the
// surface's (ConnOptions.FramesPerSecond, FrameBurst).
const (
	// limitNoticeEvery: a client over its limit is told so, with one rate_limited error frame, at
	// most this often. The frames it sends meanwhile are dropped unanswered: answering each of them
	// was the amplification the security probe used (issue 7, finding 3).
	limitNoticeEvery = time.Second
	// maxDroppedFrames and droppedFramesRefill define a client that keeps exceeding its limit: it
	// may have maxDroppedFrames frames dropped, plus droppedFramesRefill a second; the next
	// dropped frame closes the connection (CloseRateLimited). A client that slows down when told
	// (chat-service.js waits more than limitNoticeEvery, so it has at most one frame dropped a
	// second) is never closed; one that floods is closed within its first 50 dropped frames.
	maxDroppedFrames    = 50
	droppedFramesRefill = 1 // per second
)

// frameVerdict is what becomes of one frame from the client.
type frameVerdict int

const (
	frameRead       frameVerdict = iota // within the limit: read and handle it
	frameDrop                           // over the limit: drop it unread and unanswered
	frameDropNotify                     // over the limit: drop it, and tell the client it is over
	frameClose                          // the client keeps exceeding the limit: close the connection
)

// frameLimiter counts every frame a client sends, whatever it holds (a command, garbage, binary,
// an oversized frame, a ping), before anything reads or decodes it. It is used by the read pump
// only.
type frameLimiter struct {
	frames   *rate.Limiter // the limit: FramesPerSecond, in bursts of FrameBurst
	dropped  *rate.Limiter // the allowance of dropped frames
	noticeAt time.Time     // when the client was last told it is over its limit
}

// newFrameLimiter returns the limiter of perSecond frames in bursts of burst, or nil (no limit)
// when perSecond is not positive.
func newFrameLimiter(perSecond float64, burst int) *frameLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &frameLimiter{
		frames:  rate.NewLimiter(rate.Limit(perSecond), max(burst, 1)),
		dropped: rate.NewLimiter(droppedFramesRefill, maxDroppedFrames),
	}
}

// admit counts one frame arriving at now and says what becomes of it.
func (l *frameLimiter) admit(now time.Time) frameVerdict {
	if l == nil || l.frames.AllowN(now, 1) {
		return frameRead
	}
	if !l.dropped.AllowN(now, 1) {
		return frameClose
	}
	if now.Sub(l.noticeAt) >= limitNoticeEvery {
		l.noticeAt = now
		return frameDropNotify
	}
	return frameDrop
}

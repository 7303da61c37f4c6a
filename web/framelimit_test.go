package web

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestFrameLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

	t.Run("OK_NoLimit", func(t *testing.T) {
		l := newFrameLimiter(0, 0)
		for range 10000 {
			if l.admit(t0) != frameRead {
				t.Fatal("a connection without a limit dropped a frame")
			}
		}
	})

	t.Run("ErrDroppedAndToldOnceASecond", func(t *testing.T) {
		l := newFrameLimiter(20, 40)
		for i := range 40 {
			if v := l.admit(t0); v != frameRead {
				t.Fatalf("frame %d of the burst: verdict %d", i, v)
			}
		}
		if v := l.admit(t0); v != frameDropNotify {
			t.Fatalf("first frame over the limit: verdict %d, want a drop with a notice", v)
		}
		if v := l.admit(ms(10)); v != frameDrop {
			t.Fatalf("second frame over the limit: verdict %d, want a silent drop", v)
		}
		// 20 a second: one frame's worth comes back every 50 ms.
		if v := l.admit(ms(60)); v != frameRead {
			t.Fatalf("a frame after the refill: verdict %d", v)
		}
		if v := l.admit(ms(61)); v != frameDrop {
			t.Fatalf("a frame within the second after the notice: verdict %d, want a silent drop", v)
		}
		read, v := 0, l.admit(ms(1000))
		for ; v == frameRead; v = l.admit(ms(1000)) {
			read++
		}
		if read < 18 || v != frameDropNotify {
			t.Fatalf("a second later: %d frames read, then verdict %d, want 18 or more and a notice", read, v)
		}
		if v := l.admit(ms(1001)); v != frameDrop {
			t.Fatalf("a frame right after the second notice: verdict %d, want a silent drop", v)
		}
	})

	t.Run("ErrClosedWhenItKeepsExceeding", func(t *testing.T) {
		l := newFrameLimiter(20, 40)
		read, dropped := 0, 0
		for i := 0; ; i++ {
			switch l.admit(t0.Add(time.Duration(i) * time.Microsecond)) {
			case frameRead:
				read++
				continue
			case frameDrop, frameDropNotify:
				dropped++
				continue
			}
			break
		}
		if read != 40 || dropped != maxDroppedFrames {
			t.Fatalf("a flood was closed after %d frames read and %d dropped, want 40 and %d", read, dropped, maxDroppedFrames)
		}
	})

	// A client that pauses for a little more than a second when told, as chat-service.js does,
	// has one frame dropped per notice and is never closed, however long it goes on.
	t.Run("OK_ClientThatSlowsDownStaysOpen", func(t *testing.T) {
		l := newFrameLimiter(20, 40)
		now := t0
		notices := 0
		for now.Before(t0.Add(10 * time.Minute)) {
			switch l.admit(now) {
			case frameRead:
				now = now.Add(time.Millisecond) // as fast as answers come back
			case frameDropNotify:
				notices++
				now = now.Add(limitNoticeEvery + 10*time.Millisecond)
			case frameDrop:
				t.Fatalf("at %v a frame was dropped without a notice: the client would wait for nothing", now.Sub(t0))
			case frameClose:
				t.Fatalf("closed at %v after %d notices", now.Sub(t0), notices)
			}
		}
		if notices < 500 {
			t.Fatalf("only %d notices in 10 minutes: the client did not exceed the limit", notices)
		}
	})
}

// TestConnFrameLimitCountsEverything: frames over the limit never reach the handler, whatever
// they are, pings are not answered past the limit either, and a flood ends with 1008
// rate_limited. Without the core's limit the handler saw every frame and every ping got its pong.
func TestConnFrameLimitCountsEverything(t *testing.T) {
	t.Parallel()
	var handled atomic.Int32
	b := setup(t, ConnOptions{Surface: "test", ReadLimit: 1 << 20, FramesPerSecond: 20, FrameBurst: 40}, func(tc *testConn) {
		tc.onFrame = func(context.Context) { handled.Add(1) }
	})
	ws, _ := b.open(t)
	var pongs atomic.Int32
	ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })

	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for i := 0; ; i++ {
			var err error
			switch i % 4 {
			case 0:
				err = ws.WriteMessage(websocket.TextMessage, []byte("not json"))
			case 1:
				err = ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0, 1})
			case 2:
				err = ws.WriteMessage(websocket.TextMessage, make([]byte, 200<<10))
			case 3:
				err = ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
			}
			if err != nil {
				return
			}
		}
	})
	var notices int
	var ce *websocket.CloseError
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			var ok bool
			if ce, ok = errors.AsType[*websocket.CloseError](err); !ok {
				t.Fatalf("the flood was not closed with a close frame: %v", err)
			}
			break
		}
		var f ErrorFrame
		if json.Unmarshal(msg, &f) == nil && f.Error.Code == "rate_limited" {
			notices++
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	if ce.Code != websocket.ClosePolicyViolation || ce.Text != "rate_limited" {
		t.Fatalf("closed with %d %q, want 1008 rate_limited", ce.Code, ce.Text)
	}
	// The burst, what the limit gave back while the flood lasted (a few milliseconds on an idle
	// machine, longer on a busy one), and nothing more.
	if n, max := handled.Load()+pongs.Load(), 40+int32(math.Ceil(20*elapsed.Seconds())); n > max {
		t.Fatalf("%d frames handled and %d pings answered in %s: more than the limit allows (%d)", handled.Load(), pongs.Load(), elapsed, max)
	}
	// One notice at most (the close may overtake it in the write pump): never one per frame.
	if notices > 1 {
		t.Fatalf("%d rate_limited notices, want at most 1", notices)
	}
}

package web

import (
	"runtime"
	"testing"
)

// TestDeepPool: the pool runs work in order, to completion, off the caller's goroutine, raises
// its panics in the caller, and its workers end at stop.
func TestDeepPool(t *testing.T) {
	p := newDeepPool()
	var order []int
	for i := range 3 {
		p.run(func() { order = append(order, i) })
	}
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("the pool ran out of order or not to completion: %v", order)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("panic in the pool: recovered %v, want boom", r)
			}
		}()
		p.run(func() { panic("boom") })
		t.Fatal("run returned after a panic")
	}()
	p.run(func() {}) // the pool still works after a panic
	p.stop()
	if n := p.idle.Load(); n != 0 {
		t.Fatalf("%d idle workers after stop", n)
	}
	p.run(func() {}) // after stop, work still runs (on a goroutine of its own)
}

// TestDeep: a pump's handler work runs to completion before deep returns (so the pump stays the
// only reader or writer, in order), on another goroutine, and a panic in it reaches the pump.
func TestDeep(t *testing.T) {
	var order []int
	for i := range 3 {
		deep(func() { order = append(order, i) })
	}
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("deep ran out of order or not to completion: %v", order)
	}
	var inner, outer []byte
	outer = make([]byte, 64)
	outer = outer[:runtime.Stack(outer, false)]
	deep(func() {
		inner = make([]byte, 64)
		inner = inner[:runtime.Stack(inner, false)]
	})
	if string(inner) == string(outer) {
		t.Fatalf("deep ran on the caller's goroutine: %s", inner)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("panic in deep: recovered %v, want boom", r)
		}
	}()
	deep(func() { panic("boom") })
	t.Fatal("deep returned after a panic")
}

//go:noinline
func grow(depth int) int {
	var pad [256]byte
	pad[depth%256] = byte(depth)
	if depth == 0 {
		return int(pad[0])
	}
	return grow(depth-1) + int(pad[depth%256])
}

// BenchmarkDeep is what deep costs a command or a refresh that needs a 16 KiB stack (a pgx
// commit's depth), against running it on the pump's own goroutine.
func BenchmarkDeep(b *testing.B) {
	b.Run("inline", func(b *testing.B) {
		for range b.N {
			grow(60)
		}
	})
	b.Run("goroutine", func(b *testing.B) {
		for range b.N {
			deep(func() { grow(60) })
		}
	})
	b.Run("pool", func(b *testing.B) {
		p := newDeepPool()
		defer p.stop()
		for range b.N {
			p.run(func() { grow(60) })
		}
	})
}

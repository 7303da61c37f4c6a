package web

import (
	"runtime"
	"testing"
)

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

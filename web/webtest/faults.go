package webtest

import (
	"context"
	"errors"
	"sync"
	"time"

	"agentd/chat"
)

// ErrInjected is the error of an injected fault.
var ErrInjected = errors.New("webtest: injected fault: database unreachable")

// FaultyChat is a chat service as the surfaces take it (customer.Chat, console.Chat) with faults
// injected into its next reads of the transcript, of the side channel or of an interaction, as in
// a database blip.
// Every other call goes straight to the service.
type FaultyChat struct {
	*chat.Service

	mu         sync.Mutex
	transcript *fault // the next Transcript call's fault, if any
	side       *fault // the next SideItems call's
	lookup     *fault // the next Interaction call's
	injected   int
}

type fault struct {
	stall   time.Duration // wait this long first, regardless of ctx
	stalled chan struct{} // closed when the wait starts
	fail    bool
}

// NewFaultyChat wraps s.
func NewFaultyChat(s *chat.Service) *FaultyChat { return &FaultyChat{Service: s} }

// FailTranscript makes the next Transcript call fail with ErrInjected.
func (f *FaultyChat) FailTranscript() { f.arm(&f.transcript, &fault{fail: true}) }

// FailSideItems makes the next SideItems call fail with ErrInjected.
func (f *FaultyChat) FailSideItems() { f.arm(&f.side, &fault{fail: true}) }

// FailInteraction makes the next Interaction call fail with ErrInjected.
func (f *FaultyChat) FailInteraction() { f.arm(&f.lookup, &fault{fail: true}) }

// StallTranscript makes the next Transcript call wait d before it runs, whatever its context
// says, as a read stuck in the driver; the channel is closed when the call starts waiting.
func (f *FaultyChat) StallTranscript(d time.Duration) <-chan struct{} {
	ft := &fault{stall: d, stalled: make(chan struct{})}
	f.arm(&f.transcript, ft)
	return ft.stalled
}

// Injected returns how many faults were injected so far.
func (f *FaultyChat) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *FaultyChat) arm(slot **fault, ft *fault) {
	f.mu.Lock()
	*slot = ft
	f.mu.Unlock()
}

func (f *FaultyChat) inject(slot **fault) error {
	f.mu.Lock()
	ft := *slot
	*slot = nil
	if ft != nil {
		f.injected++
	}
	f.mu.Unlock()
	if ft == nil {
		return nil
	}
	if ft.stalled != nil {
		close(ft.stalled)
		time.Sleep(ft.stall)
	}
	if ft.fail {
		return ErrInjected
	}
	return nil
}

// Transcript is chat.Service.Transcript after the armed fault, if any.
func (f *FaultyChat) Transcript(ctx context.Context, interactionID string, fromIndex, limit int) ([]chat.Event, error) {
	if err := f.inject(&f.transcript); err != nil {
		return nil, err
	}
	return f.Service.Transcript(ctx, interactionID, fromIndex, limit)
}

// SideItems is chat.Service.SideItems after the armed fault, if any.
func (f *FaultyChat) SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error) {
	if err := f.inject(&f.side); err != nil {
		return nil, err
	}
	return f.Service.SideItems(ctx, interactionID, fromSeq, limit)
}

// Interaction is chat.Service.Interaction after the armed fault, if any.
func (f *FaultyChat) Interaction(ctx context.Context, interactionID string) (chat.Interaction, error) {
	if err := f.inject(&f.lookup); err != nil {
		return chat.Interaction{}, err
	}
	return f.Service.Interaction(ctx, interactionID)
}

package agent

import (
	"context"
	"strings"
	"testing"

	"agentd"
	"agentd/chat"
)

// refusingStore fails the test if Supervision reaches storage: every case here must be refused
// before.
type refusingStore struct {
	SuperviseStore
	t *testing.T
}

func (s refusingStore) Whisper(context.Context, WhisperRequest) (chat.Notice, error) {
	s.t.Fatal("whisper reached the store")
	return chat.Notice{}, nil
}

func (s refusingStore) SupervisorSend(context.Context, User, string, string, string) (chat.Event, error) {
	s.t.Fatal("send reached the store")
	return chat.Event{}, nil
}

// TestSupervisionRefuses: agents, disabled supervisors and bad text are refused with their codes
// before anything is stored.
func TestSupervisionRefuses(t *testing.T) {
	s := NewSupervision(SuperviseDeps{Store: refusingStore{t: t}, MaxMessageChars: 10})
	ctx := context.Background()
	sup := User{ID: 1, Username: "sam", Role: RoleSupervisor}
	for _, tc := range []struct {
		name string
		u    User
		text string
		code string
	}{
		{"ErrAgent", User{ID: 2, Role: RoleAgent}, "hi", "forbidden"},
		{"ErrDisabled", User{ID: 3, Role: RoleAdmin, Disabled: true}, "hi", "forbidden"},
		{"ErrEmpty", sup, " \n", "invalid_text"},
		{"ErrTooLong", sup, strings.Repeat("é", 11), "invalid_text"},
		{"ErrNUL", sup, "a\x00b", "invalid_text"},
		{"ErrUTF8", sup, "a\xffb", "invalid_utf8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Whisper(ctx, tc.u, "i", tc.text); agentd.ErrorCode(err) != tc.code {
				t.Fatalf("whisper: %v, want %s", err, tc.code)
			}
			if _, err := s.Send(ctx, tc.u, "i", "c", tc.text); agentd.ErrorCode(err) != tc.code {
				t.Fatalf("send: %v, want %s", err, tc.code)
			}
		})
	}
}

// TestMonitoredBy: each supervisor once, in order; nothing for no monitors.
func TestMonitoredBy(t *testing.T) {
	if got := MonitoredBy(nil); got != "" {
		t.Fatalf("no monitors: %q", got)
	}
	got := MonitoredBy([]Monitor{{UserID: 1, Name: "Sam"}, {UserID: 2, Name: "Sue"}, {UserID: 1, Name: "Sam"}})
	if got != "Monitored by Sam, Sue" {
		t.Fatalf("got %q", got)
	}
}

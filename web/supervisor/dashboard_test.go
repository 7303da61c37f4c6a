package supervisor

import (
	"testing"
	"time"

	"agentd/agent"
)

// TestTickerAlarm: a pending time is overdue from pendingAlarm on, rendered as such by the server
// (supervisor.js does the same in the page); other times never are.
func TestTickerAlarm(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		waited time.Duration
		alarm  bool
		text   string
	}{{59 * time.Second, false, "59s"}, {pendingAlarm, true, "1m 00s"}, {10 * time.Minute, true, "10m 00s"}} {
		tk := ticker(now.Add(-tt.waited), now, pendingAlarm)
		if tk.Alarm != tt.alarm || tk.Text != tt.text || tk.AlarmAfter != 60 || tk.Since != now.Add(-tt.waited).Format(time.RFC3339Nano) {
			t.Errorf("waited %v: %+v", tt.waited, tk)
		}
	}
	if tk := ticker(now.Add(-time.Hour), now, 0); tk.Alarm || tk.AlarmAfter != 0 || tk.Text != "1h 00m" {
		t.Errorf("a time without alarm: %+v", tk)
	}
}

// TestStateLabel: the agent states as "Agents" writes them.
func TestStateLabel(t *testing.T) {
	for _, tt := range []struct {
		a    agent.AgentStat
		want string
	}{
		{agent.AgentStat{State: agent.StateReady}, "Ready"},
		{agent.AgentStat{State: agent.StateNotReady, NotReadyReason: "Lunch"}, "Not ready: Lunch"},
		{agent.AgentStat{State: agent.StateNotReady}, "Not ready"},
		{agent.AgentStat{State: agent.StateOffline}, "Offline"},
	} {
		if got := stateLabel(tt.a); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.a, got, tt.want)
		}
	}
}

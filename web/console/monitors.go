package console

import (
	"context"

	"github.com/a-h/templ"

	"agentd/agent"
	"agentd/chat"
	"agentd/web/templates"
)

// Monitors tells the console who monitors a chat (agent.Supervision), for the "Monitored by"
// line of its panel.
type Monitors interface {
	Monitors(ctx context.Context, interactionID string) ([]agent.Monitor, error)
}

// markMonitors asks for the monitor lines to be checked again. A supervisor's page starting or
// stopping announces itself with an agent notification; this periodic mark (every heartbeat)
// is for a node that crashed: its sessions stop counting after postgres.MonitorTTL and nobody
// announces that.
const markMonitors chat.NotificationKind = "monitors"

// renderMonitors redraws the "Monitored by" line of every open chat whose monitors changed.
func (c *conn) renderMonitors(ctx context.Context, add func(kind, id string, comp templ.Component) error) error {
	if c.s.monitors == nil {
		return nil
	}
	for iid, ch := range c.chats {
		line := ""
		if !ch.ended {
			ms, err := c.s.monitors.Monitors(ctx, iid)
			if err != nil {
				return err
			}
			line = agent.MonitoredBy(ms)
		}
		if line == ch.monitored {
			continue
		}
		if err := add("html", "monitored-"+iid, templates.MonitoredBy(line)); err != nil {
			return err
		}
		ch.monitored = line
	}
	return nil
}

// whisperView is a supervisor's whisper in the chat's transcript, marked as one.
func whisperView(n chat.Notice, w chat.Whisper) templates.WhisperView {
	return templates.WhisperView{Seq: n.Seq, From: nameOr(w.From), Text: w.Text, Time: n.At.Format("15:04:05"), AtMs: n.At.UnixMilli()}
}

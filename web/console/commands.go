package console

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"agentd"
	"agentd/agent"
	"agentd/userdata"
	"agentd/web"
)

// consoleArgs are the arguments any console command may carry.
type consoleArgs struct {
	InteractionID string `json:"iid"`
	State         string `json:"state"`
	Reason        string `json:"reason"`
	Text          string `json:"text"`
	On            bool   `json:"on"`
	Key           string `json:"key"`
	Value         string `json:"value"`
	Visible       bool   `json:"visible"`
	Session       string `json:"session"`
	Target        string `json:"target"`
	Disposition   string `json:"disposition"`
	Notes         string `json:"notes"`
	Query         string `json:"q"`
	Service       string `json:"service"`
}

// run executes one console command as the connection's agent. The command id doubles as the
// idempotency key of changing chat commands, so a retried Send is applied once.
func (c *conn) run(ctx context.Context, id, cmd string, raw json.RawMessage) (any, error) {
	var a consoleArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, errInvalid("Arguments have the wrong shape.")
		}
	}
	ag := c.s.desk
	u, err := c.s.accounts.User(ctx, c.userID) // current role, state and services, never a stale copy
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		c.Close(web.CloseAccountDisabled)
		return nil, agentd.Errorf(agentd.EUNAUTHORIZED, "account_disabled", "Your account has been disabled.")
	}
	switch cmd {
	case "set_state":
		_, err := ag.SetState(ctx, u, agent.State(a.State), a.Reason)
		return nil, err
	case "accept":
		_, err := ag.Accept(ctx, u, a.InteractionID)
		return nil, err
	case "pick_up":
		id, err := ag.PickUp(ctx, u, a.Service)
		if err != nil {
			return nil, err
		}
		return map[string]any{"iid": id}, nil
	case "decline":
		return nil, ag.Decline(ctx, u, a.InteractionID)
	case "send":
		ev, err := ag.Send(ctx, u, a.InteractionID, "console:"+id, a.Text)
		if err != nil {
			return nil, err
		}
		return map[string]any{"index": ev.Index}, nil
	case "typing":
		return nil, ag.Typing(ctx, u, a.InteractionID, a.On, a.Text)
	case "set_userdata":
		visible := a.Visible
		return nil, ag.ChangeUserData(ctx, u, a.InteractionID, "console:"+id, []userdata.Change{{Key: strings.TrimSpace(a.Key), Value: a.Value, Visible: &visible}})
	case "delete_userdata":
		return nil, ag.ChangeUserData(ctx, u, a.InteractionID, "console:"+id, []userdata.Change{{Key: a.Key}})
	case "send_notice":
		if strings.TrimSpace(a.Text) == "" {
			return nil, errInvalid("The notice is empty.")
		}
		payload, _ := json.Marshal(map[string]string{"text": a.Text})
		_, err := ag.SendNotice(ctx, u, a.InteractionID, "console:"+id, payload)
		return nil, err
	case "cobrowse_joined":
		return nil, ag.CoBrowseJoined(ctx, u, a.InteractionID, a.Session)
	case "transfer":
		var t agent.TransferTarget
		switch kind, val, _ := strings.Cut(a.Target, ":"); kind {
		case "service":
			t.Service = val
		case "agent":
			t.UserID, _ = strconv.ParseInt(val, 10, 64)
		}
		if t.Service == "" && t.UserID == 0 {
			return nil, errInvalid("Choose a service or an agent to transfer to.")
		}
		return nil, ag.Transfer(ctx, u, a.InteractionID, t)
	case "end":
		return nil, ag.End(ctx, u, a.InteractionID)
	case "wrapup":
		return nil, ag.WrapUp(ctx, u, a.InteractionID, a.Disposition, a.Notes)
	case "canned":
		as, err := ag.Assignment(ctx, u, a.InteractionID)
		if err != nil {
			return nil, err
		}
		items, err := ag.CannedResponses(ctx, as.Interaction.ServiceID, a.Query)
		if err != nil {
			return nil, err
		}
		out := make([]map[string]string, len(items))
		for i, it := range items {
			out[i] = map[string]string{"title": it.Title, "body": it.Body}
		}
		return map[string]any{"items": out}, nil
	}
	return nil, agentd.Errorf(agentd.EINVALID, "unknown_command", "Unknown command %q.", cmd)
}

func errInvalid(msg string) error {
	return agentd.Errorf(agentd.EINVALID, "invalid_argument", "%s", msg)
}

package customer

import (
	"testing"

	"agentd/chat"
)

// TestSideFrameAudience: the customer gets an integrator's notice meant for everyone, and never
// one meant for the agent's console.
func TestSideFrameAudience(t *testing.T) {
	t.Parallel()
	self := chat.Party{ID: "c1", Type: chat.PartyClient}
	from := chat.Party{Type: chat.PartyExternal, Name: "integration:crm"}
	all := chat.SideItem{Seq: 2, Notice: &chat.Notice{Seq: 2, Party: from, Sender: "integration:crm", Audience: chat.AudienceAll, Payload: []byte(`{}`)}}
	agentOnly := chat.SideItem{Seq: 3, Notice: &chat.Notice{Seq: 3, Party: from, Sender: "integration:crm", Audience: chat.AudienceAgent, Payload: []byte(`{}`)}}
	f, ok := sideFrame(all, self).(noticeFrame)
	if !ok || f.Party.Type != "external" || f.Party.Name != "integration:crm" {
		t.Fatalf("notice for everyone: %#v", sideFrame(all, self))
	}
	if got := sideFrame(agentOnly, self); got != nil {
		t.Fatalf("notice for the agent reached the customer: %#v", got)
	}
}

package console

import (
	"testing"

	"agentd/chat"
)

// TestNoticeViewIntegration: an integrator's notice says who sent it and to whom.
func TestNoticeViewIntegration(t *testing.T) {
	t.Parallel()
	from := chat.Party{Type: chat.PartyExternal, Name: "integration:crm"}
	for _, tc := range []struct {
		name     string
		audience chat.Audience
		want     string
	}{
		{"OK_ToAgent", chat.AudienceAgent, "integration:crm → you"},
		{"OK_ToCustomer", chat.AudienceAll, "integration:crm → customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := noticeView(3, chat.Notice{Party: from, Sender: "integration:crm", Audience: tc.audience, Payload: []byte(`{"text": "<b>VIP</b>"}`)})
			if v.From != tc.want || v.Text != "<b>VIP</b>" || v.Raw {
				t.Fatalf("noticeView = %+v", v)
			}
		})
	}
}

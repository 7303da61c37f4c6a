package console

import (
	"strings"
	"testing"

	"agentd/chat"
)

func TestNoticeView(t *testing.T) {
	t.Parallel()
	customer := chat.Party{Type: chat.PartyClient, Name: "Carol"}
	ag := chat.Party{Type: chat.PartyAgent, Name: "Agent alice"}
	long := strings.Repeat("z", 250)
	for _, tc := range []struct {
		name     string
		party    chat.Party
		payload  string
		from     string
		text     string
		raw      bool
		fullWant bool
	}{
		{"OK_ConsoleText", ag, `{"text": "Your order shipped\nToday"}`, "You → customer", "Your order shipped\nToday", false, false},
		{"OK_CoBrowseJoined", ag, `{"type":"cobrowse","event":"agent_joined","CoBrowseSessionId":"CB-42"}`, "You → customer", "Agent alice joined co-browse session CB-42.", false, false},
		{"OK_String", customer, `"hello"`, "Carol", "hello", false, false},
		{"OK_UnknownCompact", customer, "{\n  \"page\": \"/checkout\",\n  \"n\": [1, 2]\n}", "Carol", `{"page":"/checkout","n":[1,2]}`, true, false},
		{"OK_UnknownCoBrowseEvent", customer, `{"type":"cobrowse","event":"left"}`, "Carol", `{"type":"cobrowse","event":"left"}`, true, false},
		{"OK_UnknownLong", customer, `{"note":"` + long + `"}`, "Carol", (`{"note":"` + long)[:200] + "…", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := noticeView(7, chat.Notice{Party: tc.party, Payload: []byte(tc.payload)})
			if v.From != tc.from || v.Text != tc.text || v.Raw != tc.raw || (v.Full != "") != tc.fullWant || v.Seq != 7 {
				t.Fatalf("noticeView(%s) = %+v", tc.payload, v)
			}
			if tc.fullWant && v.Full != `{"note":"`+long+`"}` {
				t.Fatalf("full text %q", v.Full)
			}
		})
	}
}

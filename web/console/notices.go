package console

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"agentd/chat"
	"agentd/web/templates"
)

// maxNoticeChars is how much of an unknown notice's JSON the list shows; the rest is in the
// title. A notice may be 8 KiB: shown whole, one would push the panel's other boxes out of view.
const maxNoticeChars = 200

// noticeView is how the console shows a notice: the ones agentd knows as a sentence, any other
// payload as one line of JSON.
func noticeView(seq int64, n chat.Notice) templates.NoticeView {
	from := nameOr(n.Party.Name)
	switch {
	case n.Sender != "" && n.Audience == chat.AudienceAgent:
		from = n.Sender + " → you"
	case n.Sender != "":
		from = n.Sender + " → customer"
	case n.Party.Type != chat.PartyClient:
		from = "You → customer"
	}
	v := templates.NoticeView{Seq: seq, From: from, Time: n.At.Format("15:04:05")}
	if text, ok := noticeSentence(n.Payload, nameOr(n.Party.Name)); ok {
		v.Text = text
		return v
	}
	v.Raw = true
	v.Text, v.Full = compactJSON(n.Payload)
	return v
}

// noticeSentence says what a known notice means: the console's own {"text": …} (and a bare JSON
// string) is its text; the co-browse notice says who joined which session.
func noticeSentence(payload json.RawMessage, partyName string) (string, bool) {
	var s string
	if json.Unmarshal(payload, &s) == nil {
		return s, true
	}
	var p struct {
		Text      *string `json:"text"`
		Type      string  `json:"type"`
		Event     string  `json:"event"`
		SessionID string  `json:"CoBrowseSessionId"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return "", false
	}
	switch {
	case p.Text != nil:
		return *p.Text, true
	case p.Type == "cobrowse" && p.Event == "agent_joined" && p.SessionID != "":
		return partyName + " joined co-browse session " + p.SessionID + ".", true
	}
	return "", false
}

// compactJSON returns the payload on one line, cut after maxNoticeChars characters with an
// ellipsis; full is the whole line when it was cut.
func compactJSON(payload json.RawMessage) (text, full string) {
	var buf bytes.Buffer
	if json.Compact(&buf, payload) != nil {
		buf.Reset()
		buf.Write(payload)
	}
	line := buf.String()
	if utf8.RuneCountInString(line) <= maxNoticeChars {
		return line, ""
	}
	return string([]rune(line)[:maxNoticeChars]) + "…", line
}

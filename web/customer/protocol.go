package customer

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"agentd/chat"
)

// inFrame is a client command.
type inFrame struct {
	ID   *string         `json:"id"`
	Cmd  *string         `json:"cmd"`
	Args json.RawMessage `json:"args"`
}

type partyJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type contentJSON struct {
	Text string `json:"text"`
	Type string `json:"type"`
}

type eventJSON struct {
	Index     int          `json:"index"`
	Kind      string       `json:"kind"`
	Timestamp int64        `json:"timestamp"`
	Party     *partyJSON   `json:"party,omitempty"`
	Content   *contentJSON `json:"content,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

type eventFrame struct {
	Type  string    `json:"type"` // "event"
	Event eventJSON `json:"event"`
}

type typingFrame struct {
	Type      string    `json:"type"` // "typing"
	Party     partyJSON `json:"party"`
	IsTyping  bool      `json:"is_typing"`
	Text      string    `json:"text"`
	Timestamp int64     `json:"timestamp"`
}

type noticeFrame struct {
	Type      string          `json:"type"` // "notice"
	Seq       int64           `json:"seq"`
	Party     partyJSON       `json:"party"`
	Payload   json.RawMessage `json:"payload"`
	Timestamp int64           `json:"timestamp"`
}

type userdataFrame struct {
	Type      string                     `json:"type"` // "userdata"
	Seq       int64                      `json:"seq"`
	Changes   map[string]json.RawMessage `json:"changes"`
	Timestamp int64                      `json:"timestamp"`
}

type queueFrame struct {
	Type      string `json:"type"` // "queue"
	Position  int    `json:"position"`
	Timestamp int64  `json:"timestamp"`
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func partyOf(p chat.Party) partyJSON {
	return partyJSON{ID: p.ID, Name: p.Name, Type: string(p.Type)}
}

func eventOf(ev chat.Event) eventJSON {
	out := eventJSON{Index: ev.Index, Kind: string(ev.Kind), Timestamp: millis(ev.At), Reason: string(ev.Reason)}
	if ev.Party != nil {
		p := partyOf(*ev.Party)
		out.Party = &p
	}
	if ev.Kind == chat.EventMessage || ev.Kind == chat.EventNotice {
		out.Content = &contentJSON{Text: ev.Text, Type: ev.ContentType}
	}
	return out
}

// validUTF8Frame reports whether a frame is valid UTF-8 and has no lone UTF-16 surrogate escapes.
// encoding/json would silently turn either into U+FFFD; the protocol refuses them instead, so
// what the customer typed is stored exactly or not at all.
func validUTF8Frame(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	s := string(b)
	for i := 0; i+5 < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if s[i+1] != 'u' {
			i++ // skip the escaped character, so `\\u` is not read as an escape
			continue
		}
		hi, ok := hex4(s[i+2 : i+6])
		if !ok {
			continue
		}
		switch {
		case hi >= 0xD800 && hi <= 0xDBFF:
			if i+11 < len(s)+0 && strings.HasPrefix(s[i+6:], `\u`) {
				if lo, ok := hex4(s[i+8 : i+12]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return false
		case hi >= 0xDC00 && hi <= 0xDFFF:
			return false
		}
		i += 5
	}
	return true
}

func hex4(s string) (rune, bool) {
	if len(s) != 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

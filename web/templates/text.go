package templates

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/a-h/templ"
)

// Segment is a piece of a message: text, or a link when URL is set. Components render both
// through templ's escaping; a URL is set only for a well-formed http(s) address.
type Segment struct {
	Text string
	URL  templ.SafeURL
}

// urlPattern finds candidates; linkURL decides. Quotes and angle brackets end a URL, so a URL
// written inside "…" or <…> stops at the delimiter.
var urlPattern = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'` + "`" + `]+`)

// Linkify splits text into plain segments and links for the http(s) URLs in it. Punctuation that
// ends a sentence (".", ",", ")", …) is not part of the link unless it is balanced inside it, as
// in https://en.wikipedia.org/wiki/Go_(programming_language). Line breaks stay in the text: the
// page shows them (white-space: pre-wrap).
func Linkify(text string) []Segment {
	var out []Segment
	last := 0
	for _, m := range urlPattern.FindAllStringIndex(text, -1) {
		start, end := m[0], trimURLEnd(text[m[0]:m[1]])+m[0]
		u, ok := linkURL(text[start:end])
		if !ok {
			continue
		}
		if start > last {
			out = append(out, Segment{Text: text[last:start]})
		}
		out = append(out, Segment{Text: text[start:end], URL: u})
		last = end
	}
	if last < len(text) || len(out) == 0 {
		out = append(out, Segment{Text: text[last:]})
	}
	return out
}

// trimURLEnd returns the length of s without the trailing punctuation that belongs to the
// sentence around the URL.
func trimURLEnd(s string) int {
	for len(s) > 0 {
		c := s[len(s)-1]
		switch {
		case strings.IndexByte(".,;:!?*", c) >= 0:
		case c == ')' && strings.Count(s, "(") < strings.Count(s, ")"):
		case c == ']' && strings.Count(s, "[") < strings.Count(s, "]"):
		case c == '}' && strings.Count(s, "{") < strings.Count(s, "}"):
		default:
			return len(s)
		}
		s = s[:len(s)-1]
	}
	return 0
}

// linkURL returns s as a link target when it is an absolute http(s) URL with a host.
func linkURL(s string) (templ.SafeURL, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
		return "", false
	}
	return templ.SafeURL(s), true
}

// MessageURL is the link target of a message of content type "url" ("" when it is not a valid
// http(s) URL: the message is then shown as text).
func MessageURL(text string) templ.SafeURL {
	u, _ := linkURL(strings.TrimSpace(text))
	return u
}

// KeyParts splits a UserData key where a line may break: before an upper-case letter that follows
// a lower-case one or a digit, and after ".", "_" and "-" (CoBrowse|Sessions|Quantity,
// _agentd.|cobrowse.|last). Joined, the parts are the key.
func KeyParts(key string) []string {
	var parts []string
	start := 0
	var prev rune
	for pos, r := range key {
		upperAfterLower := r >= 'A' && r <= 'Z' && (prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9')
		afterSeparator := prev == '.' || prev == '_' || prev == '-'
		if (upperAfterLower || afterSeparator) && pos > start {
			parts = append(parts, key[start:pos])
			start = pos
		}
		prev = r
	}
	return append(parts, key[start:])
}

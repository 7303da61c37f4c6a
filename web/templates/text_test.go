package templates

import (
	"context"
	"strings"
	"testing"
)

func TestLinkify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []Segment
	}{
		{"OK_NoURL", "Hello\nthere", []Segment{{Text: "Hello\nthere"}}},
		{"OK_Empty", "", []Segment{{Text: ""}}},
		{"OK_SentenceDot", "See https://a.example/x?y=1. Thanks", []Segment{
			{Text: "See "}, {Text: "https://a.example/x?y=1", URL: "https://a.example/x?y=1"}, {Text: ". Thanks"}}},
		{"OK_BalancedParens", "(https://en.wikipedia.org/wiki/Go_(programming_language))", []Segment{
			{Text: "("}, {Text: "https://en.wikipedia.org/wiki/Go_(programming_language)", URL: "https://en.wikipedia.org/wiki/Go_(programming_language)"}, {Text: ")"}}},
		{"OK_Two", "http://a.example and HTTPS://B.example/", []Segment{
			{Text: "http://a.example", URL: "http://a.example"}, {Text: " and "}, {Text: "HTTPS://B.example/", URL: "HTTPS://B.example/"}}},
		{"OK_StopsAtMarkup", `https://a.example/"><script>x</script>`, []Segment{
			{Text: "https://a.example/", URL: "https://a.example/"}, {Text: `"><script>x</script>`}}},
		{"ErrOtherSchemes", "javascript:alert(1) data:text/html,x ftp://a.example", []Segment{{Text: "javascript:alert(1) data:text/html,x ftp://a.example"}}},
		{"ErrNoHost", "https:///path and https://", []Segment{{Text: "https:///path and https://"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Linkify(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("Linkify(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Linkify(%q) = %q, want %q", tc.in, got, tc.want)
				}
			}
			var joined strings.Builder
			for _, s := range got {
				joined.WriteString(s.Text)
			}
			if joined.String() != tc.in {
				t.Fatalf("segments of %q join to %q", tc.in, joined.String())
			}
		})
	}
}

// TestTranscriptItemEscapes: a message's links and text pass through templ's escaping; nothing
// the customer writes becomes markup.
func TestTranscriptItemEscapes(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	msg := `<img src=x onerror=alert(1)> https://a.example/?q=<b>&x="y" javascript:alert(2)` + "\nline two"
	if err := TranscriptItem(EventView{Kind: "message", PartyName: "<i>Eve</i>", Text: msg}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, raw := range []string{"<img", "<b>", "<i>", `href="javascript`} {
		if strings.Contains(html, raw) {
			t.Fatalf("rendered %q: %s", raw, html)
		}
	}
	if !strings.Contains(html, `<a href="https://a.example/?q=" target="_blank" rel="noopener noreferrer">https://a.example/?q=</a>`) || !strings.Contains(html, "\nline two") {
		t.Fatalf("link or line break missing: %s", html)
	}
}

func TestKeyParts(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"CoBrowseSessionsQuantity": "Co|Browse|Sessions|Quantity",
		"_agentd.cobrowse.last":    "_|agentd.|cobrowse.|last",
		"Survey.CSAT":              "Survey.|CSAT",
		"URL":                      "URL",
		"order2Id":                 "order2|Id",
		"é":                        "é",
		"":                         "",
	} {
		if got := strings.Join(KeyParts(in), "|"); got != want {
			t.Errorf("KeyParts(%q) = %q, want %q", in, got, want)
		}
	}
}

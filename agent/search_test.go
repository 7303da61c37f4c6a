package agent

import (
	"reflect"
	"strings"
	"testing"

	"agentd"
)

// TestParseSearchText: words, "phrases" and prefix* terms; operator characters stay text (a
// prefix keeps only letters and digits, the one input to_tsquery sees); empty, wordless, too
// long and too many terms.
func TestParseSearchText(t *testing.T) {
	ok := []struct {
		in   string
		want []SearchTerm
	}{
		{"", nil},
		{"  parcel  ", []SearchTerm{{Text: "parcel"}}},
		{`parcel "tracking number" parc*`, []SearchTerm{{Text: "parcel"}, {Text: "tracking number", Phrase: true}, {Text: "parc", Prefix: true}}},
		{`"unclosed phrase`, []SearchTerm{{Text: "unclosed phrase", Phrase: true}}},
		{`a&b|!c`, []SearchTerm{{Text: "a&b|!c"}}},
		{`foo:*`, []SearchTerm{{Text: "foo", Prefix: true}}},
		{`CB-4*`, []SearchTerm{{Text: "cb 4", Prefix: true}}},
		// A word goes to plainto_tsquery as it is; <-> has no letter or digit and is dropped.
		{`'x'':*\ <-> (y)*`, []SearchTerm{{Text: `'x'':*\`}, {Text: "y", Prefix: true}}},
		{`& | "" ! Κόσμος*`, []SearchTerm{{Text: "κόσμος", Prefix: true}}},
	}
	for _, c := range ok {
		got, err := ParseSearchText(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseSearchText(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"& | !":                   "Text has no words to search for",
		`"" **`:                   "Text has no words to search for",
		strings.Repeat("x", 201):  "Text is at most 200 characters.",
		"a b c d e f g h i j k":   "Text has at most 10 words or phrases.",
		strings.Repeat("é", 200):  "",
		strings.Repeat("ab ", 10): "",
	}
	for in, msg := range bad {
		_, err := ParseSearchText(in)
		if msg == "" {
			if err != nil {
				t.Errorf("ParseSearchText(%.20q): %v", in, err)
			}
			continue
		}
		if agentd.ErrorCode(err) != "invalid_search" || !strings.Contains(agentd.ErrorMessage(err), msg) {
			t.Errorf("ParseSearchText(%.20q) = %v, want %q", in, err, msg)
		}
	}
}

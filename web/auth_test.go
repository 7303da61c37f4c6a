package web

import "testing"

// TestSafeNext (security probe finding 6): a post-login redirect stays on this site, whatever a
// browser would make of the text.
func TestSafeNext(t *testing.T) {
	for _, next := range []string{
		"/console", "/console/history/3f1e?x=1#t", "/admin/users/12", "/survey/abc",
	} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
	for _, next := range []string{
		"", "console", "https://evil.example/", "//evil.example", "/\t/evil.example/", "/%09/evil.example/x\t",
		"/\\evil.example", "/\\/evil.example", "\\\\evil.example", "/\n/evil.example", "/\r//evil.example",
		"/ /evil.example", "/\u00a0/evil.example", "/\u2028//evil.example", "javascript:alert(1)", "/x\x00",
		"/\x7f//evil.example",
	} {
		if got := safeNext(next); got != "" {
			t.Errorf("safeNext(%q) = %q, want it refused", next, got)
		}
	}
}

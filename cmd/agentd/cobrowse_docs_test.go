package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"agentd/notify"
)

// TestCoBrowseDocsVerifier builds the Go verifier of docs/cobrowse.md and runs it on contexts
// agentd signs: a valid one is accepted with its claims; tampered, wrong-key, alg "none" and
// expired ones are refused.
func TestCoBrowseDocsVerifier(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/cobrowse.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)\n```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/cobrowse.md has no go block")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "verify.go")
	if err := os.WriteFile(src, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "verify")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the docs' verifier: %v\n%s", err, out)
	}
	key := []byte(strings.Repeat("s", 32))
	a := notify.CoBrowseAgent{ID: 42, Username: "alice", Name: "Alice Martin"}
	good := notify.SignCoBrowseContext(key, a, "i-1", "CB-9", time.Now(), 0)
	parts := strings.Split(good, ".")
	for name, tc := range map[string]struct {
		token, want string
		ok          bool
	}{
		"Valid":       {good, "Alice Martin (alice, id 42) watches session CB-9 of chat i-1", true},
		"ErrTampered": {parts[0] + "." + parts[1][:len(parts[1])-2] + "x" + parts[1][len(parts[1])-1:] + "." + parts[2], "refused:", false},
		"ErrWrongKey": {notify.SignCoBrowseContext([]byte(strings.Repeat("t", 32)), a, "i-1", "CB-9", time.Now(), 0), "refused: bad signature", false},
		"ErrAlgNone":  {"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", "refused: not HS256", false},
		"ErrExpired":  {notify.SignCoBrowseContext(key, a, "i-1", "CB-9", time.Now().Add(-time.Hour), 0), "refused: expired", false},
	} {
		cmd := exec.Command(bin, tc.token)
		cmd.Env = append(os.Environ(), "AGENTD_COBROWSE_CONTEXT_KEY="+string(key))
		out, err := cmd.Output()
		if (err == nil) != tc.ok || !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("%s: %q, %v", name, out, err)
		}
	}
}

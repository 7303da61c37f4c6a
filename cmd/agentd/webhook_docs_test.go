package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"agentd/notify"
	"agentd/postgres"
)

// docBlock returns the first fenced code block of language lang in docs/webhooks.md.
func docBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)\n```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/webhooks.md has no %s block", lang)
	}
	return string(m[1])
}

// startSnippet runs a receiver from the docs with secret and returns its URL and the lines it
// prints.
func startSnippet(t *testing.T, secret string, name ...string) (string, <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name[0], name[1:]...)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret, "ADDR=127.0.0.1:0")
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	select {
	case l := <-lines:
		addr, ok := strings.CutPrefix(l, "listening on ")
		if !ok {
			t.Fatalf("the receiver printed %q", l)
		}
		return "http://" + addr + "/agentd", lines
	case <-time.After(60 * time.Second):
		t.Fatal("the receiver did not start")
	}
	return "", nil
}

// TestWebhookDocsReceivers runs the Go and the JavaScript receivers of docs/webhooks.md
// against real signed deliveries: a test event verifies and is answered 204 (delivered); after
// a rotation, the receiver that knows only the previous secret still verifies; a forged
// signature is refused with 401.
func TestWebhookDocsReceivers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	goFile := filepath.Join(dir, "receiver.go")
	if err := os.WriteFile(goFile, []byte(docBlock(t, "go")), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "receiver")
	build := exec.Command("go", "build", "-o", bin, goFile)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the docs' receiver: %v\n%s", err, out)
	}
	jsFile := filepath.Join(dir, "receiver.js")
	if err := os.WriteFile(jsFile, []byte(docBlock(t, "js")), 0o600); err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to run the docs' JavaScript receiver: ", err)
	}
	m := startNode(t, newDB(t), hookConfig)
	ctx := context.Background()
	store := postgres.NewWebhookStore(m.DB)
	for _, r := range []struct {
		name string
		cmd  []string
	}{{"Go", []string{bin}}, {"JavaScript", []string{node, jsFile}}} {
		t.Run(r.name, func(t *testing.T) {
			secret := notify.NewSecret()
			url, lines := startSnippet(t, secret, r.cmd...)
			e, err := store.AddEndpoint(ctx, notify.Actor{}, notify.NewEndpoint{URL: url, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			expect := func(d notify.Delivery) {
				t.Helper()
				waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
				select {
				case l := <-lines:
					if l != "verified "+d.ID+" ping" {
						t.Fatalf("the receiver printed %q", l)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the receiver printed nothing")
				}
				if as, _ := m.Webhooks.Attempts(ctx, d.ID); len(as) != 1 || as[0].Status != 204 {
					t.Fatalf("attempts %+v", as)
				}
			}
			d, err := m.Webhooks.SendTest(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			expect(d)
			// The receiver knows only the previous secret now; the delivery carries both.
			if _, _, err := m.Webhooks.Rotate(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
			if d, err = m.Webhooks.SendTest(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
			expect(d)
			// A forged signature (another secret) is refused.
			body := `{"id":"x","type":"ping","created_at":"2026-01-01T00:00:00Z","data":{}}`
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Agentd-Signature", notify.Sign(time.Now(), []byte(body), notify.NewSecret()))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a forged delivery got %d", resp.StatusCode)
			}
			// So is a replay of a genuine signature from long ago.
			req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Agentd-Signature", notify.Sign(time.Now().Add(-time.Hour), []byte(body), secret))
			if resp, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a replayed delivery got %d", resp.StatusCode)
			}
		})
	}
}

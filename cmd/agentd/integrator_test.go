package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"agentd/notify"
)

// TestIntegratorJourney is issue 8's "done when", end to end: an integrator creates a token and a
// webhook with the CLI; a real chat (customer socket, agent console service) sends a message and
// shares a CoBrowseSessionId; the loopback receiver gets verified message.created,
// userdata.updated (CoBrowseSessionId) and cobrowse.requested deliveries, the first one only after
// failing attempts (retried); the integrator lists and reads the interaction through the API and
// follows the event stream across a reconnect, to another node, missing nothing.
// Not parallel: it sets AGENTD_WEBHOOK_ALLOW_PRIVATE for the CLI.
func TestIntegratorJourney(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	t.Setenv("AGENTD_WEBHOOK_ALLOW_PRIVATE", "1")
	var out bytes.Buffer
	cli := func(run func(context.Context, []string, io.Writer) error, args ...string) string {
		t.Helper()
		out.Reset()
		if err := run(ctx, append(args, "--database-url", db), &out); err != nil {
			t.Fatalf("agentd %v: %v", args, err)
		}
		return out.String()
	}

	// The receiver refuses the first two attempts of the first message, as a receiver restarting would.
	failed := 0
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Agentd-Event") == "message.created" && failed < 2 {
			failed++
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	tok := regexp.MustCompile(`token: (agd_\S+)`).FindStringSubmatch(cli(runToken, "create", "--name", "crm", "--scopes", "read,write,events"))
	hook := regexp.MustCompile(`secret: (whsec_[0-9a-f]+)`).FindStringSubmatch(cli(runWebhook, "add", "--url", rc.srv.URL,
		"--events", "message.created,userdata.updated,cobrowse.requested"))
	if tok == nil || hook == nil {
		t.Fatalf("the CLI printed no token or secret: %q", out.String())
	}
	secret := hook[1]

	a := startNode(t, db, hookConfig, func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	b := startNode(t, db, hookConfig)
	u := newAgent(t, a, "olga", 2)
	ready(t, a, u)
	c, id := acceptedChat(t, a, u, nil)
	s, _ := openStream(t, a, url.Values{"interaction": {id}}, tok[1])

	mustOK(t, c.do("send_message", map[string]any{"text": "My screen shows an error"}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-7"}}))

	// Webhooks: each event delivered, signed with the secret the CLI printed.
	waitFor(t, "the three deliveries", func() bool {
		return len(rc.ofType("message.created")) >= 3 && len(rc.ofType("cobrowse.requested")) == 1 && len(rc.ofType("userdata.updated")) >= 1
	})
	msgs := rc.ofType("message.created")
	if msgs[0].delivery() != msgs[2].delivery() {
		t.Fatalf("the retried message.created came under delivery ids %s and %s", msgs[0].delivery(), msgs[2].delivery())
	}
	for _, typ := range []string{"message.created", "userdata.updated", "cobrowse.requested"} {
		r := rc.ofType(typ)[0]
		if verifySignature(t, r.Header.Get("Agentd-Signature"), r.Body, secret) != 1 {
			t.Fatalf("%s: signature does not verify", typ)
		}
	}
	_, _, data := rc.ofType("cobrowse.requested")[0].event(t)
	if data["session_id"] != "CB-7" || data["interaction_id"] != id || data["service"] != "default" ||
		data["agent"].(map[string]any)["username"] != "olga" {
		t.Fatalf("cobrowse.requested data %v", data)
	}
	var sawSession bool
	for _, r := range rc.ofType("userdata.updated") {
		if _, _, d := r.event(t); d["key"] == "CoBrowseSessionId" && d["value"] == "CB-7" {
			sawSession = true
		}
	}
	if !sawSession {
		t.Fatal("no userdata.updated delivery with CoBrowseSessionId")
	}

	// The API: list and read.
	list := apiCall(t, a, "GET", "/api/v1/interactions?state=active", tok[1], nil)
	if list.status != 200 || !strings.Contains(string(list.raw), id) {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	detail := apiCall(t, b, "GET", "/api/v1/interactions/"+id, tok[1], nil)
	if detail.status != 200 || !strings.Contains(string(detail.raw), "My screen shows an error") || !strings.Contains(string(detail.raw), "CB-7") {
		t.Fatalf("detail: %d %s", detail.status, detail.raw)
	}

	// The stream: read up to the message, drop, more happens, resume on the other node.
	got := s.until("the message", messages(1))
	last := got[len(got)-1].Position
	_ = s.ws.Close()
	mustOK(t, c.do("send_message", map[string]any{"text": "while the stream was away"}))
	r, _ := openStream(t, b, url.Values{"interaction": {id}, "from": {last.String()}}, tok[1])
	rest := r.until("the message sent while away", messages(1))
	if rest[0].Type != notify.UserDataUpdated && rest[0].Type != notify.CoBrowseRequested && rest[0].Type != notify.MessageCreated {
		t.Fatalf("resumed with %s", rest[0].Type)
	}
	for _, e := range rest {
		if !last.Less(e.Position) {
			t.Fatalf("resumed stream repeated %s", e.Position)
		}
	}
	if txt := texts(rest); len(txt) != 1 || txt[0] != "while the stream was away" {
		t.Fatalf("resumed messages %v", txt)
	}
}

package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestTokenCLI: agentd token create prints the token once, and it authenticates against a
// running node; list shows it (without the secret), a bound user and its last use; revoke makes
// it 401 at once; bad input gets a one-line error naming the problem.
func TestTokenCLI(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	node := startNode(t, db)
	newAgent(t, node, "alice", 2)
	var out bytes.Buffer
	run := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := runToken(ctx, append(args, "--database-url", db), &out); err != nil {
			t.Fatalf("agentd token %v: %v", args, err)
		}
		return out.String()
	}
	created := run("create", "--name", "crm", "--scopes", "read,write")
	m := regexp.MustCompile(`^created token "crm" \(scopes read,write\)\ntoken: (agd_[A-Za-z0-9_-]+)\nThe token is shown only now and will not be shown again`).FindStringSubmatch(created)
	if m == nil {
		t.Fatalf("create printed %q", created)
	}
	secret := m[1]
	if r := apiCall(t, node, http.MethodGet, "/api/v1/interactions", secret, nil); r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/interactions with the printed token: %d %s", r.status, r.raw)
	}
	bound := run("create", "--name", "alice-desk", "--user", "ALICE")
	if !strings.Contains(bound, `(scopes read, bound to alice)`) {
		t.Fatalf("create --user printed %q", bound)
	}
	list := run("list")
	if strings.Contains(list, secret) || !regexp.MustCompile(`(?m)^crm +agd_\S+… +read,write +- +\S+ +\d{4}-\S+ +-$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^alice-desk +agd_\S+… +read +alice +\S+ +- +-$`).MatchString(list) {
		t.Fatalf("list printed %q", list)
	}
	if got := run("revoke", "--name", "CRM"); !strings.Contains(got, `revoked token "CRM"`) {
		t.Fatalf("revoke printed %q", got)
	}
	if r := apiCall(t, node, http.MethodGet, "/api/v1/interactions", secret, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the revoked token answers %d", r.status)
	}
	if list := run("list"); !regexp.MustCompile(`(?m)^crm +agd_\S+… +read,write +- +\S+ +\S+ +\d{4}-\S+$`).MatchString(list) {
		t.Fatalf("list after revoke printed %q", list)
	}
	// A revoked token's name may be used again.
	run("create", "--name", "crm")
	run("create", "--name", "gone")
	run("revoke", "--name", "gone")

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"ErrNoName":        {[]string{"create"}, "agentd token create needs --name"},
		"ErrBadName":       {[]string{"create", "--name", "no spaces"}, "A token needs a name of 1 to 64 letters"},
		"ErrUnknownScope":  {[]string{"create", "--name", "x", "--scopes", "read,admin"}, `unknown scope "admin"`},
		"ErrUnknownUser":   {[]string{"create", "--name", "x", "--user", "nobody"}, `no user is named "nobody"`},
		"ErrDuplicateName": {[]string{"create", "--name", "alice-desk"}, `A live token named "alice-desk" exists already.`},
		"ErrRevokeNoName":  {[]string{"revoke"}, "agentd token revoke needs --name"},
		"ErrRevokeUnknown": {[]string{"revoke", "--name", "nope"}, "No live token has that name."},
		"ErrRevokeTwice":   {[]string{"revoke", "--name", "gone"}, "No live token has that name."},
		"ErrUnknownVerb":   {[]string{"frobnicate"}, `unknown token command "frobnicate"`},
		"ErrExtraArgument": {[]string{"list", "extra"}, `unexpected argument "extra"`},
	} {
		err := runToken(ctx, append(tc.args, "--database-url", db), &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one line containing %q, got %v", name, tc.want, err)
		}
	}
	if err := runToken(ctx, nil, &out); err == nil || err.Error() != tokenUsage {
		t.Errorf("no subcommand: %v", err)
	}
	if ts, _ := node.Tokens.Tokens(ctx); len(ts) != 4 {
		t.Errorf("bad input left tokens behind: %d tokens", len(ts))
	}
}

// TestTokenCommandRegistered: `agentd token` is reached through the command dispatcher (main
// exits 1 with "agentd: <error>" for any error run returns).
func TestTokenCommandRegistered(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"token", "create", "--scopes", "read"})
	if err == nil || err.Error() != "agentd token create needs --name" {
		t.Fatalf("agentd token create without --name: %v", err)
	}
	if err := run(context.Background(), []string{"nope"}); err == nil || !strings.Contains(err.Error(), "webhook or token)") {
		t.Fatalf("unknown command: %v", err)
	}
}

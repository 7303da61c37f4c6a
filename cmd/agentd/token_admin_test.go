package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"agentd/agent"
	"agentd/notify"
)

// TestTokenAdminBrowser: an admin creates a token bound to an agent on /admin/tokens in
// chromium and sees it once (not after a reload); the token works against the API; "Revoke"
// makes it 401 and the list shows it revoked; every page is axe-clean, and both changes are in
// the audit log under the admin's name.
func TestTokenAdminBrowser(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	newAgent(t, m, "alice", 2)
	base := m.URL()
	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate(base+"/admin/tokens"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), "root-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	poll(t, tab, "tokens page", `location.pathname === '/admin/tokens' && !!document.getElementById('create-token') && !!document.getElementById('tokens-empty')`)
	if !eval[bool](t, tab, `document.querySelector('.admin-nav a[aria-current=page]')?.textContent === 'API tokens'`) {
		t.Fatal("the nav does not mark API tokens")
	}
	checkAxe(t, tab, "tokens page")

	// A bad name comes back with the field marked and what was chosen kept.
	setValues(t, tab, map[string]string{"name": "has spaces", "user": "alice"})
	setChecked(t, tab, "scope-write", true)
	adminSubmit(t, tab, "create-token", `!!document.getElementById('err-name')`)
	if !eval[bool](t, tab, `document.getElementById('scope-write').checked && document.getElementById('user').value === 'alice' && !document.getElementById('token-value')`) {
		t.Fatal("the form came back without what was chosen, or with a token")
	}
	checkAxe(t, tab, "tokens page with errors")

	setValues(t, tab, map[string]string{"name": "desk"})
	setChecked(t, tab, "scope-read", true)
	adminSubmit(t, tab, "create-token", `!!document.getElementById('token-value')`)
	secret := eval[string](t, tab, `document.getElementById('token-value').textContent`)
	if !strings.HasPrefix(secret, notify.TokenPrefix) || !eval[bool](t, tab, `document.getElementById('token-secret').textContent.includes('will not be shown again')`) {
		t.Fatalf("token shown: %q", secret)
	}
	row := eval[[]string](t, tab, `(() => { const tr = document.querySelector('#tokens-table tr[data-name=desk]');
		return [tr.querySelector('.scopes').textContent, tr.querySelector('.user').textContent.trim(), tr.querySelector('.revoked').textContent.trim()]; })()`)
	if row[0] != "read, write" || row[1] != "alice" || row[2] != "no" {
		t.Fatalf("token row %q", row)
	}
	checkAxe(t, tab, "tokens page with a new token")

	if r := apiCall(t, m, http.MethodGet, "/api/v1/interactions", secret, nil); r.status != http.StatusOK {
		t.Fatalf("the token shown answers %d %s", r.status, r.raw)
	}
	adminGo(t, tab, base+"/admin/tokens", `!!document.getElementById('create-token')`)
	if eval[bool](t, tab, `!!document.getElementById('token-value') || document.body.textContent.includes(`+jsString(secret)+`)`) {
		t.Fatal("the token is shown again")
	}
	if eval[string](t, tab, `document.querySelector('#tokens-table tr[data-name=desk] .last-used').textContent`) == "never" {
		t.Fatal("last use is not shown")
	}

	browse(t, tab, chromedp.Click(chromedp.CSS(`#tokens-table tr[data-name=desk] button.revoke`)))
	poll(t, tab, "revoked", `document.getElementById('flash')?.textContent === 'Token revoked: it no longer authenticates.'`)
	if !eval[bool](t, tab, `(() => { const tr = document.querySelector('#tokens-table tr[data-name=desk]');
		return tr.hasAttribute('data-revoked') && tr.querySelector('.revoked').textContent.trim() !== 'no' && !tr.querySelector('button'); })()`) {
		t.Fatal("the list does not show the token revoked")
	}
	checkAxe(t, tab, "tokens page after revoke")
	if r := apiCall(t, m, http.MethodGet, "/api/v1/interactions", secret, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the revoked token answers %d", r.status)
	}
	audit, err := m.Admin.AuditLog(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range audit {
		if strings.HasPrefix(e.Action, "token.") {
			got = append(got, e.Username+" "+e.Action+" "+e.Target)
		}
	}
	if strings.Join(got, "|") != "root token.revoke desk|root token.create desk" {
		t.Fatalf("audit log: %q", got)
	}
}

// TestTokenAdminAccess: only admins reach /admin/tokens (a supervisor gets 403), a form without
// the session's CSRF token changes nothing, and bad input is refused with the form again.
func TestTokenAdminAccess(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	root := newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	sup := newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	apiToken(t, m, "live", "read", "")
	admin, other, anon := newAdminClient(t, m, &root), newAdminClient(t, m, &sup), newAdminClient(t, m, nil)
	if resp, _ := other.do(http.MethodGet, "/admin/tokens", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("supervisor GET: %d", resp.StatusCode)
	}
	if resp, _ := anon.do(http.MethodGet, "/admin/tokens", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous GET: %d", resp.StatusCode)
	}
	for _, p := range []string{"/admin/tokens", "/admin/tokens/live/revoke"} {
		form := url.Values{"name": {"forged"}, "scopes": {"write"}}
		if resp, _ := admin.post(p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without CSRF: %d", p, resp.StatusCode)
		}
		form.Set("_csrf", admin.csrf)
		if resp, _ := other.post(p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("supervisor POST %s: %d", p, resp.StatusCode)
		}
	}
	if ts, _ := m.Tokens.Tokens(ctx); len(ts) != 1 || ts[0].Name != "live" || ts[0].RevokedAt != nil {
		t.Fatalf("forged forms changed something: %+v", ts)
	}
	for name, tc := range map[string]struct {
		form   url.Values
		status int
		want   string
	}{
		"ErrNoName":       {url.Values{"name": {""}}, http.StatusUnprocessableEntity, `id="err-name"`},
		"ErrUnknownScope": {url.Values{"name": {"x"}, "scopes": {"admin"}}, http.StatusUnprocessableEntity, `unknown scope &#34;admin&#34;`},
		"ErrUnknownUser":  {url.Values{"name": {"x"}, "user": {"nobody"}}, http.StatusUnprocessableEntity, `id="err-user"`},
		"ErrDuplicate":    {url.Values{"name": {"LIVE"}}, http.StatusConflict, `exists already`},
	} {
		tc.form.Set("_csrf", admin.csrf)
		resp, body := admin.post("/admin/tokens", tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) || strings.Contains(body, `id="token-value"`) {
			t.Errorf("%s: %d, want %d with %q", name, resp.StatusCode, tc.status, tc.want)
		}
	}
	if resp, _ := admin.post("/admin/tokens/nope/revoke", url.Values{"_csrf": {admin.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke of an unknown token: %d", resp.StatusCode)
	}
	if ts, _ := m.Tokens.Tokens(ctx); len(ts) != 1 {
		t.Fatalf("bad input made tokens: %+v", ts)
	}
}

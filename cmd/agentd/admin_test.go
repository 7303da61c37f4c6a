package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"agentd/agent"
)

// The admin pages (/admin), driven like an admin would: headless Chromium through the real sign-in
// page for the forms, and a plain HTTP client for what a browser would not send (forged forms,
// requests of other roles).

func newAdminUser(t *testing.T, m *Main, username, password string, role agent.Role) agent.User {
	t.Helper()
	u, err := m.Accounts.CreateUser(context.Background(), agent.NewUser{Username: username, Password: password, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// adminSubmit clicks a form's submit button with the browser's own validation turned off, so the
// server's validation is what is tested, and waits for the page that answers.
func adminSubmit(t *testing.T, tab context.Context, button, waitExpr string) {
	t.Helper()
	eval[bool](t, tab, `(() => { const b = document.getElementById(`+strconv.Quote(button)+`); b.form.noValidate = true; window.__before = true; return true; })()`)
	browse(t, tab, chromedp.Click(chromedp.ID(button)))
	poll(t, tab, "page after "+button, `!window.__before && (`+waitExpr+`)`)
}

// adminGo opens url and waits for waitExpr on the new page: the marker set on the old page tells
// them apart, so a slow navigation cannot let the test act on the page it is leaving.
func adminGo(t *testing.T, tab context.Context, url, waitExpr string) {
	t.Helper()
	eval[bool](t, tab, `window.__before = true`)
	browse(t, tab, chromedp.Navigate(url))
	poll(t, tab, url, `!window.__before && (`+waitExpr+`)`)
}

// setValues fills form fields by id, as typing would (textareas turn CRLF into LF).
func setValues(t *testing.T, tab context.Context, values map[string]string) {
	t.Helper()
	b, _ := json.Marshal(values)
	missing := eval[[]string](t, tab, `(() => {
		const missing = [];
		for (const [id, v] of Object.entries(`+string(b)+`)) {
			const el = document.getElementById(id);
			if (!el) { missing.push(id); continue; }
			el.value = v;
			el.dispatchEvent(new Event('input', {bubbles: true}));
		}
		return missing;
	})()`)
	if len(missing) > 0 {
		t.Fatalf("no fields %v", missing)
	}
}

func setChecked(t *testing.T, tab context.Context, id string, on bool) {
	t.Helper()
	eval[bool](t, tab, `(() => { const c = document.getElementById(`+strconv.Quote(id)+`); c.checked = `+strconv.FormatBool(on)+`; return true; })()`)
}

func serviceByName(t *testing.T, m *Main, name string) (agent.ServiceInfo, agent.Strategy) {
	t.Helper()
	svcs, err := m.Agents.Services(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range svcs {
		if si.Name == name {
			var st agent.Strategy
			if err := json.Unmarshal(si.Strategy, &st); err != nil {
				t.Fatal(err)
			}
			return si, st
		}
	}
	t.Fatalf("no service %q", name)
	return agent.ServiceInfo{}, agent.Strategy{}
}

type auditRow struct {
	User    string
	Action  string
	Target  string
	Details string
}

func auditRows(t *testing.T, m *Main, action string) []auditRow {
	t.Helper()
	rows, err := m.DB.Pool.Query(context.Background(), `SELECT coalesce(u.username, ''), a.action, a.target, a.details::text
		FROM audit_log a LEFT JOIN users u ON u.id = a.user_id WHERE a.action LIKE $1 ORDER BY a.id`, action)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.User, &r.Action, &r.Target, &r.Details); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAdminBrowser is an admin's afternoon in headless Chromium: a service with dispositions, a
// mandatory disposition and a survey; invalid strategy input; a canned response; an agent in the
// new service; hostile text shown escaped; and the audit log of it all.
func TestAdminBrowser(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	base := m.URL()

	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate(base+"/admin"), // signed out: to the sign-in page, and back after it
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), "root-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	poll(t, tab, "admin overview", `location.pathname === '/admin' && document.querySelector('h1')?.textContent === 'Administration'`)

	const svcDisplay = `Billing <b id="xss-svc">&</b> <script>window.pwned = 1</script>`
	t.Run("CreateService", func(t *testing.T) {
		adminGo(t, tab, base+"/admin/services", `document.getElementById('create-service')`)
		setValues(t, tab, map[string]string{"name": "billing", "display_name": svcDisplay})
		adminSubmit(t, tab, "create-service", `document.getElementById('flash')?.textContent === 'Created.'`)
		if p := eval[string](t, tab, `location.pathname`); p != "/admin/services/billing" {
			t.Fatalf("after create: at %s", p)
		}
		setValues(t, tab, map[string]string{
			"welcome_notice":   "Hello from billing.",
			"accept_timeout":   "45",
			"dispositions":     "Resolved\r\nEscalated\n\n  Spam  ",
			"survey_when":      "ended",
			"survey_url":       "",
			"survey_questions": "NPS|How likely are you to recommend us?|scale\nComment|Anything else?|text",
			"routed_userdata":  "Queue={service}\nTicket=T-{interactionId}",
			"visible_userdata": "Queue",
			"pending_warn":     "30",
			"pending_late":     "90",
		})
		setChecked(t, tab, "disposition_required", true)
		setChecked(t, tab, "survey_enabled", true)
		adminSubmit(t, tab, "save-service", `document.getElementById('flash')?.textContent === 'Saved.'`)

		si, st := serviceByName(t, m, "billing")
		if si.DisplayName != svcDisplay || !si.Enabled {
			t.Fatalf("service: %+v", si)
		}
		want := agent.Strategy{
			WelcomeNotice: "Hello from billing.", AcceptTimeoutSeconds: 45,
			Dispositions: []string{"Resolved", "Escalated", "Spam"}, DispositionRequired: true,
			RoutedUserData:  map[string]string{"Queue": "{service}", "Ticket": "T-{interactionId}"},
			VisibleUserData: []string{"Queue"},
			Survey: &agent.Survey{When: "ended", Questions: []agent.SurveyQuestion{
				{ID: "NPS", Label: "How likely are you to recommend us?", Type: "scale"},
				{ID: "Comment", Label: "Anything else?", Type: "text"},
			}},
			PendingWarnSeconds: 30, PendingLateSeconds: 90,
		}
		got, _ := json.Marshal(st)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Fatalf("strategy:\n got %s\nwant %s", got, wantJSON)
		}
		// The agent side reads the same strategy.
		stored, err := m.Agents.Strategy(ctx, si.ID)
		if err != nil || !stored.DispositionRequired || stored.SurveyWhen() != "ended" {
			t.Fatalf("agent side strategy: %+v, %v", stored, err)
		}
		screenshot(t, tab, "admin-service.png")
		checkLabels(t, tab, "admin service page")
		checkAxe(t, tab, "admin service page")
		// The form shows what was saved.
		if v := eval[string](t, tab, `document.getElementById('dispositions').value`); v != "Resolved\nEscalated\nSpam" {
			t.Fatalf("dispositions shown as %q", v)
		}
	})

	t.Run("InvalidStrategyChangesNothing", func(t *testing.T) {
		before, _ := serviceByName(t, m, "billing")
		nUpdates := len(auditRows(t, m, "service.update"))
		adminGo(t, tab, base+"/admin/services/billing", `document.getElementById('save-service')`)
		setValues(t, tab, map[string]string{
			"welcome_notice": "A new welcome that must survive the error",
			"accept_timeout": "-5",
			"dispositions":   "",
		})
		setChecked(t, tab, "disposition_required", true)
		adminSubmit(t, tab, "save-service", `document.getElementById('form-error')`)
		for _, id := range []string{"err-accept_timeout", "err-disposition_required"} {
			if !eval[bool](t, tab, `!!document.getElementById('`+id+`')`) {
				t.Fatalf("no field error %s; page: %s", id, eval[string](t, tab, `document.getElementById('main').innerText`))
			}
		}
		if msg := eval[string](t, tab, `document.getElementById('err-disposition_required').textContent`); !strings.Contains(msg, "list of dispositions") {
			t.Fatalf("mandatory disposition message: %q", msg)
		}
		if v := eval[string](t, tab, `document.getElementById('welcome_notice').value + '|' + document.getElementById('accept_timeout').value`); v != "A new welcome that must survive the error|-5" {
			t.Fatalf("input lost: %q", v)
		}
		if inv := eval[string](t, tab, `document.getElementById('accept_timeout').getAttribute('aria-invalid')`); inv != "true" {
			t.Fatalf("accept_timeout aria-invalid=%q", inv)
		}
		checkAxe(t, tab, "admin service page with errors")
		after, _ := serviceByName(t, m, "billing")
		if string(after.Strategy) != string(before.Strategy) || after.DisplayName != before.DisplayName {
			t.Fatalf("invalid input changed the service:\n%s\n%s", before.Strategy, after.Strategy)
		}
		if n := len(auditRows(t, m, "service.update")); n != nUpdates {
			t.Fatalf("service.update audited %d times, want %d", n, nUpdates)
		}

		// A question line of the wrong shape and a visible key that is not routed.
		adminGo(t, tab, base+"/admin/services/billing", `document.getElementById('save-service')`)
		setValues(t, tab, map[string]string{"survey_questions": "just a question", "visible_userdata": "Secret"})
		adminSubmit(t, tab, "save-service", `document.getElementById('form-error')`)
		if !eval[bool](t, tab, `!!document.getElementById('err-survey_questions') && !!document.getElementById('err-visible_userdata')`) {
			t.Fatalf("no field errors: %s", eval[string](t, tab, `document.getElementById('main').innerText`))
		}
		if after, _ := serviceByName(t, m, "billing"); string(after.Strategy) != string(before.Strategy) {
			t.Fatal("invalid input changed the strategy")
		}
	})

	const cannedTitle = `Refund <img src="x" id="xss-canned" onerror="window.pwned = 2">`
	t.Run("CannedResponse", func(t *testing.T) {
		si, _ := serviceByName(t, m, "billing")
		adminGo(t, tab, base+"/admin/canned/new", `document.getElementById('save-canned')`)
		checkAxe(t, tab, "new canned response page")
		setValues(t, tab, map[string]string{"title": cannedTitle, "body": "We have refunded your order.", "service": strconv.FormatInt(si.ID, 10)})
		adminSubmit(t, tab, "save-canned", `document.getElementById('flash')?.textContent === 'Created.'`)
		cs, err := m.Agents.CannedResponses(ctx, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Title != cannedTitle || cs[0].Body != "We have refunded your order." || cs[0].ServiceID != si.ID {
			t.Fatalf("canned responses: %+v", cs)
		}

		adminGo(t, tab, base+"/admin/canned?q=refunded", `document.getElementById('canned-table')`)
		if n := eval[int](t, tab, `document.querySelectorAll('#canned-table tbody tr').length`); n != 1 {
			t.Fatalf("search found %d rows", n)
		}
		adminGo(t, tab, base+"/admin/canned?q=nothing-like-this", `document.getElementById('canned-empty')`)
	})

	t.Run("CreateAgent", func(t *testing.T) {
		adminGo(t, tab, base+"/admin/users/new", `document.getElementById('save-user')`)
		checkAxe(t, tab, "new user page")
		setValues(t, tab, map[string]string{"username": "dana", "password": "dana-secret-pw", "display_name": "Dana", "role": "agent", "capacity": "2"})
		setChecked(t, tab, "service-billing", true)
		adminSubmit(t, tab, "save-user", `document.getElementById('flash')?.textContent === 'Created.'`)
		us, err := m.Accounts.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(us, func(u agent.User) bool { return u.Username == "dana" })
		if i < 0 {
			t.Fatal("dana was not created")
		}
		if u := us[i]; u.Role != agent.RoleAgent || u.DisplayName != "Dana" || u.Capacity != 2 || !slices.Equal(u.Services, []string{"billing"}) || u.Disabled {
			t.Fatalf("dana: %+v", u)
		}
		if _, err := m.Accounts.Login(ctx, "dana", "dana-secret-pw", "test"); err != nil {
			t.Fatalf("dana cannot sign in: %v", err)
		}
		adminGo(t, tab, base+"/admin/users", `document.getElementById('users-table')`)
		checkAxe(t, tab, "users page")
		if s := eval[string](t, tab, `document.querySelector('tr[data-username=dana] .services').textContent`); s != "billing" {
			t.Fatalf("services column: %q", s)
		}
		adminGo(t, tab, base+"/admin/users/"+strconv.FormatInt(us[i].ID, 10), `document.getElementById('save-user')`)
		checkAxe(t, tab, "user page")
	})

	t.Run("HostileTextIsEscaped", func(t *testing.T) {
		for _, page := range []struct{ url, ready, cell, want string }{
			{base + "/admin/services", `document.getElementById('services-table')`, `tr[data-service=billing] .display-name`, svcDisplay},
			{base + "/admin/services/billing", `document.getElementById('display_name')`, ``, svcDisplay},
			{base + "/admin/canned", `document.getElementById('canned-table')`, `#canned-table .title`, cannedTitle},
			{base + "/admin/audit", `document.getElementById('audit-table')`, ``, ""},
			{base + "/admin", `document.getElementById('audit-table')`, ``, ""},
		} {
			adminGo(t, tab, page.url, page.ready)
			checkAxe(t, tab, page.url)
			if eval[bool](t, tab, `!!document.getElementById('xss-svc') || !!document.getElementById('xss-canned') || !!window.pwned`) {
				t.Fatalf("%s: injected markup became elements", page.url)
			}
			if page.cell != "" {
				if got := eval[string](t, tab, `document.querySelector(`+strconv.Quote(page.cell)+`).textContent`); got != page.want {
					t.Fatalf("%s: shown as %q, want the text %q", page.url, got, page.want)
				}
			}
		}
		if v := eval[string](t, tab, `document.getElementById('main').innerText`); !strings.Contains(v, `<img src="x" id="xss-canned"`) {
			t.Fatalf("overview does not show the canned title as text: %s", v)
		}
	})

	t.Run("ErrorPage", func(t *testing.T) {
		adminGo(t, tab, base+"/admin/services/no-such-service", `document.getElementById('error-heading')`)
		checkAxe(t, tab, "error page")
	})

	t.Run("Audited", func(t *testing.T) {
		for _, want := range []struct{ action, target, detail string }{
			{"service.create", "billing", `"display_name"`},
			{"service.update", "billing", `"strategy.dispositions"`},
			{"canned.create", cannedTitle, `"service": "billing"`},
			{"user.create", "dana", `"services": ["billing"]`},
		} {
			rows := auditRows(t, m, want.action)
			if len(rows) != 1 || rows[0].User != "root" || rows[0].Target != want.target || !strings.Contains(rows[0].Details, want.detail) {
				t.Fatalf("%s: audit rows %+v", want.action, rows)
			}
		}
		for _, r := range auditRows(t, m, "%") {
			if strings.Contains(r.Details, "dana-secret-pw") || strings.Contains(r.Details, "root-password") {
				t.Fatalf("a password reached the audit log: %+v", r)
			}
		}
		adminGo(t, tab, base+"/admin/audit", `document.getElementById('audit-table')`)
		checkAxe(t, tab, "audit log")
		actions := eval[[]string](t, tab, `[...document.querySelectorAll('#audit-table .action')].map(e => e.textContent)`)
		for _, a := range []string{"user.create", "canned.create", "service.update", "service.create"} {
			if !slices.Contains(actions, a) {
				t.Fatalf("audit page lacks %s: %v", a, actions)
			}
		}
	})
}

// adminClient is an HTTP client that does not follow redirects, with the cookie of a session.
type adminClient struct {
	t      *testing.T
	base   string
	token  string
	csrf   string
	client *http.Client
}

func newAdminClient(t *testing.T, m *Main, u *agent.User) *adminClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &adminClient{t: t, base: m.URL(), client: &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if u != nil {
		var err error
		if c.token, c.csrf, err = m.Accounts.StartWebSession(context.Background(), *u); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *adminClient) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.token != "" {
		req.AddCookie(&http.Cookie{Name: "agentd_session", Value: c.token})
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *adminClient) post(path string, form url.Values) (*http.Response, string) {
	return c.do(http.MethodPost, path, form)
}

// TestAdminAccess checks who may use /admin and that forms without the session's CSRF token
// change nothing.
func TestAdminAccess(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	root := newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	ag := newAdminUser(t, m, "alex", "alex-password", agent.RoleAgent)
	sup := newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	admin := newAdminClient(t, m, &root)
	serviceCount := func() int {
		svcs, err := m.Agents.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(svcs)
	}
	initial := serviceCount()
	create := url.Values{"name": {"sales"}, "display_name": {"Sales"}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = slices.Clone(vs)
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}

	t.Run("SignedOutGoesToLogin", func(t *testing.T) {
		for _, path := range []string{"/admin", "/admin/services", "/admin/users/1", "/admin/audit"} {
			resp, _ := newAdminClient(t, m, nil).do(http.MethodGet, path, nil)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Fatalf("GET %s signed out: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	})

	t.Run("OtherRolesForbidden", func(t *testing.T) {
		for _, u := range []*agent.User{&ag, &sup} {
			c := newAdminClient(t, m, u)
			for _, path := range []string{"/admin", "/admin/services", "/admin/canned", "/admin/users", "/admin/audit", "/admin/services/default"} {
				if resp, _ := c.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s GET %s: %d", u.Username, path, resp.StatusCode)
				}
			}
			// With a valid CSRF token of their own session: still refused.
			if resp, _ := c.post("/admin/services", with(create, "_csrf", c.csrf)); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s POST: %d", u.Username, resp.StatusCode)
			}
		}
		if resp, _ := admin.do(http.MethodGet, "/admin", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin GET /admin: %d", resp.StatusCode)
		}
	})

	t.Run("ErrCSRF", func(t *testing.T) {
		other := newAdminClient(t, m, &root) // a second session of the same admin: another token
		for name, form := range map[string]url.Values{
			"missing":       create,
			"forged":        with(create, "_csrf", "forged-"+admin.csrf),
			"other session": with(create, "_csrf", other.csrf),
		} {
			resp, body := admin.post("/admin/services", form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not come from this site") {
				t.Fatalf("%s token: %d %s", name, resp.StatusCode, body)
			}
		}
		if serviceCount() != initial || len(auditRows(t, m, "service.%")) != 0 {
			t.Fatal("a refused form changed something")
		}
		resp, _ := admin.post("/admin/services", with(create, "_csrf", admin.csrf))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/services/sales?created=1" {
			t.Fatalf("with the token: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if serviceCount() != initial+1 {
			t.Fatal("the service was not created")
		}
	})

	t.Run("ErrInvalidService", func(t *testing.T) {
		for _, form := range []url.Values{
			{"name": {"Bad Name"}, "display_name": {"x"}},
			{"name": {"ok-name"}, "display_name": {""}},
			{"name": {"sales"}, "display_name": {"Sales again"}}, // taken
		} {
			resp, body := admin.post("/admin/services", with(form, "_csrf", admin.csrf))
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="form-error"`) {
				t.Fatalf("%v: %d", form, resp.StatusCode)
			}
		}
		if serviceCount() != initial+1 {
			t.Fatal("an invalid service was created")
		}
		// An unknown service is a 404 page, not a form.
		if resp, _ := admin.post("/admin/services/nope", url.Values{"_csrf": {admin.csrf}, "display_name": {"x"}}); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown service: %d", resp.StatusCode)
		}
	})

	t.Run("UnknownStrategyKeysKept", func(t *testing.T) {
		if err := m.DB.SetServiceStrategy(ctx, "sales", json.RawMessage(`{"welcome_notice": "Hi", "future_key": {"a": 1}}`)); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"_csrf": {admin.csrf}, "display_name": {"Sales team"}, "enabled": {"on"}, "welcome_notice": {"Hello"},
			"dispositions": {"Won\nLost"}}
		if resp, body := admin.post("/admin/services/sales", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("update: %d %s", resp.StatusCode, body)
		}
		si, st := serviceByName(t, m, "sales")
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(si.Strategy, &raw)
		if si.DisplayName != "Sales team" || st.WelcomeNotice != "Hello" || !slices.Equal(st.Dispositions, []string{"Won", "Lost"}) ||
			string(raw["future_key"]) != `{"a": 1}` {
			t.Fatalf("after update: %s %s", si.DisplayName, si.Strategy)
		}
		rows := auditRows(t, m, "service.update")
		if len(rows) != 1 || !strings.Contains(rows[0].Details, `"strategy.welcome_notice": {"new": "Hello", "old": "Hi"}`) ||
			strings.Contains(rows[0].Details, "future_key") {
			t.Fatalf("service.update audit: %+v", rows)
		}
	})

	t.Run("ErrDemoteOrDisableSelf", func(t *testing.T) {
		path := "/admin/users/" + strconv.FormatInt(root.ID, 10)
		for _, form := range []url.Values{
			{"display_name": {"Root"}, "role": {"agent"}, "capacity": {"3"}},
			{"display_name": {"Root"}, "role": {"admin"}, "capacity": {"3"}, "disabled": {"on"}},
		} {
			resp, body := admin.post(path, with(form, "_csrf", admin.csrf))
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "ask another admin") {
				t.Fatalf("%v: %d", form, resp.StatusCode)
			}
		}
		u, err := m.Accounts.User(ctx, root.ID)
		if err != nil || u.Role != agent.RoleAdmin || u.Disabled || u.DisplayName != root.DisplayName {
			t.Fatalf("root after refused changes: %+v %v", u, err)
		}
	})

	t.Run("EditAndDisableAgent", func(t *testing.T) {
		alex := newAdminClient(t, m, &ag)
		path := "/admin/users/" + strconv.FormatInt(ag.ID, 10)
		form := url.Values{"_csrf": {admin.csrf}, "display_name": {"Alex Agent"}, "role": {"supervisor"}, "capacity": {"0"},
			"services": {"sales", "default"}, "disabled": {"on"}, "new_password": {"a-brand-new-password"}}
		if resp, body := admin.post(path, form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("update: %d %s", resp.StatusCode, body)
		}
		u, err := m.Accounts.User(ctx, ag.ID)
		if err != nil || u.DisplayName != "Alex Agent" || u.Role != agent.RoleSupervisor || u.Capacity != 0 || !u.Disabled ||
			!slices.Equal(u.Services, []string{"default", "sales"}) {
			t.Fatalf("alex: %+v %v", u, err)
		}
		// Disabled: the open session ends, and the new password does not let alex in.
		if resp, _ := alex.do(http.MethodGet, "/console", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("disabled user's session still works: %d", resp.StatusCode)
		}
		if _, err := m.Accounts.Login(ctx, "alex", "a-brand-new-password", "test"); err == nil {
			t.Fatal("a disabled user signed in")
		}
		rows := auditRows(t, m, "user.update")
		if len(rows) != 1 || rows[0].Target != "alex" || !strings.Contains(rows[0].Details, `"password_changed": true`) ||
			strings.Contains(rows[0].Details, "a-brand-new-password") || !strings.Contains(rows[0].Details, `"role"`) {
			t.Fatalf("user.update audit: %+v", rows)
		}
	})

	t.Run("CannedDelete", func(t *testing.T) {
		resp, _ := admin.post("/admin/canned", url.Values{"_csrf": {admin.csrf}, "title": {"Hi"}, "body": {"Hello!"}, "service": {"0"}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(loc, "?created=1") {
			t.Fatalf("create: %d %s", resp.StatusCode, loc)
		}
		path := strings.TrimSuffix(loc, "?created=1")
		if resp, _ := admin.post(path+"/delete", url.Values{"_csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged delete: %d", resp.StatusCode)
		}
		if cs, _ := m.Agents.CannedResponses(ctx, 0, ""); len(cs) != 1 {
			t.Fatalf("after forged delete: %d responses", len(cs))
		}
		if resp, _ := admin.post(path+"/delete", url.Values{"_csrf": {admin.csrf}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if cs, _ := m.Agents.CannedResponses(ctx, 0, ""); len(cs) != 0 {
			t.Fatalf("after delete: %d responses", len(cs))
		}
		if rows := auditRows(t, m, "canned.delete"); len(rows) != 1 || rows[0].Target != "Hi" {
			t.Fatalf("canned.delete audit: %+v", rows)
		}
		// Empty title and text: shown again with both field errors.
		resp, body := admin.post("/admin/canned", url.Values{"_csrf": {admin.csrf}, "title": {" "}, "body": {""}, "service": {"0"}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="err-title"`) || !strings.Contains(body, `id="err-body"`) {
			t.Fatalf("empty canned response: %d", resp.StatusCode)
		}
	})
}

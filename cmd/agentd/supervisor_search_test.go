package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"agentd/agent"
	"agentd/chat"
)

// searchChats is the known data set of the search tests, built through the real services:
//   - Alice (default, olga): "My parcel tracking number is wrong"; CoBrowseSessionId CB-42, then
//     CB-77, then deleted; wrapped "Resolved"; CSAT 5.
//   - Bob (billing, pete): "Refund for invoice 1234 please, tracking the parcel"; Plan gold;
//     wrapped "Escalated"; CSAT 2.
//   - Carol (sales, nobody serves it: queued): a message full of syntax characters;
//     CoBrowseSessionId CB-420; the XSS name and UserData of the review tests.
type searchChats struct {
	alice, bob, carol string
	olga, pete        agent.User
}

const carolMessage = `hello parcels & 100% \ 'quote' | !bang (x) :* <-> ` + supXSSMessage

func buildSearchChats(t *testing.T, m *Main) searchChats {
	t.Helper()
	ctx := context.Background()
	var s searchChats
	for _, svc := range []string{"billing", "sales"} {
		if err := m.DB.EnsureService(ctx, svc, strings.ToUpper(svc[:1])+svc[1:], chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
	}
	st := agent.Strategy{Dispositions: []string{"Resolved", "Escalated"}, Survey: &agent.Survey{When: "ended"}}
	setStrategy(t, m, "default", st)
	setStrategy(t, m, "billing", st)
	s.olga = newAgent(t, m, "olga", 2)
	s.pete = newAgent(t, m, "pete", 2, "billing")
	ready(t, m, s.olga)
	ready(t, m, s.pete)
	finish := func(u agent.User, id, disposition, csat string) {
		t.Helper()
		if err := m.Agents.End(ctx, u, id); err != nil {
			t.Fatal(err)
		}
		if err := m.Agents.WrapUp(ctx, u, id, disposition, "notes"); err != nil {
			t.Fatal(err)
		}
		survey := strings.Trim(strings.Fields(readChat(t, m, id).UserData["SurveyURL"])[0], `"`)
		if err := m.Surveys.SubmitSurvey(ctx, survey[strings.LastIndex(survey, "/")+1:], map[string]string{"CSAT": csat}); err != nil {
			t.Fatal(err)
		}
	}

	c, id := acceptedChat(t, m, s.olga, map[string]any{"username": "Alice"})
	s.alice = id
	mustOK(t, c.do("send_message", map[string]any{"text": "My parcel tracking number is wrong"}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-42"}}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-77"}}))
	mustOK(t, c.do("delete_userdata", map[string]any{"key": "CoBrowseSessionId"}))
	if _, err := m.Agents.Send(ctx, s.olga, id, "console:a1", "Let me check that for you."); err != nil {
		t.Fatal(err)
	}
	finish(s.olga, id, "Resolved", "5")

	c, id = acceptedChat(t, m, s.pete, map[string]any{"username": "Bob", "service": "billing"})
	s.bob = id
	mustOK(t, c.do("send_message", map[string]any{"text": "Refund for invoice 1234 please, tracking the parcel"}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Plan": "gold"}}))
	finish(s.pete, id, "Escalated", "2")

	c, d := startSession(t, m, map[string]any{"username": supXSSName, "service": "sales"})
	s.carol = d.str("session_id")
	mustOK(t, c.do("send_message", map[string]any{"text": carolMessage}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-420", supXSSKey: supXSSValue}}))
	return s
}

var resultLink = regexp.MustCompile(`<td><a href="/supervisor/interactions/([0-9a-f-]{36})">`)

// searchPage gets /supervisor/search with the query and returns the status, the ids of the
// result rows in order, and the page.
func searchPage(t *testing.T, c *http.Client, base, query string) (int, []string, string) {
	t.Helper()
	resp, body := get(t, c, base+"/supervisor/search?"+query)
	var ids []string
	for _, m := range resultLink.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return resp.StatusCode, ids, body
}

// manyStarts lets one address start the chats of the paging and export tests.
func manyStarts(c *Config) { c.Customer.StartsPerMinute, c.Customer.StartBurst = 1000, 1000 }

func supervisorClient(t *testing.T, m *Main) *http.Client {
	t.Helper()
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	c := httpClient(t)
	signInAt(t, c, m.URL(), "sam", "sam-password")
	return c
}

// TestSupervisorSearch: every filter alone and combined against the known data set, the
// snippet of a text search (marked with elements, escaped), syntax characters in every field
// answered 200 or a documented 400 but never 500, and each bad value answered 400 with its
// message in the page.
func TestSupervisorSearch(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	s := buildSearchChats(t, m)
	c := supervisorClient(t, m)
	base := m.URL()
	today := time.Now().UTC().Format("2006-01-02")
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	cases := []struct {
		name  string
		query string
		want  []string // any order
	}{
		{"NoFilter", "", []string{s.alice, s.bob, s.carol}},
		{"TextWord", q("text", "parcel"), []string{s.alice, s.bob}},
		{"TextWordAnyCase", q("text", "PARCEL"), []string{s.alice, s.bob}},
		{"TextPrefix", q("text", "parc*"), []string{s.alice, s.bob, s.carol}},
		{"TextPhrase", q("text", `"tracking number"`), []string{s.alice}},
		{"TextPhraseOrder", q("text", `"number tracking"`), nil},
		{"TextWordsInOneMessage", q("text", "tracking parcel"), []string{s.alice, s.bob}},
		{"TextWordsNotInOneMessage", q("text", "parcel check"), nil},
		{"TextAgentsMessage", q("text", "check"), []string{s.alice}},
		{"TextNumber", q("text", "invoice 1234"), []string{s.bob}},
		{"TextPercent", q("text", "100%"), []string{s.carol}},
		{"TextQuote", q("text", "'quote'"), []string{s.carol}},
		{"TextNoMatch", q("text", "zebra"), nil},
		{"Key", q("key", "CoBrowseSessionId"), []string{s.alice, s.carol}},
		{"KeyValueEverHad", q("key", "CoBrowseSessionId", "value", "CB-42"), []string{s.alice}},
		{"KeyValueLater", q("key", "CoBrowseSessionId", "value", "CB-77"), []string{s.alice}},
		{"KeyValuePrefix", q("key", "CoBrowseSessionId", "value", "CB-42*"), []string{s.alice, s.carol}},
		{"KeyValueAnyPrefix", q("key", "CoBrowseSessionId", "value", "*"), []string{s.alice, s.carol}},
		{"KeyValueOtherKey", q("key", "Plan", "value", "CB-42"), nil},
		{"KeyPlan", q("key", "Plan", "value", "gold"), []string{s.bob}},
		{"KeyXSS", q("key", supXSSKey, "value", supXSSValue), []string{s.carol}},
		{"Service", q("service", "billing"), []string{s.bob}},
		{"ServiceSales", q("service", "sales"), []string{s.carol}},
		{"Agent", q("agent", "pete"), []string{s.bob}},
		{"AgentAnyCase", q("agent", "OLGA"), []string{s.alice}},
		{"FromToToday", q("from", today, "to", today), []string{s.alice, s.bob, s.carol}},
		{"FromTomorrow", q("from", tomorrow), nil},
		{"ToYesterday", q("to", yesterday), nil},
		{"FromDateTime", q("from", yesterday+"T00:00"), []string{s.alice, s.bob, s.carol}},
		{"StateQueued", q("state", "queued"), []string{s.carol}},
		{"StateWrapped", q("state", "wrapped"), []string{s.alice, s.bob}},
		{"Disposition", q("disposition", "resolved"), []string{s.alice}},
		{"CSATExact", q("csat", "5"), []string{s.alice}},
		{"CSATRange", q("csat", "1-3"), []string{s.bob}},
		{"CSATHigh", q("csat", "4-5"), []string{s.alice}},
		{"TextAndService", q("text", "parcel", "service", "default"), []string{s.alice}},
		{"TextServiceDate", q("text", "tracking", "service", "billing", "from", today, "to", today), []string{s.bob}},
		{"UserDataAndAgent", q("key", "CoBrowseSessionId", "agent", "olga"), []string{s.alice}},
		{"UserDataAndAgentNone", q("key", "CoBrowseSessionId", "agent", "pete"), nil},
		{"TextPrefixAndState", q("text", "parcel*", "state", "queued"), []string{s.carol}},
		{"Everything", q("text", `"tracking number"`, "key", "CoBrowseSessionId", "value", "CB*", "service", "default", "agent", "olga",
			"from", today, "to", today, "state", "wrapped", "disposition", "Resolved", "csat", "5"), []string{s.alice}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, ids, body := searchPage(t, c, base, tc.query)
			if status != http.StatusOK {
				t.Fatalf("%s: %d: %.500s", tc.query, status, body)
			}
			slices.Sort(ids)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("%s: got %v, want %v", tc.query, ids, want)
			}
		})
	}

	t.Run("SnippetAndColumns", func(t *testing.T) {
		_, ids, body := searchPage(t, c, base, q("text", "parcel*"))
		if len(ids) != 3 {
			t.Fatalf("ids %v", ids)
		}
		for _, want := range []string{`<mark>parcel</mark> tracking number is wrong`, `<mark>parcels</mark> &amp; 100%`,
			`<td>olga</td>`, `<td>Resolved</td>`, `<td>5</td>`, `<td>sales</td>`, `<td>queued</td>`,
			`>Matching message</th>`, `aria-sort="descending"><a href="/supervisor/search?dir=asc&amp;sort=started&amp;text=parcel%2A">Started</a>`,
			`href="/supervisor/search/export.csv?text=parcel%2A"`, "Eve &lt;b id=&#34;xss-name&#34;&gt;bold&lt;/b&gt;"} {
			if !strings.Contains(body, want) {
				t.Fatalf("the page lacks %s:\n%s", want, body)
			}
		}
		for _, raw := range []string{`<b id="xss-`, `<img id="xss-`, "\uE000", "\uE001"} {
			if strings.Contains(body, raw) {
				t.Fatalf("the page has %q", raw)
			}
		}
	})

	t.Run("SyntaxCharacters", func(t *testing.T) {
		hostile := []string{`&`, `|`, `!`, `:*`, `<->`, `(`, `)`, `\`, `'`, `''`, `"`, `""`, `*`, `**`, `a & b | !c`, `foo:*`, `foo:* & bar`,
			`'; DROP TABLE interactions; --`, `" OR 1=1 --`, `.*`, `[a-z]+`, `^$`, `(?i)x`, `%`, `_`, `\%`, `a\'b`, `parcel)`, `(parcel`,
			`!parcel`, `parcel<->tracking`, `parcel:A`, `"unclosed phrase`, `"" parcel`, "\x00", `<script>alert(1)</script>`, "🙂", "κόσμος*"}
		for _, h := range hostile {
			for _, field := range []string{"text", "key", "value", "disposition"} {
				v := url.Values{field: {h}}
				if field == "value" {
					v.Set("key", "CoBrowseSessionId")
				}
				status, _, body := searchPage(t, c, base, v.Encode())
				if status == http.StatusBadRequest && field == "text" && strings.Contains(body, "Text has no words to search for") {
					continue
				}
				if status == http.StatusBadRequest && h == "\x00" && strings.Contains(body, "The search fields cannot hold control characters or invalid UTF-8") {
					continue
				}
				if status != http.StatusOK {
					t.Fatalf("%s=%q: %d: %.400s", field, h, status, body)
				}
				if strings.Contains(body, "<script>alert(1)") {
					t.Fatalf("%s=%q echoed unescaped", field, h)
				}
			}
		}
		// Syntax characters around a real word still find it, as text.
		for _, h := range []string{`parcel)`, `(parcel`, `!parcel`, `parcel:`, `'parcel'`, `parcel&`, `"parcel"`, `parcel\`} {
			_, ids, body := searchPage(t, c, base, q("text", h))
			slices.Sort(ids)
			want := []string{s.alice, s.bob}
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("text %q: got %v, want Alice and Bob: %.300s", h, ids, body)
			}
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		long := strings.Repeat("x", 201)
		bad := []struct{ query, msg string }{
			{q("from", "yesterday"), `From is a date such as 2026-01-31 (or 2026-01-31T14:30), not &#34;yesterday&#34;.`},
			{q("to", "2026-13-01"), `To is a date such as`},
			{q("from", tomorrow, "to", yesterday), "From is after To."},
			{q("state", "bogus"), "State is one of queued, offered, active, ended, wrapped, abandoned, not &#34;bogus&#34;."},
			{q("csat", "6"), "CSAT is a score from 1 to 5, or a range such as 4-5, not &#34;6&#34;."},
			{q("csat", "0"), "CSAT is a score from 1 to 5"},
			{q("csat", "5-4"), "CSAT is a score from 1 to 5"},
			{q("csat", "good"), "CSAT is a score from 1 to 5"},
			{q("text", long), "Text is at most 200 characters."},
			{q("text", "& | !"), "Text has no words to search for: use letters or digits."},
			{q("text", "a b c d e f g h i j k"), "Text has at most 10 words or phrases."},
			{q("value", "CB-42"), "A UserData value needs a UserData key."},
			{q("key", long), "UserData key is at most 200 characters."},
			{q("key", "k", "value", long), "UserData value is at most 200 characters."},
			{q("disposition", long), "Disposition is at most 200 characters."},
			{q("service", "nope"), "There is no service &#34;nope&#34;."},
			{q("agent", "nobody"), "There is no agent &#34;nobody&#34;."},
			{q("sort", "bogus"), "Results sort by customer, service, started, ended, duration, state, disposition or csat"},
			{q("dir", "up"), "The sort direction is asc or desc."},
			{q("page", "0"), "Page is a number from 1 to 200; export the results for more."},
			{q("page", "201"), "Page is a number from 1 to 200"},
			{q("text", "x", "junk", strings.Repeat("y", 5000)), "The search is too long: at most 4096 bytes."},
			{q("key", "a\tb"), "The search fields cannot hold control characters or invalid UTF-8 (key)."},
			{"disposition=%FF", "The search fields cannot hold control characters or invalid UTF-8 (disposition)."},
		}
		for _, b := range bad {
			status, ids, body := searchPage(t, c, base, b.query)
			if status != http.StatusBadRequest || !strings.Contains(body, `role="alert" id="search-error">`+b.msg) || len(ids) != 0 {
				t.Fatalf("%.80s: %d, want 400 with %q: %.600s", b.query, status, b.msg, body)
			}
			if !strings.Contains(body, `<form method="get" action="/supervisor/search"`) {
				t.Fatalf("%.80s: the error page has no search form", b.query)
			}
			resp, body := get(t, c, base+"/supervisor/search/export.csv?"+b.query)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("export %.80s: %d, want 400: %.300s", b.query, resp.StatusCode, body)
			}
		}
	})
}

// TestSupervisorSearchRoles: an agent gets 403 on the search and both exports, an anonymous
// visitor is sent to sign in, an admin may search; nothing is audited for the refused export.
func TestSupervisorSearchRoles(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAgent(t, m, "olga", 2)
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	base := m.URL()
	routes := []string{"/supervisor/search", "/supervisor/search?text=x", "/supervisor/search/export.csv", "/supervisor/search/export.json"}
	ag := httpClient(t)
	signInAt(t, ag, base, "olga", "password-olga")
	anon := httpClient(t)
	admin := httpClient(t)
	signInAt(t, admin, base, "root", "root-password")
	for _, r := range routes {
		if resp, body := get(t, ag, base+r); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("agent %s: %d, want 403: %.200s", r, resp.StatusCode, body)
		}
		if resp, _ := get(t, anon, base+r); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Fatalf("anonymous %s: %d to %q", r, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, body := get(t, admin, base+r); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin %s: %d: %.200s", r, resp.StatusCode, body)
		}
	}
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.user_id
		WHERE a.action = 'supervisor.export' AND u.username = 'olga'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("agent's refused exports audited: %d %v", n, err)
	}
}

// TestSupervisorSearchPaging: 53 chats page as 50 and 3 with Next and Previous, sorted by any
// column both ways (aria-sort on the sorted header), the default newest first.
func TestSupervisorSearchPaging(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), manyStarts)
	var ids []string // in creation order
	for i := range 53 {
		_, d := startSession(t, m, map[string]any{"username": "P" + string(rune('A'+i/26)) + string(rune('a'+i%26))})
		ids = append(ids, d.str("session_id"))
	}
	c := supervisorClient(t, m)
	base := m.URL()
	status, page1, body := searchPage(t, c, base, "")
	if status != http.StatusOK || len(page1) != 50 {
		t.Fatalf("page 1: %d, %d rows", status, len(page1))
	}
	newest := slices.Clone(ids)
	slices.Reverse(newest)
	if !slices.Equal(page1, newest[:50]) {
		t.Fatal("the default order is not newest first")
	}
	if !strings.Contains(body, `<a href="/supervisor/search?page=2" rel="next">Next</a>`) || strings.Contains(body, ">Previous<") {
		t.Fatalf("page 1 links: %s", body)
	}
	_, page2, body := searchPage(t, c, base, "page=2")
	if !slices.Equal(page2, newest[50:]) || !strings.Contains(body, `<a href="/supervisor/search" rel="prev">Previous</a>`) || strings.Contains(body, ">Next<") {
		t.Fatalf("page 2: %v: %s", page2, body)
	}
	_, asc, body := searchPage(t, c, base, "sort=customer&dir=asc")
	if !slices.Equal(asc, ids[:50]) || !strings.Contains(body, `aria-sort="ascending"><a href="/supervisor/search?dir=desc&amp;sort=customer">Customer</a>`) {
		t.Fatalf("customer ascending: %s", body)
	}
	_, desc, body := searchPage(t, c, base, "sort=customer&dir=desc&page=2")
	if !slices.Equal(desc, []string{ids[2], ids[1], ids[0]}) || !strings.Contains(body, `aria-sort="descending"`) ||
		!strings.Contains(body, `href="/supervisor/search?dir=desc&amp;page=1&amp;sort=customer"`) && !strings.Contains(body, `href="/supervisor/search?dir=desc&amp;sort=customer" rel="prev"`) {
		t.Fatalf("customer descending page 2: %v: %s", desc, body)
	}
	for _, sort := range agent.SearchSorts {
		for _, dir := range []string{"asc", "desc"} {
			if status, got, body := searchPage(t, c, base, "sort="+string(sort)+"&dir="+dir); status != http.StatusOK || len(got) != 50 {
				t.Fatalf("sort %s %s: %d %d: %.300s", sort, dir, status, len(got), body)
			}
		}
	}
}

func exportAudits(t *testing.T, m *Main) []map[string]any {
	t.Helper()
	rows, err := m.DB.Pool.Query(context.Background(), `SELECT details FROM audit_log WHERE action = 'supervisor.export' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var d map[string]any
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestSupervisorSearchExport: CSV and JSON exports carry the whole result of the filters (not a
// page), as attachments, with X-Total-Count, and each writes its supervisor.export audit row with
// the filters, format and row count.
func TestSupervisorSearchExport(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	s := buildSearchChats(t, m)
	// More than a page: 60 queued chats in sales, with a name that looks like a formula.
	if _, err := m.DB.Pool.Exec(context.Background(), `INSERT INTO interactions (service_id, secure_key_hash, start_token_hash, customer_name)
		SELECT (SELECT id FROM services WHERE name = 'sales'), '\x00', sha256(('export' || g)::bytea), '=SUM(A1)' FROM generate_series(1, 60) g`); err != nil {
		t.Fatal(err)
	}
	c := supervisorClient(t, m)
	base := m.URL()

	resp, body := get(t, c, base+"/supervisor/search/export.csv?text=parcel")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="interactions-`) ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || resp.Header.Get("X-Total-Count") != "2" {
		t.Fatalf("csv: %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "id,customer,service,agents,started,ended,duration_seconds,state,disposition,csat" {
		t.Fatalf("csv: %q", recs)
	}
	byID := map[string][]string{}
	for _, r := range recs[1:] {
		byID[r[0]] = r
	}
	if a := byID[s.alice]; a == nil || a[1] != "Alice" || a[2] != "default" || a[3] != "olga" || a[5] == "" || a[7] != "wrapped" || a[8] != "Resolved" || a[9] != "5" {
		t.Fatalf("Alice's row: %q", a)
	}
	if b := byID[s.bob]; b == nil || b[1] != "Bob" || b[2] != "billing" || b[3] != "pete" || b[8] != "Escalated" || b[9] != "2" {
		t.Fatalf("Bob's row: %q", b)
	}

	// The whole result, past a page; a formula-looking name is defused.
	resp, body = get(t, c, base+"/supervisor/search/export.csv?service=sales&sort=customer&dir=asc")
	recs, err = csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || resp.Header.Get("X-Total-Count") != "61" || len(recs) != 62 {
		t.Fatalf("sales csv: %v %s %d rows", err, resp.Header.Get("X-Total-Count"), len(recs))
	}
	if recs[1][1] != "'=SUM(A1)" {
		t.Fatalf("formula cell: %q", recs[1][1])
	}

	resp, body = get(t, c, base+"/supervisor/search/export.json?key=CoBrowseSessionId")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		!strings.HasSuffix(resp.Header.Get("Content-Disposition"), `.json"`) {
		t.Fatalf("json: %d %v", resp.StatusCode, resp.Header)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatalf("json: %v: %s", err, body)
	}
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[r["id"].(string)] = r
	}
	if len(rows) != 2 || got[s.alice]["customer"] != "Alice" || got[s.carol]["customer"] != supXSSName || got[s.carol]["ended"] != nil ||
		got[s.alice]["duration_seconds"] == nil || got[s.carol]["state"] != "queued" || len(got[s.alice]["agents"].([]any)) != 1 {
		t.Fatalf("json rows: %v", rows)
	}
	resp, body = get(t, c, base+"/supervisor/search/export.json?text=zebra")
	if err := json.Unmarshal([]byte(body), &rows); err != nil || len(rows) != 0 || resp.Header.Get("X-Total-Count") != "0" {
		t.Fatalf("empty json: %v %q", err, body)
	}

	audits := exportAudits(t, m)
	if len(audits) != 4 {
		t.Fatalf("export audit rows: %v", audits)
	}
	first := audits[0]
	if first["format"] != "csv" || first["rows"] != float64(2) || first["filters"].(map[string]any)["text"] != "parcel" {
		t.Fatalf("first audit row: %v", first)
	}
	if audits[2]["format"] != "json" || audits[2]["filters"].(map[string]any)["key"] != "CoBrowseSessionId" || audits[2]["rows"] != float64(2) {
		t.Fatalf("json audit row: %v", audits[2])
	}
	var who string
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT u.username FROM audit_log a JOIN users u ON u.id = a.user_id
		WHERE a.action = 'supervisor.export' LIMIT 1`).Scan(&who); err != nil || who != "sam" {
		t.Fatalf("audit row's user: %q %v", who, err)
	}
}

// exportRunning counts the backends of this database running an export's query (a parallel
// plan has workers running it too).
func exportRunning(t *testing.T, m *Main) int {
	t.Helper()
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
		AND query LIKE '%LEFT JOIN survey_responses r ON r.interaction_id = i.id%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func exportGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("supervisor.streamExport"))
}

// TestSupervisorSearchExportCancel: a client that goes away midway through a huge export stops
// it: within a bounded wait no backend runs its query and no goroutine is still exporting.
// manyEndedChats inserts n ended interactions ("Customer 1" … newest first) in commits of 20,000:
// a write transaction open for long holds back every event stream of the cluster (the event
// horizon, docs/events.md), other tests' included.
func manyEndedChats(t *testing.T, m *Main, n int) {
	t.Helper()
	for from := 1; from <= n; from += 20000 {
		if _, err := m.DB.Pool.Exec(context.Background(), `INSERT INTO interactions (service_id, state, secure_key_hash, start_token_hash, customer_name, created_at)
			SELECT 1, 'ended', '\x00', sha256(g::text::bytea), 'Customer ' || g, now() - g * interval '1 second'
			FROM generate_series($1::int, least($1::int + 19999, $2::int)) g`, from, n); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSupervisorSearchExportCancel(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	// 150,000 interactions: far more than the network buffers hold.
	manyEndedChats(t, m, 150000)
	c := supervisorClient(t, m)
	c.Timeout = 0
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, m.URL()+"/supervisor/search/export.json?sort=customer", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total-Count") != "150000" {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	buf := make([]byte, 256<<10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	// (A parallel plan runs the query in more than one backend.)
	if exportGoroutines() == 0 || exportRunning(t, m) == 0 {
		t.Fatal("no export running after the first 256 KiB: the test cannot see a cancel")
	}
	cancel()
	resp.Body.Close()
	t0 := time.Now()
	defer func() { t.Logf("stopped %v after the cancel", time.Since(t0)) }()
	waitFor(t, "the cancelled export to stop", func() bool { return exportRunning(t, m) == 0 && exportGoroutines() == 0 })
	if a := exportAudits(t, m); len(a) != 1 || a[0]["rows"] != float64(150000) {
		t.Fatalf("audit: %v", a)
	}
}

// TestBrowserSupervisorSearch: a customer on chat-service.js chats with an agent in the console,
// each in its own browser context; a supervisor in a third finds the chat by its text and by its
// CoBrowseSessionId, opens its review from the result, and exports it as CSV: the download
// arrives and holds the chat. The search page passes axe and shows hostile strings in every
// field it shows (name, disposition, snippet, UserData in the form) as text.
func TestBrowserSupervisorSearch(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/shop": seedFlow})
	m := startNode(t, db, func(c *Config) {
		c.Addr = addr
		c.allowedOrigins = site.URL
		c.Router.RouteInterval = 100 * time.Millisecond
	})
	newAgent(t, m, "alice", 3)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	b := newBrowser(t)
	agentTab, customer, sup := newTab(t, b), newTab(t, b), newTab(t, b)

	consoleFor(t, agentTab, m.URL(), "alice")
	click(t, agentTab, `#presence button[data-state=ready]`)
	poll(t, agentTab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)
	browse(t, customer, chromedp.Navigate(site.URL+"/shop"))
	poll(t, customer, "customer session", `window.ready === true`)
	id := eval[string](t, customer, `window.session.sessionId`)
	poll(t, agentTab, "offer", `!!document.querySelector('#offers button[data-cmd=accept]')`)
	click(t, agentTab, `#offers button[data-cmd=accept]`)
	poll(t, customer, "agent connected", `window.log.some(l => l.kind === 'agentConnected')`)
	eval[bool](t, customer, `new Promise(r => window.session.sendMessage('My hovercraft is full of eels <b id="xss-search">x</b>').done(() => r(true)))`)
	eval[bool](t, customer, `new Promise(r => window.session.updateUserData({CoBrowseSessionId: 'CB-9001'}).done(() => r(true)))`)
	poll(t, agentTab, "customer message", `document.getElementById('transcript-`+id+`')?.textContent.includes('hovercraft')`)

	dir := t.TempDir()
	if _, err := chromedp.Call(sup, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow,
		BrowserContextID: chromedp.FromContext(sup).BrowserContextID, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	signIn(t, sup, m.URL(), "sam", "sam-password")
	poll(t, sup, "supervisor home", `location.pathname === '/supervisor'`)
	click(t, sup, `a[href="/supervisor/search"]`)
	poll(t, sup, "search page", `location.pathname === '/supervisor/search' && !!document.getElementById('search-form')`)
	checkAxe(t, sup, "/supervisor/search")

	// By text: a prefix and a word.
	browse(t, sup, chromedp.SendKeys(`#search-text`, "hovercr* eels"), chromedp.Click(`#search-form button[type=submit]`))
	poll(t, sup, "text result", `location.search.includes('text=') && document.querySelectorAll('#results-table tbody tr').length === 1 &&
		document.querySelector('#results-table tbody a').getAttribute('href') === '/supervisor/interactions/`+id+`' &&
		document.querySelector('#results-table mark')?.textContent === 'hovercraft' &&
		!document.getElementById('xss-search')`)
	checkAxe(t, sup, "/supervisor/search with results")

	// By UserData.
	browse(t, sup, chromedp.Navigate(m.URL()+"/supervisor/search"))
	poll(t, sup, "empty form", `!!document.getElementById('search-key')`)
	browse(t, sup, chromedp.SendKeys(`#search-key`, "CoBrowseSessionId"), chromedp.SendKeys(`#search-value`, "CB-9001"),
		chromedp.Click(`#search-form button[type=submit]`))
	poll(t, sup, "userdata result", `location.search.includes('key=CoBrowseSessionId') && document.querySelectorAll('#results-table tbody tr').length === 1`)

	// Export CSV: the progress line ends with the row count, the file arrives with the chat.
	click(t, sup, `a[data-export=csv]`)
	poll(t, sup, "export done", `document.getElementById('export-progress').textContent.startsWith('Export done: 1 rows, ') &&
		document.getElementById('export-cancel').hidden`)
	var file string
	waitFor(t, "the CSV download", func() bool {
		names, _ := filepath.Glob(filepath.Join(dir, "interactions-*.csv"))
		if len(names) == 1 {
			raw, _ := os.ReadFile(names[0])
			file = string(raw)
		}
		return strings.Contains(file, id)
	})
	recs, err := csv.NewReader(strings.NewReader(file)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != id || recs[1][3] != "alice" || recs[1][7] != "active" {
		t.Fatalf("downloaded csv: %v %q", err, recs)
	}

	// Hostile strings in every field the search shows (customer name, disposition, the snippet
	// of the message, UserData key and value echoed in the form) are text.
	const xssDisp = `<b id="xss-disp">d</b>`
	if _, err := m.DB.Pool.Exec(context.Background(), `WITH i AS (
			INSERT INTO interactions (service_id, state, secure_key_hash, start_token_hash, customer_name, disposition)
			VALUES (1, 'wrapped', '\x00', '\x01', $1, $2) RETURNING id),
		t AS (INSERT INTO transcript_events (interaction_id, idx, kind, text) SELECT id, 0, 'message', $3 FROM i)
		INSERT INTO userdata_history (interaction_id, seq, key, op, new_value, owner, visible, was_visible)
		SELECT id, 1, $4, 'set', to_jsonb($5::text), 'client', true, false FROM i`,
		supXSSName, xssDisp, "zeppelin <b id=\"xss-snippet\">zeppelin</b> "+supXSSMessage, supXSSKey, supXSSValue); err != nil {
		t.Fatal(err)
	}
	hostile := url.Values{"text": {"zeppelin"}, "key": {supXSSKey}, "value": {supXSSValue}, "disposition": {xssDisp}}
	browse(t, sup, chromedp.Navigate(m.URL()+"/supervisor/search?"+hostile.Encode()))
	poll(t, sup, "hostile strings as text", `document.querySelectorAll('#results-table tbody tr').length === 1 &&
		document.querySelector('#results-table tbody a').textContent === `+jsString(supXSSName)+` &&
		document.querySelector('#results-table tbody').textContent.includes(`+jsString(xssDisp)+`) &&
		document.querySelector('#results-table mark')?.textContent === 'zeppelin' &&
		document.getElementById('search-key').value === `+jsString(supXSSKey)+` &&
		document.getElementById('search-value').value === `+jsString(supXSSValue)+` &&
		!document.querySelector('[id^="xss-"]') && !window.pwned`)
	browse(t, sup, chromedp.Navigate(m.URL()+"/supervisor/search?key=CoBrowseSessionId&value=CB-9001"))
	poll(t, sup, "userdata result again", `document.querySelectorAll('#results-table tbody tr').length === 1`)

	// The review, from the result.
	click(t, sup, `#results-table tbody a`)
	poll(t, sup, "review", `location.pathname === '/supervisor/interactions/`+id+`' &&
		document.getElementById('transcript').textContent.includes('hovercraft') &&
		document.getElementById('userdata').textContent.includes('CB-9001') && !document.getElementById('xss-search')`)
}

// TestBrowserSupervisorSearchExportCancel: a large export shows its progress (rows of the total)
// and "Cancel" stops it: the page says so, and within a bounded wait no backend runs its query
// and no goroutine is still exporting.
func TestBrowserSupervisorSearchExportCancel(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	manyEndedChats(t, m, 200000)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	tab := newTab(t, newBrowser(t))
	signIn(t, tab, m.URL(), "sam", "sam-password")
	poll(t, tab, "supervisor home", `location.pathname === '/supervisor'`)
	browse(t, tab, chromedp.Navigate(m.URL()+"/supervisor/search?sort=customer&dir=asc"))
	poll(t, tab, "results", `document.querySelectorAll('#results-table tbody tr').length === 50`)
	click(t, tab, `a[data-export=json]`)
	// Cancel as soon as the progress shows rows arriving, in the same turn of the page.
	poll(t, tab, "progress, then Cancel", `(() => {
		const p = document.getElementById('export-progress').textContent;
		if (!/^Exporting: [0-9]+ of 200000 rows, /.test(p) || document.getElementById('export-cancel').hidden) return false;
		document.getElementById('export-cancel').click();
		return true;
	})()`)
	poll(t, tab, "cancelled", `document.getElementById('export-progress').textContent === 'Export cancelled.' && document.getElementById('export-cancel').hidden`)
	waitFor(t, "the cancelled export to stop", func() bool { return exportRunning(t, m) == 0 && exportGoroutines() == 0 })
	if a := exportAudits(t, m); len(a) != 1 || a[0]["format"] != "json" || a[0]["rows"] != float64(200000) {
		t.Fatalf("audit: %v", a)
	}
}

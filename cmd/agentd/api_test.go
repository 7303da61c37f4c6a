package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"agentd/agent"
	"agentd/notify"
	"agentd/postgres"
	"agentd/userdata"
	"agentd/web/api"
)

// apiToken creates an API token on m's database and returns its secret.
func apiToken(t testing.TB, m *Main, name, scopes, username string) string {
	t.Helper()
	sc, err := notify.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := m.Tokens.CreateToken(context.Background(), name, sc, username)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// apiResponse is an API answer: status, headers and the JSON body.
type apiResponse struct {
	status int
	header http.Header
	raw    []byte
	body   frame
}

func (r apiResponse) errCode() string { return r.body.str("error", "code") }

// apiCall calls the API with token (none when empty) and a body (JSON-encoded unless it is a
// string or []byte, sent as is).
func apiCall(t testing.TB, m *Main, method, path, token string, body any) apiResponse {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, m.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.ContentLength > 64<<10 {
		// A body the node refuses unread: it answers before the client sends it, where
		// otherwise the client could be reset while still writing.
		req.Header.Set("Expect", "100-continue")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResponse{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
		}
	}
	return out
}

// wantAPIError checks an error answer: status, code, a description, and the one shape.
func wantAPIError(t testing.TB, r apiResponse, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code || r.body.str("error", "description") == "" {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.raw)
	}
	if len(r.body) != 1 {
		t.Fatalf("error answer has more than the error: %s", r.raw)
	}
}

// apiWorld is a node with two agents, each with an accepted chat, and tokens.
type apiWorld struct {
	m                  *Main
	alice, bob         agent.User
	aliceChat, bobChat string
	aliceCustomer      *client
	full, readOnly     string // tokens: read+write, read
	aliceToken         string // read+write, bound to alice
}

func newAPIWorld(t *testing.T, configure ...func(*Config)) *apiWorld {
	t.Helper()
	m := startNode(t, newDB(t), append([]func(*Config){func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond }}, configure...)...)
	w := &apiWorld{m: m, alice: newAgent(t, m, "alice", 1), bob: newAgent(t, m, "bob", 1)}
	ready(t, m, w.alice)
	var data frame
	w.aliceCustomer, data = startSession(t, m, map[string]any{"username": "Carol"})
	w.aliceChat = data.str("session_id")
	acceptOffer(t, m, w.alice, w.aliceChat)
	ready(t, m, w.bob)
	_, data = startSession(t, m, map[string]any{"username": "Dave"})
	w.bobChat = data.str("session_id")
	acceptOffer(t, m, w.bob, w.bobChat)
	w.full = apiToken(t, m, "crm", "read,write", "")
	w.readOnly = apiToken(t, m, "reporting", "read", "")
	w.aliceToken = apiToken(t, m, "alice-plugin", "read,write", "alice")
	return w
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	revoked := apiToken(t, m, "old", "read,write", "")
	if err := m.Tokens.RevokeToken(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{
		"ErrNoToken":       "",
		"ErrUnknownToken":  "agd_" + strings.Repeat("x", 43),
		"ErrRevokedToken":  revoked,
		"ErrNotAgentToken": "hunter2",
	} {
		t.Run(name, func(t *testing.T) {
			r := apiCall(t, m, "GET", "/api/v1/interactions", token, nil)
			wantAPIError(t, r, http.StatusUnauthorized, "unauthorized")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("ErrBasicScheme", func(t *testing.T) {
		req, _ := http.NewRequest("GET", m.URL()+"/api/v1/agents", nil)
		req.SetBasicAuth("crm", w.full)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("basic auth: %d", res.StatusCode)
		}
	})
	t.Run("ErrTokenInURL", func(t *testing.T) {
		// Refused even with a valid header too: the URL has leaked it to every log on the way.
		for _, q := range []string{"?token=" + url.QueryEscape(w.full), "?access_token=x", "?state=" + url.QueryEscape(w.full)} {
			r := apiCall(t, m, "GET", "/api/v1/interactions"+q, w.full, nil)
			wantAPIError(t, r, http.StatusUnauthorized, "token_in_url")
		}
	})
	t.Run("ErrMissingScope", func(t *testing.T) {
		r := apiCall(t, m, "PUT", "/api/v1/interactions/"+w.aliceChat+"/userdata", w.readOnly, map[string]any{"userdata": map[string]any{"CrmId": "1"}})
		wantAPIError(t, r, http.StatusForbidden, "insufficient_scope")
		r = apiCall(t, m, "POST", "/api/v1/interactions/"+w.aliceChat+"/notices", w.readOnly, map[string]any{"to": "agent", "payload": map[string]any{"a": 1}})
		wantAPIError(t, r, http.StatusForbidden, "insufficient_scope")
		r = apiCall(t, m, "DELETE", "/api/v1/interactions/"+w.aliceChat+"/userdata/CrmId", w.readOnly, nil)
		wantAPIError(t, r, http.StatusForbidden, "insufficient_scope")
		writeOnly := apiToken(t, m, "writer", "write", "")
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/agents", writeOnly, nil), http.StatusForbidden, "insufficient_scope")
	})
	t.Run("OK_ReadScope", func(t *testing.T) {
		if r := apiCall(t, m, "GET", "/api/v1/agents", w.readOnly, nil); r.status != http.StatusOK {
			t.Fatalf("read token: %d %s", r.status, r.raw)
		}
	})
	t.Run("OK_DocumentWithoutToken", func(t *testing.T) {
		r := apiCall(t, m, "GET", "/api/v1/openapi.json", "", nil)
		if r.status != http.StatusOK || r.body.str("openapi") != "3.1.0" {
			t.Fatalf("openapi.json: %d %.200s", r.status, r.raw)
		}
	})
}

func TestAPIUserBoundToken(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	t.Run("OK_OwnChat", func(t *testing.T) {
		r := apiCall(t, m, "GET", "/api/v1/interactions/"+w.aliceChat, w.aliceToken, nil)
		if r.status != http.StatusOK || r.body.str("id") != w.aliceChat {
			t.Fatalf("own chat: %d %s", r.status, r.raw)
		}
	})
	t.Run("ErrOtherAgentsChat", func(t *testing.T) {
		for _, p := range []string{"", "/userdata/history"} {
			wantAPIError(t, apiCall(t, m, "GET", "/api/v1/interactions/"+w.bobChat+p, w.aliceToken, nil), http.StatusNotFound, "interaction_not_found")
		}
		r := apiCall(t, m, "PUT", "/api/v1/interactions/"+w.bobChat+"/userdata", w.aliceToken, map[string]any{"userdata": map[string]any{"X": "1"}})
		wantAPIError(t, r, http.StatusNotFound, "interaction_not_found")
		r = apiCall(t, m, "POST", "/api/v1/interactions/"+w.bobChat+"/notices", w.aliceToken, map[string]any{"to": "agent", "payload": map[string]any{"a": 1}})
		wantAPIError(t, r, http.StatusNotFound, "interaction_not_found")
		if v := udValue(m, w.bobChat, "X"); v != "" {
			t.Fatalf("alice's token wrote to bob's chat: %q", v)
		}
		// The same answer as an interaction that does not exist: nothing tells them apart.
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/interactions/00000000-0000-4000-8000-000000000000", w.aliceToken, nil), http.StatusNotFound, "interaction_not_found")
	})
	t.Run("OK_ListOnlyOwn", func(t *testing.T) {
		r := apiCall(t, m, "GET", "/api/v1/interactions", w.aliceToken, nil)
		ids := listIDs(t, r)
		if len(ids) != 1 || ids[0] != w.aliceChat {
			t.Fatalf("alice's token lists %v", ids)
		}
	})
}

func listIDs(t testing.TB, r apiResponse) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	var ids []string
	for _, it := range r.body["interactions"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func TestAPIReads(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	mustOK(t, w.aliceCustomer.do("send_message", map[string]any{"text": "Where is my order?"}))
	mustOK(t, w.aliceCustomer.do("update_userdata", map[string]any{"user_data": map[string]any{"OrderId": "A-17"}}))

	t.Run("OK_Interaction", func(t *testing.T) {
		r := apiCall(t, m, "GET", "/api/v1/interactions/"+w.aliceChat, w.full, nil)
		if r.status != http.StatusOK || r.body.str("state") != "active" || r.body.str("customer_name") != "Carol" || r.body.str("service") != "default" {
			t.Fatalf("interaction: %d %s", r.status, r.raw)
		}
		if !strings.Contains(string(r.raw), "Where is my order?") || len(r.body["parties"].([]any)) < 2 {
			t.Fatalf("transcript or parties missing: %s", r.raw)
		}
		ud := r.body["userdata"].([]any)
		found := false
		for _, e := range ud {
			e := e.(map[string]any)
			if e["key"] == "OrderId" && e["value"] == "A-17" && e["owner"] == "client" {
				found = true
			}
		}
		if !found {
			t.Fatalf("userdata: %v", ud)
		}
		if agents := r.body["agents"].([]any); len(agents) != 1 || agents[0] != "alice" {
			t.Fatalf("agents %v", agents)
		}
	})
	t.Run("OK_Filters", func(t *testing.T) {
		if ids := listIDs(t, apiCall(t, m, "GET", "/api/v1/interactions?agent=bob", w.full, nil)); len(ids) != 1 || ids[0] != w.bobChat {
			t.Fatalf("agent=bob: %v", ids)
		}
		if ids := listIDs(t, apiCall(t, m, "GET", "/api/v1/interactions?state=active&service=default", w.full, nil)); len(ids) != 2 {
			t.Fatalf("state=active: %v", ids)
		}
		if ids := listIDs(t, apiCall(t, m, "GET", "/api/v1/interactions?state=wrapped", w.full, nil)); len(ids) != 0 {
			t.Fatalf("state=wrapped: %v", ids)
		}
		future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
		if ids := listIDs(t, apiCall(t, m, "GET", "/api/v1/interactions?updated_since="+future, w.full, nil)); len(ids) != 0 {
			t.Fatalf("updated_since future: %v", ids)
		}
		past := url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))
		if ids := listIDs(t, apiCall(t, m, "GET", "/api/v1/interactions?updated_since="+past, w.full, nil)); len(ids) != 2 {
			t.Fatalf("updated_since past: %v", ids)
		}
	})
	t.Run("ErrBadQuery", func(t *testing.T) {
		for q, code := range map[string]string{
			"state=sleeping":          "invalid_argument",
			"limit=0":                 "invalid_argument",
			"limit=201":               "invalid_argument",
			"limit=ten":               "invalid_argument",
			"updated_since=monday":    "invalid_argument",
			"cursor=not-a-cursor!":    "invalid_cursor",
			"cursor=bm90LWEtY3Vyc29y": "invalid_cursor",
		} {
			wantAPIError(t, apiCall(t, m, "GET", "/api/v1/interactions?"+q, w.full, nil), http.StatusBadRequest, code)
		}
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/interactions/42", w.full, nil), http.StatusBadRequest, "invalid_id")
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/interactions/'%20OR%201=1--", w.full, nil), http.StatusBadRequest, "invalid_id")
	})
	t.Run("OK_Agents", func(t *testing.T) {
		r := apiCall(t, m, "GET", "/api/v1/agents", w.full, nil)
		if r.status != http.StatusOK {
			t.Fatalf("agents: %d %s", r.status, r.raw)
		}
		var alice map[string]any
		for _, a := range r.body["agents"].([]any) {
			if a.(map[string]any)["username"] == "alice" {
				alice = a.(map[string]any)
			}
		}
		if alice == nil || alice["state"] != "ready" || alice["load"] != 1.0 || alice["capacity"] != 1.0 || alice["display_name"] != "Agent alice" {
			t.Fatalf("alice: %v", alice)
		}
	})
}

func TestAPIPagination(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	token := apiToken(t, m, "crm", "read", "")
	want := map[string]bool{}
	for i := range 11 {
		_, data := startSession(t, m, map[string]any{"username": "Customer " + strconv.Itoa(i)})
		want[data.str("session_id")] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/api/v1/interactions?limit=3"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := apiCall(t, m, "GET", path, token, nil)
		for _, id := range listIDs(t, r) {
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		pages++
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if pages != 4 || len(seen) != len(want) {
		t.Fatalf("%d pages, %d of %d interactions", pages, len(seen), len(want))
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("%s missing", id)
		}
	}
	r := apiCall(t, m, "GET", "/api/v1/interactions", token, nil)
	if len(listIDs(t, r)) != 11 || r.body["next_cursor"] != nil {
		t.Fatalf("default page: %s", r.raw)
	}
}

func TestAPIWrites(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	ctx := context.Background()
	base := "/api/v1/interactions/" + w.aliceChat
	events := postgres.NewEventStore(m.DB)

	t.Run("OK_PutUserData", func(t *testing.T) {
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{"CrmId": "C-9", "Score": 7}})
		if r.status != http.StatusOK || r.body.num("seq") == 0 {
			t.Fatalf("put: %d %s", r.status, r.raw)
		}
		if v := udValue(m, w.aliceChat, "CrmId"); v != `"C-9"` {
			t.Fatalf("CrmId = %q", v)
		}
		ud, err := m.Chat.UserData(ctx, w.aliceChat)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ud {
			if e.Key == "CrmId" && e.Owner != "integration:crm" {
				t.Fatalf("owner %q", e.Owner)
			}
		}
		waitEvent(t, events, notify.UserDataUpdated, w.aliceChat, func(d frame) bool {
			return d.str("key") == "CrmId" && d.str("owner") == "integration:crm" && d.str("by") == "crm"
		})
		h := apiCall(t, m, "GET", base+"/userdata/history", w.full, nil)
		if h.status != http.StatusOK || !strings.Contains(string(h.raw), `"owner":"integration:crm"`) {
			t.Fatalf("history: %d %s", h.status, h.raw)
		}
	})
	t.Run("OK_CustomerSeesVisibleChange", func(t *testing.T) {
		// A key the customer can see, changed by the integrator, reaches it live like any change.
		mustOK(t, w.aliceCustomer.do("update_userdata", map[string]any{"user_data": map[string]any{"OrderId": "A-17"}}))
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{"OrderId": "A-18"}, "visible": map[string]any{"OrderId": true}})
		if r.status != http.StatusOK {
			t.Fatalf("put: %d %s", r.status, r.raw)
		}
		w.aliceCustomer.waitFrame("the integrator's change", func(f frame) bool {
			return f.str("type") == "userdata" && f.str("changes", "OrderId") == "A-18"
		})
	})
	t.Run("OK_NullDeletes", func(t *testing.T) {
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, `{"userdata": {"Score": null}}`)
		if r.status != http.StatusOK || udValue(m, w.aliceChat, "Score") != "" {
			t.Fatalf("null: %d %s", r.status, r.raw)
		}
	})
	t.Run("OK_Delete", func(t *testing.T) {
		r := apiCall(t, m, "DELETE", base+"/userdata/CrmId", w.full, nil)
		if r.status != http.StatusOK || udValue(m, w.aliceChat, "CrmId") != "" {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		waitEvent(t, events, notify.UserDataDeleted, w.aliceChat, func(d frame) bool {
			return d.str("key") == "CrmId" && d.str("owner") == "integration:crm"
		})
	})
	t.Run("OK_DeleteEscapedKey", func(t *testing.T) {
		key := "Order Id/é"
		if r := apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{key: "1"}}); r.status != http.StatusOK {
			t.Fatalf("put: %d %s", r.status, r.raw)
		}
		r := apiCall(t, m, "DELETE", base+"/userdata/"+url.PathEscape(key), w.full, nil)
		if r.status != http.StatusOK || udValue(m, w.aliceChat, key) != "" {
			t.Fatalf("delete %q: %d %s", key, r.status, r.raw)
		}
	})
	t.Run("ErrUnknownInteraction", func(t *testing.T) {
		gone := "/api/v1/interactions/00000000-0000-4000-8000-000000000000"
		wantAPIError(t, apiCall(t, m, "GET", gone, w.full, nil), http.StatusNotFound, "interaction_not_found")
		wantAPIError(t, apiCall(t, m, "GET", gone+"/userdata/history", w.full, nil), http.StatusNotFound, "interaction_not_found")
		wantAPIError(t, apiCall(t, m, "PUT", gone+"/userdata", w.full, map[string]any{"userdata": map[string]any{"A": "1"}}), http.StatusNotFound, "interaction_not_found")
		wantAPIError(t, apiCall(t, m, "DELETE", gone+"/userdata/A", w.full, nil), http.StatusNotFound, "interaction_not_found")
		wantAPIError(t, apiCall(t, m, "POST", gone+"/notices", w.full, map[string]any{"to": "customer", "payload": map[string]any{"a": 1}}), http.StatusNotFound, "interaction_not_found")
	})
	t.Run("ErrNoticeAfterEnd", func(t *testing.T) {
		if err := m.Agents.End(ctx, w.bob, w.bobChat); err != nil {
			t.Fatal(err)
		}
		r := apiCall(t, m, "POST", "/api/v1/interactions/"+w.bobChat+"/notices", w.full, map[string]any{"to": "customer", "payload": map[string]any{"a": 1}})
		wantAPIError(t, r, http.StatusConflict, "session_ended")
		// UserData can still be written back after the end (a CRM's wrap-up data).
		if r := apiCall(t, m, "PUT", "/api/v1/interactions/"+w.bobChat+"/userdata", w.full, map[string]any{"userdata": map[string]any{"CaseId": "K-1"}}); r.status != http.StatusOK {
			t.Fatalf("write after end: %d %s", r.status, r.raw)
		}
	})
	t.Run("ErrSystemKey", func(t *testing.T) {
		if _, err := m.Chat.ChangeUserDataAs(ctx, w.aliceChat, userdata.OwnerSystem, "agentd", []userdata.Change{{Key: "Segment", Value: "vip"}}); err != nil {
			t.Fatal(err)
		}
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{"Segment": "hacked", "Other": "x"}})
		wantAPIError(t, r, http.StatusForbidden, "userdata_forbidden")
		wantAPIError(t, apiCall(t, m, "DELETE", base+"/userdata/Segment", w.full, nil), http.StatusForbidden, "userdata_forbidden")
		r = apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{userdata.ReservedPrefix + "x": "1"}})
		wantAPIError(t, r, http.StatusForbidden, "userdata_forbidden")
		if udValue(m, w.aliceChat, "Segment") != `"vip"` || udValue(m, w.aliceChat, "Other") != "" {
			t.Fatal("a refused write changed UserData")
		}
	})
	t.Run("ErrLimits", func(t *testing.T) {
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{"Big": strings.Repeat("x", 5000)}})
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errCode(), "userdata_") {
			t.Fatalf("big value: %d %s", r.status, r.raw)
		}
		wantAPIError(t, apiCall(t, m, "PUT", base+"/userdata", w.full, map[string]any{"userdata": map[string]any{"Obj": map[string]any{"a": 1}}}),
			http.StatusBadRequest, "userdata_invalid_value")
	})
	t.Run("ErrBadBody", func(t *testing.T) {
		for body, code := range map[string]string{
			`{"userdata": `:                    "invalid_json",
			`{"userdata": {"A": "1"}, "x": 1}`: "unknown_field",
			`{"userdata": {"A": "1"}} {}`:      "invalid_json",
			`{"userdata": ["A"]}`:              "invalid_json",
			`{"userdata": {}}`:                 "invalid_argument",
			``:                                 "invalid_json",
		} {
			wantAPIError(t, apiCall(t, m, "PUT", base+"/userdata", w.full, body), http.StatusBadRequest, code)
		}
		r := apiCall(t, m, "PUT", base+"/userdata", w.full, `{"userdata": {"A": "`+strings.Repeat("x", 300<<10)+`"}}`)
		wantAPIError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
		// Refused before the token is even looked at: nobody makes the node read a huge body.
		r = apiCall(t, m, "POST", base+"/notices", "", `{"to": "agent", "payload": {"a": "`+strings.Repeat("x", 300<<10)+`"}}`)
		wantAPIError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
		req, _ := http.NewRequest("PUT", m.URL()+base+"/userdata", strings.NewReader(`userdata=1`))
		req.Header.Set("Authorization", "Bearer "+w.full)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// JSON, like every API error, although a browser's form would get a page.
		var e frame
		if res.StatusCode != http.StatusUnsupportedMediaType || json.Unmarshal(raw, &e) != nil || e.str("error", "code") != "unsupported_media_type" {
			t.Fatalf("form body: %d %s", res.StatusCode, raw)
		}
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/no-such-route", w.full, nil), http.StatusNotFound, "not_found")
		for body, code := range map[string]string{
			`{"to": "everyone", "payload": {}}`:       "invalid_argument",
			`{"to": "agent", "payload": "hi"}`:        "invalid_argument",
			`{"to": "agent"}`:                         "invalid_argument",
			`{"to": "agent", "payload": {}, "cc": 1}`: "unknown_field",
		} {
			wantAPIError(t, apiCall(t, m, "POST", base+"/notices", w.full, body), http.StatusBadRequest, code)
		}
	})
	t.Run("OK_Notices", func(t *testing.T) {
		// The agent's notice first: once the customer's has arrived, the agent's would have too.
		r := apiCall(t, m, "POST", base+"/notices", w.full, map[string]any{"to": "agent", "payload": map[string]any{"secret": "agent-only"}})
		if r.status != http.StatusCreated || r.body.str("audience") != "agent" || r.body.str("sender") != "integration:crm" {
			t.Fatalf("agent notice: %d %s", r.status, r.raw)
		}
		r = apiCall(t, m, "POST", base+"/notices", w.full, map[string]any{"to": "customer", "payload": map[string]any{"text": "Your parcel left"}})
		if r.status != http.StatusCreated || r.body.str("audience") != "all" {
			t.Fatalf("customer notice: %d %s", r.status, r.raw)
		}
		n := w.aliceCustomer.waitFrame("integrator notice", func(f frame) bool {
			return f.str("type") == "notice" && f.str("payload", "text") == "Your parcel left"
		})
		if n.str("party", "type") != "external" || n.str("party", "name") != "integration:crm" {
			t.Fatalf("notice party: %v", n)
		}
		for _, f := range w.aliceCustomer.snapshot() {
			if f.str("payload", "secret") != "" {
				t.Fatalf("the customer got the agent's notice: %v", f)
			}
		}
		waitEvent(t, events, notify.NoticeCustom, w.aliceChat, func(d frame) bool {
			return d.str("sender") == "integration:crm" && d.str("audience") == "agent" && d.str("payload", "secret") == "agent-only"
		})
		d := apiCall(t, m, "GET", base, w.full, nil)
		if !strings.Contains(string(d.raw), `"agent-only"`) || !strings.Contains(string(d.raw), `"sender":"integration:crm"`) {
			t.Fatalf("detail misses the notices: %s", d.raw)
		}
	})
}

// waitEvent waits until an integration event of typ on the interaction whose data satisfies
// pred can be read. A reader sees only transactions older than every one still open on the
// cluster (postgres/events.go), so an event shows up a moment after its commit when other tests
// are busy.
func waitEvent(t testing.TB, events *postgres.EventStore, typ notify.Type, interactionID string, pred func(frame) bool) {
	t.Helper()
	waitFor(t, string(typ)+" event", func() bool {
		evs, err := events.Events(context.Background(), notify.Position{}, notify.Filter{Types: []notify.Type{typ}, InteractionID: interactionID}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			var d frame
			if json.Unmarshal(ev.Data, &d) == nil && pred(d) {
				return true
			}
		}
		return false
	})
}

func TestAPIRateLimit(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.API = api.Config{Rate: 0.2, Burst: 3} })
	a, b := apiToken(t, m, "a", "read", ""), apiToken(t, m, "b", "read", "")
	for i := range 3 {
		if r := apiCall(t, m, "GET", "/api/v1/agents", a, nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := apiCall(t, m, "GET", "/api/v1/agents", a, nil)
	wantAPIError(t, r, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 5 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Per token: another token is not slowed down.
	if r := apiCall(t, m, "GET", "/api/v1/agents", b, nil); r.status != http.StatusOK {
		t.Fatalf("other token: %d", r.status)
	}
}

// TestAPIRateSettings: AGENTD_API_RATE and AGENTD_API_BURST set the per-token limit; bad values
// stop the node from starting with a clear message, and unset ones keep the defaults.
func TestAPIRateSettings(t *testing.T) {
	load := func() error {
		c := Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
		return c.load()
	}
	c := Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	if err := c.load(); err != nil || c.API != api.DefaultConfig {
		t.Fatalf("defaults: %+v %v", c.API, err)
	}
	t.Setenv("AGENTD_API_RATE", "2.5")
	t.Setenv("AGENTD_API_BURST", "5")
	c = Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	if err := c.load(); err != nil || c.API != (api.Config{Rate: 2.5, Burst: 5}) {
		t.Fatalf("set: %+v %v", c.API, err)
	}
	for name, v := range map[string][2]string{
		"ErrRateZero":   {"AGENTD_API_RATE", "0"},
		"ErrRateWord":   {"AGENTD_API_RATE", "fast"},
		"ErrRateInf":    {"AGENTD_API_RATE", "+Inf"},
		"ErrBurstZero":  {"AGENTD_API_BURST", "0"},
		"ErrBurstFloat": {"AGENTD_API_BURST", "1.5"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AGENTD_API_RATE", "2.5")
			t.Setenv("AGENTD_API_BURST", "5")
			t.Setenv(v[0], v[1])
			if err := load(); err == nil || !strings.Contains(err.Error(), v[0]+" must be a positive") {
				t.Fatalf("%s=%s: %v", v[0], v[1], err)
			}
		})
	}
}

// TestAPITokenInURLNotLogged: a token sent in the URL is refused, and appears nowhere in the
// node's log, at any level.
func TestAPITokenInURLNotLogged(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	m := startNodeWith(t, newDB(t), func(m *Main) {
		m.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	secret := apiToken(t, m, "crm", "read", "")
	for _, path := range []string{"/api/v1/agents?token=" + secret, "/api/v1/interactions?access_token=" + secret, "/api/v1/interactions/" + secret} {
		r := apiCall(t, m, "GET", path, "", nil)
		if r.status != http.StatusUnauthorized && r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d", path, r.status)
		}
	}
	wantAPIError(t, apiCall(t, m, "GET", "/api/v1/agents?token="+secret, secret, nil), http.StatusUnauthorized, "token_in_url")
	if strings.Contains(log.String(), secret) || strings.Contains(log.String(), secret[len(notify.TokenPrefix):]) {
		t.Fatal("the token is in the log")
	}
}

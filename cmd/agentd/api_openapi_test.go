package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/gorilla/websocket"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"agentd/web/api"
)

// openAPIDoc is web/api/openapi.json, decoded.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	return doc
}

// docOperation is one path and method of the document.
type docOperation struct {
	path, method string
	op           map[string]any
}

func docOperations(doc map[string]any) []docOperation {
	var ops []docOperation
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			ops = append(ops, docOperation{path: path, method: strings.ToUpper(method), op: op.(map[string]any)})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// TestAPIDocumentMatchesRoutes: every route of the node under /api/v1 is in the document, and
// every operation of the document is a route, exactly.
func TestAPIDocumentMatchesRoutes(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	var routes, documented []string
	for _, r := range m.Server.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if path == "/api/v1" || strings.HasPrefix(path, "/api/v1/") {
			routes = append(routes, method+" "+echoParam.ReplaceAllString(path, "{$1}"))
		}
	}
	for _, op := range docOperations(openAPIDoc(t)) {
		documented = append(documented, op.method+" "+op.path)
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if !slices.Equal(routes, documented) {
		t.Fatalf("routes and document differ:\nroutes:   %v\ndocument: %v", routes, documented)
	}
}

// TestAPIDocumentExamples calls every operation with the document's examples against a node with
// real data, and checks the documented success status and the answer against its schema; then
// without a token (401, the Error schema). The documented examples of answers must fit their
// schemas too. The example ids cannot exist in a new database: the test puts real ones in their
// place (pathID). The webhook operations take a token with the webhooks scope; the node may send
// to loopback, where a receiver answers the test deliveries.
func TestAPIDocumentExamples(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t, hookConfig)
	m := w.m
	doc := openAPIDoc(t)
	hooks := apiToken(t, m, "hooks", "webhooks", "")
	rc := newReceiver(t, nil)
	isHookOp := func(path string) bool {
		return strings.HasPrefix(path, "/api/v1/webhooks") || strings.HasPrefix(path, "/api/v1/deliveries/")
	}
	// pathID is the real id an operation's {id} stands for: alice's chat for an interaction; for
	// a webhook or a delivery, one made for this operation alone (an endpoint on the receiver, a
	// test delivery to it), so that deleting one leaves the next operation its own; resume gets
	// an endpoint a 410 has paused.
	pathID := func(t *testing.T, path string) string {
		switch {
		case path == "/api/v1/webhooks/{id}/resume":
			e, _, _ := pausedHook(t, m)
			return strconv.FormatInt(e.ID, 10)
		case strings.HasPrefix(path, "/api/v1/webhooks/"):
			e, _ := addHook(t, m, rc.srv.URL)
			return strconv.FormatInt(e.ID, 10)
		case strings.HasPrefix(path, "/api/v1/deliveries/"):
			e, _ := addHook(t, m, rc.srv.URL)
			d, err := m.Webhooks.SendTest(context.Background(), e.ID)
			if err != nil {
				t.Fatal(err)
			}
			return d.ID
		}
		return w.aliceChat
	}
	for _, o := range docOperations(doc) {
		t.Run(o.method+" "+o.path, func(t *testing.T) {
			if o.op["summary"] == nil || o.op["responses"] == nil {
				t.Fatal("operation without summary or responses")
			}
			var success string
			for code, resp := range o.op["responses"].(map[string]any) {
				content, _ := resp.(map[string]any)["content"].(map[string]any)
				mt, _ := content["application/json"].(map[string]any)
				if mt == nil || mt["schema"] == nil || mt["example"] == nil {
					t.Fatalf("response %s has no JSON schema or example", code)
				}
				if err := checkSchema(doc, mt["schema"], mt["example"], "example "+code); err != nil {
					t.Fatalf("documented example does not fit its schema: %v", err)
				}
				if strings.HasPrefix(code, "2") || code == "101" {
					if success != "" {
						t.Fatal("more than one success status")
					}
					success = code
				}
			}
			path := o.path
			q := url.Values{}
			params, _ := o.op["parameters"].([]any)
			for _, p := range params {
				p := p.(map[string]any)
				name, in := p["name"].(string), p["in"].(string)
				if p["example"] == nil || p["schema"] == nil {
					t.Fatalf("parameter %s has no schema or example", name)
				}
				ex := fmt.Sprint(p["example"])
				if f, ok := p["example"].(float64); ok {
					ex = strconv.FormatFloat(f, 'f', -1, 64)
				}
				switch {
				case in == "path" && name == "id":
					path = strings.ReplaceAll(path, "{id}", pathID(t, o.path))
				case in == "query" && name == "interaction":
					q.Set(name, w.aliceChat)
				case in == "path":
					path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(ex))
				case in == "query":
					q.Set(name, ex)
				}
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var body any
			if rb, ok := o.op["requestBody"].(map[string]any); ok {
				mt := rb["content"].(map[string]any)["application/json"].(map[string]any)
				if err := checkSchema(doc, mt["schema"], mt["example"], "request example"); err != nil {
					t.Fatalf("request example does not fit its schema: %v", err)
				}
				body = mt["example"]
			}
			if o.op["x-websocket"] == true {
				// A websocket: the documented first frame, with the example's filter.
				token := apiToken(t, m, "stream-"+o.method, "events", "")
				ws, resp, err := websocket.DefaultDialer.Dial(strings.Replace(m.URL(), "http", "ws", 1)+path,
					http.Header{"Authorization": {"Bearer " + token}})
				if err != nil {
					t.Fatalf("dial %s: %v (%v)", path, err, resp)
				}
				defer ws.Close()
				var first any
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				if err := ws.ReadJSON(&first); err != nil {
					t.Fatal(err)
				}
				schema := o.op["responses"].(map[string]any)[success].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
				if err := checkSchema(doc, schema, first, "first frame"); err != nil {
					t.Fatalf("first frame does not fit the schema: %v", err)
				}
				if r := apiCall(t, m, o.method, path, "", nil); r.status != http.StatusUnauthorized {
					t.Fatalf("without a token: %d", r.status)
				}
				return
			}
			token := w.full
			if isHookOp(o.path) {
				token = hooks
			}
			r := apiCall(t, m, o.method, path, token, body)
			if strconv.Itoa(r.status) != success {
				t.Fatalf("%s %s: %d, documented %s: %s", o.method, path, r.status, success, r.raw)
			}
			var got any
			if err := json.Unmarshal(r.raw, &got); err != nil {
				t.Fatal(err)
			}
			schema := o.op["responses"].(map[string]any)[success].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
			if err := checkSchema(doc, schema, got, "answer"); err != nil {
				t.Fatalf("answer does not fit the schema: %v\n%s", err, r.raw)
			}
			if sec, ok := o.op["security"].([]any); ok && len(sec) == 0 {
				return // no token needed
			}
			r = apiCall(t, m, o.method, path, "", body)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("without a token: %d", r.status)
			}
			if err := checkSchema(doc, map[string]any{"$ref": "#/components/schemas/Error"}, map[string]any(r.body), "401"); err != nil {
				t.Fatal(err)
			}
			if _, ok := o.op["responses"].(map[string]any)["401"]; !ok {
				t.Fatal("401 is not documented")
			}
		})
	}
}

// checkSchema checks v against the subset of JSON Schema the document uses: $ref, allOf, type
// (one or several), enum, required, properties, additionalProperties, items, minProperties.
func checkSchema(doc map[string]any, schema any, v any, at string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is not an object", at)
	}
	if ref, ok := s["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/components/schemas/")
		target := doc["components"].(map[string]any)["schemas"].(map[string]any)[name]
		if !found || target == nil {
			return fmt.Errorf("%s: unknown $ref %s", at, ref)
		}
		return checkSchema(doc, target, v, at)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := checkSchema(doc, sub, v, at); err != nil {
				return err
			}
		}
	}
	if typ, ok := s["type"]; ok {
		types := []any{typ}
		if list, ok := typ.([]any); ok {
			types = list
		}
		if !slices.ContainsFunc(types, func(t any) bool { return jsonTypeIs(v, t.(string)) }) {
			return fmt.Errorf("%s: %v is not of type %v", at, v, typ)
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, r := range asSlice(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("%s: required field %q missing", at, r)
			}
		}
		if n, ok := s["minProperties"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%s: fewer than %v fields", at, n)
		}
		props, _ := s["properties"].(map[string]any)
		for k, fv := range x {
			if ps, ok := props[k]; ok {
				if err := checkSchema(doc, ps, fv, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: unexpected field %q", at, k)
				}
			case map[string]any:
				if err := checkSchema(doc, ap, fv, at+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, it := range x {
				if err := checkSchema(doc, items, it, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func jsonTypeIs(v any, typ string) bool {
	switch x := v.(type) {
	case nil:
		return typ == "null"
	case string:
		return typ == "string"
	case bool:
		return typ == "boolean"
	case float64:
		return typ == "number" || typ == "integer" && x == math.Trunc(x)
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	}
	return false
}

package userdata_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"agentd"
	"agentd/userdata"
)

func entries(es ...userdata.Entry) map[string]userdata.Entry {
	m := map[string]userdata.Entry{}
	for _, e := range es {
		m[e.Key] = e
	}
	return m
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil || agentd.ErrorCode(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func TestPlan(t *testing.T) {
	lim := userdata.DefaultLimits
	existing := entries(
		userdata.Entry{Key: "Mine", Value: json.RawMessage(`"1"`), Owner: userdata.OwnerClient},
		userdata.Entry{Key: "Shown", Value: json.RawMessage(`"s"`), Owner: userdata.OwnerAgent, Visible: true},
		userdata.Entry{Key: "Hidden", Value: json.RawMessage(`"h"`), Owner: userdata.OwnerStrategy},
		userdata.Entry{Key: "Sys", Value: json.RawMessage(`"x"`), Owner: userdata.OwnerSystem},
	)

	t.Run("OK_ClientCreatesAndChangesOwn", func(t *testing.T) {
		w, err := userdata.Plan(userdata.OwnerClient, existing, []userdata.Change{{Key: "New", Value: "v"}, {Key: "Mine", Value: 2.5}}, lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 2 || !w[0].Visible || w[0].Owner != userdata.OwnerClient || string(w[1].Value) != "2.5" {
			t.Fatalf("writes %+v", w)
		}
	})

	t.Run("ErrForbidden_SameCodeVisibleOrNot", func(t *testing.T) {
		for _, key := range []string{"Shown", "Hidden", "Sys", "_agentd.x"} {
			_, err := userdata.Plan(userdata.OwnerClient, existing, []userdata.Change{{Key: key, Value: "v"}}, lim)
			wantCode(t, err, "userdata_forbidden")
			_, err = userdata.Plan(userdata.OwnerClient, existing, []userdata.Change{{Key: key}}, lim)
			if key != "_agentd.x" {
				wantCode(t, err, "userdata_forbidden")
			}
		}
	})

	t.Run("OK_WriterDecidesVisibility", func(t *testing.T) {
		// A key the customer created and could read becomes the agent's, hidden unless the
		// agent marks it visible; the history keeps that the customer could see it before.
		shown := true
		w, err := userdata.Plan(userdata.OwnerAgent, existing, []userdata.Change{{Key: "Mine", Value: "fixed"}, {Key: "Hidden", Value: "h2", Visible: &shown}}, lim)
		if err != nil {
			t.Fatal(err)
		}
		if w[0].Visible || !w[0].WasVisible || w[0].Owner != userdata.OwnerAgent || !w[1].Visible || w[1].Owner != userdata.OwnerAgent {
			t.Fatalf("visibility after takeover: %+v", w)
		}
		for _, owner := range []userdata.Owner{userdata.OwnerSystem, userdata.OwnerStrategy, userdata.Owner("integration:crm")} {
			w, err := userdata.Plan(owner, existing, []userdata.Change{{Key: "Mine", Value: "theirs"}}, lim)
			if err != nil || w[0].Visible || w[0].Owner != owner {
				t.Fatalf("%s takes over: %+v %v", owner, w, err)
			}
		}
		_, err = userdata.Plan(userdata.OwnerAgent, existing, []userdata.Change{{Key: "Sys", Value: "no"}}, lim)
		wantCode(t, err, "userdata_forbidden")
		_, err = userdata.Plan(userdata.OwnerAgent, existing, []userdata.Change{{Key: "_agentd.route", Value: "no"}}, lim)
		wantCode(t, err, "userdata_forbidden")
		if _, err := userdata.Plan(userdata.OwnerSystem, existing, []userdata.Change{{Key: "_agentd.route", Value: "ok"}}, lim); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrValues", func(t *testing.T) {
		for name, v := range map[string]any{
			"nul":      "a\x00b",
			"utf8":     "bad \xff",
			"object":   map[string]any{"a": 1},
			"list":     []any{1},
			"nan":      math.NaN(),
			"rawnull":  json.RawMessage(`null`),
			"rawobj":   json.RawMessage(`{"a":1}`),
			"toolong":  strings.Repeat("x", lim.MaxValueBytes),
			"rawjunk":  json.RawMessage(`{`),
			"infinity": math.Inf(1),
		} {
			_, err := userdata.Plan(userdata.OwnerClient, nil, []userdata.Change{{Key: "K", Value: v}}, lim)
			if agentd.ErrorCode(err) != "userdata_invalid_value" {
				t.Errorf("%s: want userdata_invalid_value, got %v", name, err)
			}
		}
	})

	t.Run("ErrKeys", func(t *testing.T) {
		for _, k := range []string{"", strings.Repeat("k", lim.MaxKeyLen+1), "a\nb", "bad\xff"} {
			_, err := userdata.Plan(userdata.OwnerClient, nil, []userdata.Change{{Key: k, Value: "v"}}, lim)
			wantCode(t, err, "userdata_invalid_key")
		}
		_, err := userdata.Plan(userdata.OwnerClient, nil, []userdata.Change{{Key: "A", Value: "1"}, {Key: "A", Value: "2"}}, lim)
		wantCode(t, err, "userdata_invalid_key")
	})

	t.Run("ErrLimits", func(t *testing.T) {
		small := userdata.Limits{MaxKeyLen: 10, MaxValueBytes: 10, MaxKeys: 2, MaxTotalBytes: 20}
		_, err := userdata.Plan(userdata.OwnerClient, nil, []userdata.Change{{Key: "A", Value: "1"}, {Key: "B", Value: "2"}, {Key: "C", Value: "3"}}, small)
		wantCode(t, err, "userdata_too_many_keys")
		_, err = userdata.Plan(userdata.OwnerClient, nil, []userdata.Change{{Key: "A", Value: "12345678"}, {Key: "B", Value: "12345678"}}, small)
		wantCode(t, err, "userdata_too_large")
		// Deleting frees room in the same request.
		have := entries(userdata.Entry{Key: "A", Value: json.RawMessage(`"1"`), Owner: userdata.OwnerClient}, userdata.Entry{Key: "B", Value: json.RawMessage(`"2"`), Owner: userdata.OwnerClient})
		if _, err := userdata.Plan(userdata.OwnerClient, have, []userdata.Change{{Key: "A"}, {Key: "C", Value: "3"}}, small); err != nil {
			t.Fatal(err)
		}
	})

	// A customer who filled UserData must not block agentd's and the agents' writes (routing,
	// wrap-up, co-browse, survey): they get the same allowance again on top.
	t.Run("OK_StaffAllowanceOnTopOfFullUserData", func(t *testing.T) {
		small := userdata.Limits{MaxKeyLen: 20, MaxValueBytes: 10, MaxKeys: 2, MaxTotalBytes: 20}
		full := entries(userdata.Entry{Key: "A", Value: json.RawMessage(`"1"`), Owner: userdata.OwnerClient}, userdata.Entry{Key: "B", Value: json.RawMessage(`"2"`), Owner: userdata.OwnerClient})
		_, err := userdata.Plan(userdata.OwnerClient, full, []userdata.Change{{Key: "C", Value: "3"}}, small)
		wantCode(t, err, "userdata_too_many_keys")
		for _, actor := range []userdata.Owner{userdata.OwnerSystem, userdata.OwnerStrategy, userdata.OwnerAgent} {
			if _, err := userdata.Plan(actor, full, []userdata.Change{{Key: "Disposition", Value: "Done"}, {Key: "D", Value: "4"}}, small); err != nil {
				t.Fatalf("%s write on full UserData: %v", actor, err)
			}
			// The allowance is bounded too: twice the limits.
			_, err := userdata.Plan(actor, full, []userdata.Change{{Key: "C", Value: "3"}, {Key: "D", Value: "4"}, {Key: "E", Value: "5"}}, small)
			wantCode(t, err, "userdata_too_many_keys")
		}
		// Past the limit after staff writes, the customer can still change what it has.
		over := entries(userdata.Entry{Key: "A", Value: json.RawMessage(`"1"`), Owner: userdata.OwnerClient}, userdata.Entry{Key: "B", Value: json.RawMessage(`"2"`), Owner: userdata.OwnerClient},
			userdata.Entry{Key: "Disposition", Value: json.RawMessage(`"Done"`), Owner: userdata.OwnerAgent})
		if _, err := userdata.Plan(userdata.OwnerClient, over, []userdata.Change{{Key: "A", Value: "9"}}, small); err != nil {
			t.Fatalf("customer changing its own key past the limit: %v", err)
		}
		_, err = userdata.Plan(userdata.OwnerClient, over, []userdata.Change{{Key: "A", Value: "12345"}}, small)
		wantCode(t, err, "userdata_too_large")
	})

	t.Run("OK_DeleteAbsentIsNoop", func(t *testing.T) {
		w, err := userdata.Plan(userdata.OwnerClient, existing, []userdata.Change{{Key: "Nope"}}, lim)
		if err != nil || len(w) != 0 {
			t.Fatalf("%v %v", w, err)
		}
	})
}

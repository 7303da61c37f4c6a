package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"agentd"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// craft signs any header and claims with key, as a forger holding (or not) the key would.
func craft(key []byte, header, claims string) string {
	s := b64(header) + "." + b64(claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestCoBrowseContextRoundTrip: a signed context is a compact HS256 JWT whose claims verify
// with the key and say who watches which session, and which expires after the TTL.
func TestCoBrowseContextRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := CoBrowseAgent{ID: 7, Username: "alice", Name: `Alice "<b>"`}
	tok := SignCoBrowseContext(testKey, a, "i-1", "CB 1", now, 0)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", tok)
	}
	if h, _ := base64.RawURLEncoding.DecodeString(parts[0]); string(h) != `{"alg":"HS256","typ":"JWT"}` {
		t.Fatalf("header %s", h)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != "agentd" || claims["sub"] != "i-1" || claims["cobrowse_session_id"] != "CB 1" ||
		claims["iat"] != float64(now.Unix()) || claims["exp"] != float64(now.Add(10*time.Minute).Unix()) {
		t.Fatalf("claims %s", raw)
	}
	if ag, _ := claims["agent"].(map[string]any); ag["id"] != float64(7) || ag["username"] != "alice" || ag["name"] != a.Name {
		t.Fatalf("agent claim %v", claims["agent"])
	}
	c, err := VerifyCoBrowseContext(testKey, tok, now.Add(10*time.Minute-time.Second))
	if err != nil || c.Agent != a || c.InteractionID != "i-1" || c.SessionID != "CB 1" || c.Issuer != "agentd" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	// A TTL set in the configuration is used.
	short := SignCoBrowseContext(testKey, a, "i-1", "s", now, time.Minute)
	if _, err := VerifyCoBrowseContext(testKey, short, now.Add(time.Minute)); agentd.ErrorCode(err) != "cobrowse_context_expired" {
		t.Fatalf("a 1-minute context after a minute: %v", err)
	}
}

// TestCoBrowseContextRefused: expired, tampered, wrong-key, alg "none" or another algorithm,
// foreign issuer and malformed contexts all fail verification.
func TestCoBrowseContextRefused(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := SignCoBrowseContext(testKey, CoBrowseAgent{ID: 1, Username: "a", Name: "A"}, "i-1", "s", now, 0)
	parts := strings.Split(good, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := bytes.Replace(claims, []byte(`"sub":"i-1"`), []byte(`"sub":"i-2"`), 1)
	const hs = `{"alg":"HS256","typ":"JWT"}`
	for name, tc := range map[string]struct {
		token string
		at    time.Time
		code  string
	}{
		"ErrExpired":       {good, now.Add(10 * time.Minute), "cobrowse_context_expired"},
		"ErrTampered":      {parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2], now, "cobrowse_context_invalid"},
		"ErrBadSignature":  {parts[0] + "." + parts[1] + "." + b64("nope"), now, "cobrowse_context_invalid"},
		"ErrWrongKey":      {SignCoBrowseContext([]byte("another key, 32 bytes long......"), CoBrowseAgent{}, "i-1", "s", now, 0), now, "cobrowse_context_invalid"},
		"ErrAlgNone":       {b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + ".", now, "cobrowse_context_invalid"},
		"ErrAlgNoneSigned": {craft(testKey, `{"alg":"none","typ":"JWT"}`, string(claims)), now, "cobrowse_context_invalid"},
		"ErrAlgHS512":      {craft(testKey, `{"alg":"HS512","typ":"JWT"}`, string(claims)), now, "cobrowse_context_invalid"},
		"ErrForeignIssuer": {craft(testKey, hs, strings.Replace(string(claims), `"iss":"agentd"`, `"iss":"other"`, 1)), now, "cobrowse_context_invalid"},
		"ErrNoExpiry":      {craft(testKey, hs, `{"iss":"agentd","sub":"i-1"}`), now, "cobrowse_context_invalid"},
		"ErrClaimsNotJSON": {craft(testKey, hs, `not json`), now, "cobrowse_context_invalid"},
		"ErrHeaderNotJSON": {craft(testKey, `{`, string(claims)), now, "cobrowse_context_invalid"},
		"ErrTwoParts":      {parts[0] + "." + parts[1], now, "cobrowse_context_invalid"},
		"ErrFourParts":     {good + ".x", now, "cobrowse_context_invalid"},
		"ErrEmpty":         {"", now, "cobrowse_context_invalid"},
		"ErrBadBase64":     {"@@@." + parts[1] + "." + parts[2], now, "cobrowse_context_invalid"},
		"ErrTooLong":       {good + strings.Repeat("A", 5000), now, "cobrowse_context_invalid"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := VerifyCoBrowseContext(testKey, tc.token, tc.at)
			if agentd.ErrorCode(err) != tc.code || agentd.ErrorClass(err) != agentd.EUNAUTHORIZED || c != (CoBrowseContext{}) {
				t.Fatalf("got %+v, %v; want %s", c, err, tc.code)
			}
		})
	}
	if _, err := VerifyCoBrowseContext(testKey, good, now); err != nil {
		t.Fatalf("the untouched context: %v", err)
	}
}

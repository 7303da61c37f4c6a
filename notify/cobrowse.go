package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"agentd"
)

// The co-browse context (docs/cobrowse.md): the console's co-browse iframe URL may carry, in the
// placeholder {context}, a short-lived compact JWT signed with HS256 that tells the provider
// which agent is watching which interaction's session, so the provider need not trust the URL's
// other parameters.

// CoBrowseIssuer is the context's iss claim.
const CoBrowseIssuer = "agentd"

// CoBrowseContextTTL is how long a context verifies by default (AGENTD_COBROWSE_CONTEXT_TTL).
const CoBrowseContextTTL = 10 * time.Minute

// CoBrowseKeyMinLen is the shortest signing key accepted (AGENTD_COBROWSE_CONTEXT_KEY), in bytes.
const CoBrowseKeyMinLen = 32

// CoBrowseAgent is the agent claim: who is watching.
type CoBrowseAgent struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// CoBrowseContext is the claims of a co-browse context.
type CoBrowseContext struct {
	Issuer        string        `json:"iss"`
	InteractionID string        `json:"sub"`
	Agent         CoBrowseAgent `json:"agent"`
	SessionID     string        `json:"cobrowse_session_id"`
	IssuedAt      int64         `json:"iat"` // Unix seconds
	ExpiresAt     int64         `json:"exp"` // Unix seconds
}

// cobrowseHeader is the one header a context has; Verify accepts no other algorithm.
var cobrowseHeader = b64(`{"alg":"HS256","typ":"JWT"}`)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// NewCoBrowseKey returns a random signing key, for a node started without
// AGENTD_COBROWSE_CONTEXT_KEY: its contexts verify only with this node, until it restarts.
func NewCoBrowseKey() []byte {
	k := make([]byte, CoBrowseKeyMinLen)
	_, _ = rand.Read(k) // crypto/rand.Read never fails
	return k
}

// SignCoBrowseContext returns the context for agent a watching session sessionID of interaction
// interactionID, issued at now and valid for ttl (CoBrowseContextTTL when ttl <= 0).
func SignCoBrowseContext(key []byte, a CoBrowseAgent, interactionID, sessionID string, now time.Time, ttl time.Duration) string {
	if ttl <= 0 {
		ttl = CoBrowseContextTTL
	}
	claims, _ := json.Marshal(CoBrowseContext{Issuer: CoBrowseIssuer, InteractionID: interactionID, Agent: a, SessionID: sessionID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix()}) // strings and integers: never fails
	signed := cobrowseHeader + "." + base64.RawURLEncoding.EncodeToString(claims)
	return signed + "." + base64.RawURLEncoding.EncodeToString(cobrowseMAC(key, signed))
}

func cobrowseMAC(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

func errContextInvalid() error {
	return agentd.Errorf(agentd.EUNAUTHORIZED, "cobrowse_context_invalid", "The co-browse context is malformed or not signed by agentd.")
}

// VerifyCoBrowseContext checks token's HS256 signature with key, then its issuer and its expiry
// at now; it returns the claims. Any other header (alg "none", another algorithm) is refused.
func VerifyCoBrowseContext(key []byte, token string, now time.Time) (CoBrowseContext, error) {
	parts := strings.Split(token, ".")
	if len(token) > 4096 || len(parts) != 3 {
		return CoBrowseContext{}, errContextInvalid()
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return CoBrowseContext{}, errContextInvalid()
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(header, &h) != nil || h.Alg != "HS256" || (h.Typ != "" && h.Typ != "JWT") {
		return CoBrowseContext{}, errContextInvalid()
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, cobrowseMAC(key, parts[0]+"."+parts[1])) {
		return CoBrowseContext{}, errContextInvalid()
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return CoBrowseContext{}, errContextInvalid()
	}
	var c CoBrowseContext
	dec := json.NewDecoder(bytes.NewReader(raw))
	if dec.Decode(&c) != nil || c.Issuer != CoBrowseIssuer || c.InteractionID == "" || c.ExpiresAt == 0 {
		return CoBrowseContext{}, errContextInvalid()
	}
	if now.Unix() >= c.ExpiresAt {
		return CoBrowseContext{}, agentd.Errorf(agentd.EUNAUTHORIZED, "cobrowse_context_expired", "The co-browse context has expired.")
	}
	return c, nil
}

package notify

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"agentd/userdata"
)

// Scope is what an API token may do.
type Scope string

// The scopes (docs/api.md).
const (
	ScopeRead     Scope = "read"     // read interactions, UserData, agents
	ScopeWrite    Scope = "write"    // write UserData, send notices
	ScopeEvents   Scope = "events"   // follow the event stream
	ScopeWebhooks Scope = "webhooks" // manage webhook endpoints and deliveries
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeRead, ScopeWrite, ScopeEvents, ScopeWebhooks}

// ParseScopes parses a comma-separated list of scopes; "" is read only.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(Scopes, Scope(f)) {
			return nil, fmt.Errorf("unknown scope %q (the scopes are read, write, events, webhooks)", f)
		}
		if !slices.Contains(out, Scope(f)) {
			out = append(out, Scope(f))
		}
	}
	if len(out) == 0 {
		out = []Scope{ScopeRead}
	}
	return out, nil
}

// Token is an API token as stored: never the secret itself, only its hash.
type Token struct {
	ID         int64
	Name       string
	Prefix     string // the first characters of the secret, to tell tokens apart
	Scopes     []Scope
	UserID     int64  // non-zero: the token sees only this agent's interactions
	Username   string // the bound user's name
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Has reports whether t carries scope s.
func (t Token) Has(s Scope) bool { return slices.Contains(t.Scopes, s) }

// Owner is the UserData owner of what the token writes: integration:<token name>.
func (t Token) Owner() userdata.Owner { return userdata.IntegrationOwner(t.Name) }

// TokenPrefix starts every API token, so a leaked one is easy to recognise (and to scan for).
const TokenPrefix = "agd_"

// NewToken returns a new random API token and the hash that is stored.
func NewToken() (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashToken(secret)
}

// HashToken is the stored form of a token (a token has 256 random bits, so a fast hash is safe).
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

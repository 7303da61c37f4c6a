package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"agentd"
	"agentd/chat"
	"agentd/notify"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"agent", RoleAgent, false},
		{"supervisor", RoleSupervisor, false},
		{"admin", RoleAdmin, false},
		{"", "", true},
		{"Admin", "", true},
		{" admin", "", true},
		{"root", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRole(tt.in)
			if tt.wantErr {
				wantInvalid(t, err, "Role must be agent, supervisor or admin.")
				if got != "" {
					t.Errorf("role = %q, want empty on error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseRole(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRoleAtLeast(t *testing.T) {
	tests := []struct {
		r, min Role
		want   bool
	}{
		{RoleAgent, RoleAgent, true},
		{RoleAgent, RoleSupervisor, false},
		{RoleAgent, RoleAdmin, false},
		{RoleSupervisor, RoleAgent, true},
		{RoleSupervisor, RoleSupervisor, true},
		{RoleSupervisor, RoleAdmin, false},
		{RoleAdmin, RoleAgent, true},
		{RoleAdmin, RoleSupervisor, true},
		{RoleAdmin, RoleAdmin, true},
		{Role(""), RoleAgent, false},
		{Role("root"), RoleAgent, false},
		// An unknown minimum (a typo in a route) fails closed.
		{RoleAgent, Role("Admin"), false},
		{RoleAdmin, Role(""), false},
	}
	for _, tt := range tests {
		if got := tt.r.AtLeast(tt.min); got != tt.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tt.r, tt.min, got, tt.want)
		}
	}
}

func TestNewUserValidate(t *testing.T) {
	valid := func() NewUser {
		return NewUser{Username: "alice", Password: "password1", Role: RoleAgent, DisplayName: "Alice", Capacity: 2}
	}
	tests := []struct {
		name    string
		edit    func(*NewUser)
		wantErr string // part of the message; "" means valid
		check   func(*testing.T, NewUser)
	}{
		{name: "OK", edit: func(*NewUser) {}, check: func(t *testing.T, u NewUser) {
			if u.Username != "alice" || u.DisplayName != "Alice" || u.Capacity != 2 || u.Role != RoleAgent {
				t.Errorf("changed a valid user: %+v", u)
			}
		}},
		{name: "OK_TrimsAndDefaults", edit: func(u *NewUser) { u.Username, u.DisplayName, u.Capacity = "  bob\t", "   ", 0 },
			check: func(t *testing.T, u NewUser) {
				if u.Username != "bob" || u.DisplayName != "bob" || u.Capacity != DefaultCapacity {
					t.Errorf("got username %q display %q capacity %d; want bob, bob, %d", u.Username, u.DisplayName, u.Capacity, DefaultCapacity)
				}
			}},
		{name: "OK_TrimsDisplayName", edit: func(u *NewUser) { u.DisplayName = " Alice A. " }, check: func(t *testing.T, u NewUser) {
			if u.DisplayName != "Alice A." {
				t.Errorf("display name %q, want %q", u.DisplayName, "Alice A.")
			}
		}},
		{name: "OK_Username64", edit: func(u *NewUser) { u.Username = strings.Repeat("a", 64) }},
		{name: "OK_UsernameEmailLike", edit: func(u *NewUser) { u.Username = "a.b_c-d@example.com" }},
		{name: "ErrUsernameEmpty", edit: func(u *NewUser) { u.Username = "" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameBlank", edit: func(u *NewUser) { u.Username = " \t " }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsername65", edit: func(u *NewUser) { u.Username = strings.Repeat("a", 65) }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameSpace", edit: func(u *NewUser) { u.Username = "al ice" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameTab", edit: func(u *NewUser) { u.Username = "al\tice" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameNewline", edit: func(u *NewUser) { u.Username = "al\nice" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameSlash", edit: func(u *NewUser) { u.Username = "al/ice" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameBackslash", edit: func(u *NewUser) { u.Username = `al\ice` }, wantErr: "Username must be 1 to 64 characters"},
		// The same rule as the users table's CHECK, so the database never refuses a valid user.
		{name: "ErrUsernamePunctuation", edit: func(u *NewUser) { u.Username = "bob#!" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameLeadingDash", edit: func(u *NewUser) { u.Username = "-bob" }, wantErr: "starting with a letter or digit"},
		{name: "ErrUsernameLeadingDot", edit: func(u *NewUser) { u.Username = ".x" }, wantErr: "starting with a letter or digit"},
		{name: "ErrUsernameNonASCII", edit: func(u *NewUser) { u.Username = "zoë" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameNUL", edit: func(u *NewUser) { u.Username = "a\x00b" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "ErrUsernameColon", edit: func(u *NewUser) { u.Username = "al:ice" }, wantErr: "Username must be 1 to 64 characters"},
		{name: "OK_Password8", edit: func(u *NewUser) { u.Password = "12345678" }},
		{name: "OK_Password8Runes", edit: func(u *NewUser) { u.Password = strings.Repeat("é", 8) }},
		{name: "OK_Password72Bytes", edit: func(u *NewUser) { u.Password = strings.Repeat("p", 72) }},
		{name: "ErrPasswordEmpty", edit: func(u *NewUser) { u.Password = "" }, wantErr: "Password must have at least 8 characters."},
		{name: "ErrPassword7", edit: func(u *NewUser) { u.Password = "1234567" }, wantErr: "Password must have at least 8 characters."},
		{name: "ErrPassword7RunesOf14Bytes", edit: func(u *NewUser) { u.Password = strings.Repeat("é", 7) }, wantErr: "Password must have at least 8 characters."},
		{name: "ErrPassword73Bytes", edit: func(u *NewUser) { u.Password = strings.Repeat("p", 73) }, wantErr: "Password must be at most 72 bytes."},
		{name: "ErrPassword40RunesOf80Bytes", edit: func(u *NewUser) { u.Password = strings.Repeat("é", 40) }, wantErr: "Password must be at most 72 bytes."},
		{name: "OK_RoleSupervisor", edit: func(u *NewUser) { u.Role = RoleSupervisor }},
		{name: "OK_RoleAdmin", edit: func(u *NewUser) { u.Role = RoleAdmin }},
		{name: "ErrRoleEmpty", edit: func(u *NewUser) { u.Role = "" }, wantErr: "Role must be agent, supervisor or admin."},
		{name: "ErrRoleUnknown", edit: func(u *NewUser) { u.Role = "owner" }, wantErr: "Role must be agent, supervisor or admin."},
		{name: "OK_DisplayName100", edit: func(u *NewUser) { u.DisplayName = strings.Repeat("é", 100) }},
		{name: "ErrDisplayName101", edit: func(u *NewUser) { u.DisplayName = strings.Repeat("é", 101) }, wantErr: "Display name must be one line of at most 100 characters."},
		{name: "ErrDisplayNameNewline", edit: func(u *NewUser) { u.DisplayName = "Ali\nce" }, wantErr: "Display name must be one line of at most 100 characters."},
		{name: "ErrDisplayNameCR", edit: func(u *NewUser) { u.DisplayName = "Ali\rce" }, wantErr: "Display name must be one line of at most 100 characters."},
		{name: "ErrDisplayNameNUL", edit: func(u *NewUser) { u.DisplayName = "Ali\x00ce" }, wantErr: "Display name must be one line of at most 100 characters."},
		{name: "OK_Capacity1", edit: func(u *NewUser) { u.Capacity = 1 }},
		{name: "OK_Capacity50", edit: func(u *NewUser) { u.Capacity = 50 }},
		{name: "ErrCapacityNegative", edit: func(u *NewUser) { u.Capacity = -1 }, wantErr: "Capacity must be between 0 and 50."},
		{name: "ErrCapacity51", edit: func(u *NewUser) { u.Capacity = 51 }, wantErr: "Capacity must be between 0 and 50."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := valid()
			tt.edit(&u)
			err := u.Validate()
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.check != nil {
				tt.check(t, u)
			}
		})
	}
}

func TestHashPasswordCheckPassword(t *testing.T) {
	t.Parallel() // bcrypt is slow on purpose
	const pw = "correct horse battery"
	h1, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$2a$10$") || len(h1) != 60 {
		t.Errorf("hash %q is not a bcrypt hash of cost 10", h1)
	}
	if strings.Contains(h1, pw) {
		t.Error("the hash contains the password")
	}
	if h1 == h2 {
		t.Error("two hashes of the same password are equal: no salt")
	}
	if !CheckPassword(h2, pw) {
		t.Error("the second hash does not match")
	}
	tests := []struct {
		name     string
		hash, pw string
		want     bool
	}{
		{"Correct", h1, pw, true},
		{"Wrong", h1, "correct horse battery!", false},
		{"EmptyPassword", h1, "", false},
		{"EmptyHashDummyPassword", "", "not a real password", false},
		{"GarbageHash", "not-a-hash", pw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckPassword(tt.hash, tt.pw); got != tt.want {
				t.Errorf("CheckPassword = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := HashPassword(strings.Repeat("p", 73)); err == nil {
		t.Error("HashPassword accepted a password bcrypt would truncate (73 bytes)")
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		if len(tok) != 32 {
			t.Fatalf("token %q has %d characters, want 32", tok, len(tok))
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != 24 {
			t.Fatalf("token %q is not 24 bytes of raw URL base64: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %q issued twice", tok)
		}
		seen[tok] = true
	}
}

func TestHashToken(t *testing.T) {
	want := sha256.Sum256([]byte("survey:abc"))
	if got := HashToken("abc"); !bytes.Equal(got, want[:]) {
		t.Errorf("HashToken(abc) = %x, want %x", got, want)
	}
	plain := sha256.Sum256([]byte("abc"))
	if bytes.Equal(HashToken("abc"), plain[:]) {
		t.Error("HashToken is not domain-separated from a plain SHA-256")
	}
	if bytes.Equal(HashToken("abc"), HashToken("abd")) {
		t.Error("different tokens hash alike")
	}
	if len(HashToken("")) != sha256.Size {
		t.Errorf("hash length %d", len(HashToken("")))
	}
}

func wantCode(t *testing.T, err error, class, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s/%s, got nil", class, code)
	}
	if agentd.ErrorClass(err) != class || agentd.ErrorCode(err) != code {
		t.Fatalf("want %s/%s, got %s/%s (%v)", class, code, agentd.ErrorClass(err), agentd.ErrorCode(err), err)
	}
}

func TestNewRouterDefaults(t *testing.T) {
	r := NewRouter(RouterDeps{})
	if got := r.Config(); got.RouteInterval != time.Second || got.AbsentGrace != 90*time.Second {
		t.Errorf("defaults: route interval %v, absent grace %v; want 1s, 90s", got.RouteInterval, got.AbsentGrace)
	}
	cfg := RouterConfig{RouteInterval: 5 * time.Second, AbsentGrace: time.Minute}
	if got := NewRouter(RouterDeps{Config: cfg}).Config(); got != cfg {
		t.Errorf("Config() = %+v, want %+v", got, cfg)
	}
	scfg := Config{PublicURL: "https://x.example", CoBrowseURL: "https://cb"}
	if got := NewService(Deps{Config: scfg}).Config(); got != scfg {
		t.Errorf("Config() = %+v, want %+v", got, scfg)
	}
	if got := NewAccounts(AccountsDeps{}).Config().SessionMaxAge; got != DefaultSessionMaxAge {
		t.Errorf("session max age %v, want %v", got, DefaultSessionMaxAge)
	}
}

func TestWakeupDoesNotBlock(t *testing.T) {
	w := NewWakeup()
	w.Wake()
	w.Wake() // must not block on the full channel
	w.Broadcast(chat.Notification{Kind: chat.NotifyQueue})
	if n := len(w.c); n != 1 {
		t.Errorf("%d pending wake-ups, want 1", n)
	}
	<-w.c
	w.Broadcast(chat.Notification{Kind: chat.NotifyEvents})
	if n := len(w.c); n != 0 {
		t.Errorf("an events notification woke the router")
	}
}

func TestWebSessionWithoutToken(t *testing.T) {
	_, _, err := NewAccounts(AccountsDeps{}).WebSession(context.Background(), "")
	wantCode(t, err, agentd.EUNAUTHORIZED, "unauthorized")
}

func TestURLEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"AZaz09-_.~", "AZaz09-_.~"},
		{"a b", "a%20b"},
		{"a/b?c=d&e#f", "a%2Fb%3Fc%3Dd%26e%23f"},
		{"{x}", "%7Bx%7D"},
		{"%", "%25"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		if got := urlEscape(tt.in); got != tt.want {
			t.Errorf("urlEscape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCoBrowseURL(t *testing.T) {
	tests := []struct {
		name      string
		tmpl      string
		sessionID string
		want      string
	}{
		{name: "NotConfigured", tmpl: "", sessionID: "s1", want: ""},
		{name: "Plain", tmpl: "https://cb.example/join/{CoBrowseSessionId}?chat={interactionId}", sessionID: "s1",
			want: "https://cb.example/join/s1?chat=i-1"},
		{name: "Escaped", tmpl: "https://cb.example/join/{CoBrowseSessionId}", sessionID: "a b/c&d",
			want: "https://cb.example/join/a%20b%2Fc%26d"},
		// An id holding a placeholder is escaped before expansion, so it cannot inject values.
		{name: "NoInjection", tmpl: "https://cb.example/{CoBrowseSessionId}/{interactionId}", sessionID: "{interactionId}",
			want: "https://cb.example/%7BinteractionId%7D/i-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewService(Deps{Config: Config{CoBrowseURL: tt.tmpl}})
			if got := s.CoBrowseURL(User{ID: 3}, tt.sessionID, "i-1"); got != tt.want {
				t.Errorf("CoBrowseURL = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCoBrowseURLContext: {context} becomes a context signed with the configured key that
// verifies and names the agent, the interaction and the session, valid for the configured TTL;
// the other placeholders are expanded as before, and an id cannot inject a placeholder.
func TestCoBrowseURLContext(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	now := time.Unix(1_800_000_000, 0)
	s := NewService(Deps{Now: func() time.Time { return now }, Config: Config{
		CoBrowseURL: "https://cb.example/join/{CoBrowseSessionId}?chat={interactionId}&ctx={context}", CoBrowseContextKey: key, CoBrowseContextTTL: 5 * time.Minute}})
	u := User{ID: 42, Username: "alice", DisplayName: "Alice <A>"}
	got := s.CoBrowseURL(u, "{context}", "i-9")
	parsed, err := url.Parse(got)
	if err != nil || parsed.Path != "/join/{context}" || parsed.Query().Get("chat") != "i-9" {
		t.Fatalf("URL %q (%v)", got, err)
	}
	c, err := notify.VerifyCoBrowseContext([]byte(key), parsed.Query().Get("ctx"), now.Add(5*time.Minute-time.Second))
	if err != nil {
		t.Fatalf("the context does not verify: %v (%q)", err, got)
	}
	want := notify.CoBrowseContext{Issuer: "agentd", InteractionID: "i-9", SessionID: "{context}",
		Agent: notify.CoBrowseAgent{ID: 42, Username: "alice", Name: "Alice <A>"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(5 * time.Minute).Unix()}
	if c != want {
		t.Fatalf("claims %+v, want %+v", c, want)
	}
	if _, err := notify.VerifyCoBrowseContext([]byte(key), parsed.Query().Get("ctx"), now.Add(5*time.Minute)); agentd.ErrorCode(err) != "cobrowse_context_expired" {
		t.Fatalf("after the TTL: %v", err)
	}
	if _, err := notify.VerifyCoBrowseContext([]byte("another key of thirty-two bytes!"), parsed.Query().Get("ctx"), now); err == nil {
		t.Fatal("the context verifies with another key")
	}
}

func TestSurveyURL(t *testing.T) {
	in := chat.Interaction{ID: "i-1", ServiceName: "sales"}
	tests := []struct {
		name      string
		publicURL string
		survey    Survey
		prefix    string // the URL up to the token
		suffix    string // the URL after the token
	}{
		{name: "OwnPage", publicURL: "https://chat.example", prefix: "https://chat.example/survey/"},
		{name: "OwnPageTrailingSlashes", publicURL: "https://chat.example//", prefix: "https://chat.example/survey/"},
		{name: "Template", publicURL: "https://chat.example", survey: Survey{URLTemplate: "https://s.example/{service}/{interactionId}?t={token}"},
			prefix: "https://s.example/sales/i-1?t="},
		{name: "TemplateTokenInMiddle", survey: Survey{URLTemplate: "https://s.example/{token}/done"},
			prefix: "https://s.example/", suffix: "/done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewService(Deps{Config: Config{PublicURL: tt.publicURL}})
			link := s.surveyLink(Strategy{Survey: &tt.survey}, in)
			hash, url := link.TokenHash, link.URL
			if !strings.HasPrefix(url, tt.prefix) || !strings.HasSuffix(url, tt.suffix) {
				t.Fatalf("url %q, want %q<token>%q", url, tt.prefix, tt.suffix)
			}
			token := strings.TrimSuffix(strings.TrimPrefix(url, tt.prefix), tt.suffix)
			if len(token) != 32 {
				t.Fatalf("token %q in %q, want 32 characters", token, url)
			}
			if !bytes.Equal(hash, HashToken(token)) {
				t.Error("the returned hash is not the hash of the token in the URL")
			}
			link2 := s.surveyLink(Strategy{Survey: &tt.survey}, in)
			if link2.URL == url || bytes.Equal(link2.TokenHash, hash) {
				t.Error("two survey links are equal")
			}
		})
	}
}

package chat

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"agentd"
	"agentd/userdata"
)

func wantCode(t *testing.T, err error, class, code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s/%s (%q), got nil", class, code, msgPart)
	}
	if agentd.ErrorClass(err) != class || agentd.ErrorCode(err) != code {
		t.Errorf("want %s/%s, got %s/%s (%v)", class, code, agentd.ErrorClass(err), agentd.ErrorCode(err), err)
	}
	if m := agentd.ErrorMessage(err); !strings.Contains(m, msgPart) {
		t.Errorf("message %q, want it to contain %q", m, msgPart)
	}
}

func TestPartyTypeOwner(t *testing.T) {
	tests := []struct {
		typ  PartyType
		want userdata.Owner
	}{
		{PartyClient, userdata.OwnerClient},
		{PartyAgent, userdata.OwnerAgent},
		{PartySupervisor, userdata.OwnerAgent},
		{PartyExternal, userdata.OwnerSystem},
		{PartyType("unknown"), userdata.OwnerAgent},
	}
	for _, tt := range tests {
		if got := tt.typ.Owner(); got != tt.want {
			t.Errorf("%q.Owner() = %q, want %q", tt.typ, got, tt.want)
		}
	}
}

func TestStateOver(t *testing.T) {
	tests := []struct {
		s    State
		want bool
	}{
		{StateQueued, false},
		{StateOffered, false},
		{StateActive, false},
		{StateEnded, true},
		{StateWrapped, true},
		{StateAbandoned, true},
		{State(""), false},
	}
	for _, tt := range tests {
		if got := tt.s.Over(); got != tt.want {
			t.Errorf("%q.Over() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestHashSecret(t *testing.T) {
	for _, s := range []string{"", "key", "start:0123456789abcdef"} {
		want := sha256.Sum256([]byte(s))
		if got := HashSecret(s); !bytes.Equal(got, want[:]) {
			t.Errorf("HashSecret(%q) = %x, want %x", s, got, want)
		}
	}
	if bytes.Equal(HashSecret("a"), HashSecret("b")) {
		t.Error("different secrets hash alike")
	}
	// A start token never hashes like the secure key of the same text.
	if bytes.Equal(HashSecret("start:x"), HashSecret("x")) {
		t.Error("start token and key share a hash")
	}
}

func TestNewSecureKey(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	seen := make(map[string]bool, 1000)
	for range 1000 {
		k := newSecureKey()
		if len(k) != 43 {
			t.Fatalf("key %q has %d characters, want 43 (32 bytes of raw URL base64)", k, len(k))
		}
		if i := strings.IndexFunc(k, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }); i >= 0 {
			t.Fatalf("key %q has %q outside the URL-safe alphabet", k, k[i])
		}
		if b, err := base64.RawURLEncoding.DecodeString(k); err != nil || len(b) != 32 {
			t.Fatalf("key %q does not decode to 32 bytes: %v", k, err)
		}
		if seen[k] {
			t.Fatalf("key %q issued twice", k)
		}
		seen[k] = true
	}
}

func TestCleanLine(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    string
		code    string // "" means accepted
		msgPart string
	}{
		{name: "OK", in: "Alice", max: 10, want: "Alice"},
		{name: "OK_Empty", in: "", max: 10, want: ""},
		{name: "OK_Trimmed", in: "  Alice \t", max: 10, want: "Alice"},
		{name: "OK_TrailingNewlineTrimmed", in: "Alice\r\n", max: 10, want: "Alice"},
		{name: "OK_MaxRunes", in: strings.Repeat("é", 10), max: 10, want: strings.Repeat("é", 10)},
		{name: "OK_TrimBeforeLength", in: "   " + strings.Repeat("a", 10) + "   ", max: 10, want: strings.Repeat("a", 10)},
		{name: "OK_InnerTab", in: "a\tb", max: 10, want: "a\tb"},
		{name: "ErrTooLong", in: strings.Repeat("é", 11), max: 10, code: "invalid_argument", msgPart: "The username is longer than 10 characters."},
		{name: "ErrNewline", in: "Al\nice", max: 10, code: "invalid_argument", msgPart: "The username must be one line without NUL characters."},
		{name: "ErrCR", in: "Al\rice", max: 10, code: "invalid_argument", msgPart: "must be one line"},
		{name: "ErrNUL", in: "Al\x00ice", max: 10, code: "invalid_argument", msgPart: "without NUL characters"},
		{name: "ErrInvalidUTF8", in: "Al\xffice", max: 10, code: "invalid_utf8", msgPart: "The username is not valid UTF-8."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cleanLine("username", tt.in, tt.max)
			if tt.code != "" {
				wantCode(t, err, agentd.EINVALID, tt.code, tt.msgPart)
				if got != "" {
					t.Errorf("returned %q with an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("cleanLine(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		max     int
		code    string // "" means accepted
		msgPart string
	}{
		{name: "OK", text: "hello", max: 5},
		{name: "OK_Multiline", text: "a\nb\tc", max: 5},
		{name: "OK_RunesNotBytes", text: "ééééé", max: 5},
		{name: "OK_SurroundingSpaceKept", text: " hi ", max: 5},
		{name: "ErrEmpty", text: "", max: 5, code: "invalid_text", msgPart: "The message is empty."},
		{name: "ErrBlank", text: " \n\t ", max: 5, code: "invalid_text", msgPart: "The message is empty."},
		{name: "ErrInvalidUTF8", text: "a\xff", max: 5, code: "invalid_utf8", msgPart: "The message is not valid UTF-8."},
		{name: "ErrNUL", text: "a\x00b", max: 5, code: "invalid_text", msgPart: "The message contains a NUL character."},
		{name: "ErrTooLong", text: "ééééé!", max: 5, code: "invalid_text", msgPart: "The message is longer than 5 characters."},
		// Spaces count: the limit is on the text as sent.
		{name: "ErrTooLongWithSpaces", text: " abcde", max: 5, code: "invalid_text", msgPart: "longer than 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckText(tt.text, tt.max)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("CheckText(%q): %v", tt.text, err)
				}
				return
			}
			wantCode(t, err, agentd.EINVALID, tt.code, tt.msgPart)
		})
	}
}

func TestNewServiceDefaults(t *testing.T) {
	if got := NewService(Deps{}).Config(); !reflect.DeepEqual(got, DefaultConfig) {
		t.Errorf("zero config became %+v, want %+v", got, DefaultConfig)
	}
	want := Config{MaxMessageChars: 10, MaxNoticeBytes: 20, MaxTypingChars: 3, EndedReadable: time.Minute, StartRetryWindow: time.Second,
		UserDataLimits: userdata.Limits{MaxKeyLen: 1, MaxValueBytes: 2, MaxKeys: 3, MaxTotalBytes: 4}}
	if got := NewService(Deps{Config: want}).Config(); !reflect.DeepEqual(got, want) {
		t.Errorf("explicit config became %+v, want %+v", got, want)
	}
	// Fields default one by one.
	got := NewService(Deps{Config: Config{MaxMessageChars: 7}}).Config()
	if got.MaxMessageChars != 7 || got.MaxNoticeBytes != 8192 || got.MaxTypingChars != 1024 || got.EndedReadable != time.Hour ||
		got.StartRetryWindow != 10*time.Minute || got.UserDataLimits != userdata.DefaultLimits {
		t.Errorf("partial config became %+v", got)
	}
}

func TestCheckNoticePayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		code    string // "" means accepted
		msgPart string
	}{
		{name: "OK_Object", payload: `{"type":"cobrowse","id":"x"}`},
		{name: "OK_String", payload: `"hello"`},
		{name: "OK_Number", payload: `42`},
		{name: "OK_AtLimit", payload: `"` + strings.Repeat("a", 30) + `"`},
		{name: "ErrEmpty", payload: ``, code: "invalid_argument", msgPart: "A notice needs a payload."},
		{name: "ErrNull", payload: `null`, code: "invalid_argument", msgPart: "A notice needs a payload."},
		{name: "ErrTooLarge", payload: `"` + strings.Repeat("a", 31) + `"`, code: "notice_too_large", msgPart: "A notice payload must be at most 32 bytes."},
		{name: "ErrNotJSON", payload: `{"a":`, code: "invalid_argument", msgPart: "A notice payload must be JSON."},
		{name: "ErrTrailingGarbage", payload: `{} {}`, code: "invalid_argument", msgPart: "must be JSON"},
		{name: "ErrNULEscape", payload: `{"a":"x\u0000y"}`, code: "invalid_text", msgPart: "A notice payload must not contain NUL characters."},
		{name: "ErrNULInKey", payload: `{"a\u0000":1}`, code: "invalid_text", msgPart: "must not contain NUL"},
		{name: "ErrNULNested", payload: `[1,{"b":["\u0000"]}]`, code: "invalid_text", msgPart: "must not contain NUL"},
		{name: "ErrPaddedNull", payload: ` null `, code: "invalid_argument", msgPart: "A notice needs a payload."},
		{name: "ErrBlank", payload: `  `, code: "invalid_argument", msgPart: "A notice needs a payload."},
		// An escaped backslash followed by "u0000" is text, not a NUL.
		{name: "OK_BackslashU0000Text", payload: `{"path":"C:\\u0000dir"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkNoticePayload(json.RawMessage(tt.payload), 32)
			if tt.code != "" {
				wantCode(t, err, agentd.EINVALID, tt.code, tt.msgPart)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWhisper: only a party-less, agent-only notice from supervisor:<username> with a whisper
// payload is a whisper; a customer's or an integrator's notice with the same payload is not.
func TestWhisper(t *testing.T) {
	payload := WhisperPayload("Sam <b>", "psst")
	w, ok := Notice{Sender: WhisperSenderPrefix + "sam", Audience: AudienceAgent, Payload: payload}.Whisper()
	if !ok || w.From != "Sam <b>" || w.Text != "psst" {
		t.Fatalf("whisper: %+v %v", w, ok)
	}
	for name, n := range map[string]Notice{
		"FromAParty":       {Party: Party{ID: "p1", Type: PartyClient}, Sender: WhisperSenderPrefix + "sam", Audience: AudienceAgent, Payload: payload},
		"FromAnIntegrator": {Sender: "integration:crm", Audience: AudienceAgent, Payload: payload},
		"ForEveryone":      {Sender: WhisperSenderPrefix + "sam", Audience: AudienceAll, Payload: payload},
		"NotAWhisper":      {Sender: WhisperSenderPrefix + "sam", Audience: AudienceAgent, Payload: []byte(`{"text":"x"}`)},
	} {
		if _, ok := n.Whisper(); ok {
			t.Fatalf("%s read as a whisper", name)
		}
	}
}

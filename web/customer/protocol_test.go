package customer

import "testing"

func TestValidUTF8Frame(t *testing.T) {
	for frame, want := range map[string]bool{
		`{"t":"plain"}`:              true,
		`{"t":"\ud83d\ude00"}`:       true,  // a surrogate pair
		`{"t":"\\ud800"}`:            true,  // an escaped backslash, not an escape
		`{"t":"\ud800"}`:             false, // lone high surrogate
		`{"t":"\udc00"}`:             false, // lone low surrogate
		`{"t":"\ud800\u0041"}`:       false, // high surrogate followed by a non-surrogate
		"{\"t\":\"\xff\"}":           false, // invalid UTF-8 bytes
		`{"t":"\ud83d\ude00\ud800"}`: false,
		`{"t":"end with \ud83d"}`:    false,
	} {
		if got := validUTF8Frame([]byte(frame)); got != want {
			t.Errorf("validUTF8Frame(%s) = %v, want %v", frame, got, want)
		}
	}
}

package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestBackoffSchedule: the documented schedule. The first retry comes within 30 s, delays grow
// and stop at the cap (plus jitter), and with DeliverMaxAttempts the retries span at least 24 h
// even with the least jitter.
func TestBackoffSchedule(t *testing.T) {
	c := DefaultWebhookConfig
	var least, most time.Duration
	prev := time.Duration(0)
	for n := 1; n < DeliverMaxAttempts; n++ {
		for _, key := range []string{"a", "b", "c", "d", "e"} {
			d := Backoff(c.BackoffBase, c.BackoffCap, n, key)
			base := min(c.BackoffBase<<(n-1), c.BackoffCap)
			if d < base || d > base+base/2 {
				t.Fatalf("retry %d (%s): %v outside [%v, %v]", n, key, d, base, base+base/2)
			}
			if d != Backoff(c.BackoffBase, c.BackoffCap, n, key) {
				t.Fatal("Backoff is not the same for the same delivery and retry")
			}
		}
		base := min(c.BackoffBase<<(n-1), c.BackoffCap)
		if base < prev {
			t.Fatalf("retry %d: delay shrank", n)
		}
		prev = base
		least += base
		most += base + base/2
	}
	if d := Backoff(c.BackoffBase, c.BackoffCap, 1, "x"); d > 30*time.Second {
		t.Fatalf("first retry after %v", d)
	}
	if least < 24*time.Hour || least > 27*time.Hour || most > 40*time.Hour {
		t.Fatalf("retries span %v to %v", least, most)
	}
}

// TestSign: one v1 per secret, each the hex HMAC-SHA256 of "<t>.<body>".
func TestSign(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte(`{"id":"1"}`)
	h := Sign(at, body, "s1", "s2")
	parts := strings.Split(h, ",")
	if len(parts) != 3 || parts[0] != "t=1700000000" {
		t.Fatalf("header %q", h)
	}
	for i, s := range []string{"s1", "s2"} {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte("1700000000." + string(body)))
		if parts[i+1] != "v1="+hex.EncodeToString(m.Sum(nil)) {
			t.Fatalf("v1 for %s: %q", s, parts[i+1])
		}
	}
	if a, b := NewSecret(), NewSecret(); a == b || !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+48 {
		t.Fatalf("secrets %q %q", a, b)
	}
}

// TestRefusedAddr: the ranges a receiver may not be on, and some it may.
func TestRefusedAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.2": "loopback",
		"10.0.0.1": "private", "172.31.255.1": "private", "192.168.1.1": "private", "fd00::1": "private",
		"100.64.0.1": "private", "169.254.169.254": "link-local", "fe80::1": "link-local",
		"0.0.0.0": "unspecified", "::": "unspecified", "224.0.0.1": "link-local", "239.1.2.3": "multicast", "ff02::1": "link-local",
		"ff05::1": "multicast", "93.184.215.14": "", "2606:4700::1111": "", "172.32.0.1": "",
	} {
		if got := refusedAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if err := dialControl("tcp", "127.0.0.1:80", nil); err == nil {
		t.Error("the dialer connects to loopback")
	}
	if err := dialControl("tcp", "93.184.215.14:443", nil); err != nil {
		t.Errorf("the dialer refuses a public address: %v", err)
	}
}

// TestCheckURL: the URL forms refused before any address is looked at, and the private
// ranges allowed with allowPrivate.
func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"", "ftp://x.example/", "//x.example/", "http://", "http://u:p@x.example/", "mailto:a@b", "http://[::1"} {
		if err := CheckURL(ctx, u, true); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080/hook", "https://10.0.0.1/", "http://localhost/"} {
		if err := CheckURL(ctx, u, true); err != nil {
			t.Errorf("%q refused with allowPrivate: %v", u, err)
		}
		if err := CheckURL(ctx, u, false); err == nil {
			t.Errorf("%q accepted without allowPrivate", u)
		}
	}
}

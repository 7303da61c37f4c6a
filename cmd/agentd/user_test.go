package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUserCLI(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	var out bytes.Buffer
	err := runUser(ctx, []string{"add", "--database-url", db, "--username", "kim", "--password", "s3cret-pass", "--role", "supervisor",
		"--display-name", "Kim K", "--capacity", "5", "--services", "default"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `created supervisor "kim"`) {
		t.Fatalf("add printed %q", out.String())
	}
	for name, args := range map[string][]string{
		"ErrDuplicate":    {"add", "--database-url", db, "--username", "KIM", "--password", "another-pass"},
		"ErrShortPass":    {"add", "--database-url", db, "--username", "lee", "--password", "short"},
		"ErrBadRole":      {"add", "--database-url", db, "--username", "lee", "--password", "long-enough", "--role", "boss"},
		"ErrBadService":   {"add", "--database-url", db, "--username", "lee", "--password", "long-enough", "--services", "nope"},
		"ErrBadCapacity":  {"add", "--database-url", db, "--username", "lee", "--password", "long-enough", "--capacity", "99"},
		"ErrUnknownVerb":  {"remove", "--database-url", db},
		"ErrNoSubcommand": {},
	} {
		if err := runUser(ctx, args, &out); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want a one-line error, got %v", name, err)
		}
	}
	out.Reset()
	if err := runUser(ctx, []string{"list", "--database-url", db}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "kim") || !strings.Contains(lines[1], "supervisor") || !strings.Contains(lines[1], "5") {
		t.Fatalf("list:\n%s", out.String())
	}
	// The new user can sign in.
	m := startNode(t, db)
	if _, err := m.Accounts.Login(ctx, "Kim", "s3cret-pass", "test"); err != nil {
		t.Fatalf("login as the CLI-created user: %v", err)
	}
}

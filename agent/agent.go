// Package agent holds the agent side of agentd: users and their roles, presence and capacity,
// routing (which queued chat goes to which agent), offers, transfer, wrap-up, the after-chat survey
// and the co-browse launch rule. It imports neither HTTP nor SQL: the web surfaces call it and
// postgres implements its stores.
//
// It is several services, each built from a Deps struct with the narrow store interface it
// declares and an injected clock: Accounts (users, sign-in, browser sessions), Router (the
// routing loop, woken through its Wakeup mailbox), Service (an agent's work on chats), Surveys,
// History and Admin. Service decides and validates; the store commits each operation once,
// with its UserData, audit row and notifications.
package agent

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"agentd"
)

// Role is what a user may do.
type Role string

// Roles. A supervisor can do what an agent can; an admin what a supervisor can.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAgent, RoleSupervisor, RoleAdmin:
		return r, nil
	}
	return "", agentd.Errorf(agentd.EINVALID, "invalid_argument", "Role must be agent, supervisor or admin.")
}

// AtLeast reports whether r includes the rights of min. An unknown role on either side is never
// enough: a typo in a route's role fails closed.
func (r Role) AtLeast(min Role) bool {
	rank := map[Role]int{RoleAgent: 1, RoleSupervisor: 2, RoleAdmin: 3}
	have, ok1 := rank[r]
	need, ok2 := rank[min]
	return ok1 && ok2 && have >= need
}

// State is an agent's presence.
type State string

// Presence states.
const (
	StateOffline  State = "offline"
	StateReady    State = "ready"
	StateNotReady State = "not_ready"
)

// NotReadyReasons are the reasons an agent can pick; the router uses its own ("Missed offer").
var NotReadyReasons = []string{"Break", "Lunch", "Meeting", "Training", "After-call work"}

// ReasonMissedOffer is set when an offer timed out.
const ReasonMissedOffer = "Missed offer"

// DefaultCapacity is the number of concurrent chats of a new agent.
const DefaultCapacity = 3

// User is a person who signs in: an agent, supervisor or admin.
type User struct {
	ID             int64
	Username       string
	DisplayName    string
	Role           Role
	Capacity       int
	Disabled       bool
	State          State
	NotReadyReason string
	StateSince     time.Time
	Services       []string // service names the user takes chats from
	CreatedAt      time.Time
}

// NewUser is what creating a user needs.
type NewUser struct {
	Username    string
	Password    string
	Role        Role
	DisplayName string
	Capacity    int
	Services    []string
}

// usernameRE is the users table's CHECK: ASCII so that look-alike names cannot be made.
var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Validate checks a new user and fills defaults.
func (u *NewUser) Validate() error {
	u.Username = strings.TrimSpace(u.Username)
	if !usernameRE.MatchString(u.Username) {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Username must be 1 to 64 characters: letters, digits, '.', '_', '-', '@', starting with a letter or digit.")
	}
	if utf8.RuneCountInString(u.Password) < 8 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Password must have at least 8 characters.")
	}
	if len(u.Password) > 72 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Password must be at most 72 bytes.")
	}
	if _, err := ParseRole(string(u.Role)); err != nil {
		return err
	}
	u.DisplayName = strings.TrimSpace(u.DisplayName)
	if u.DisplayName == "" {
		u.DisplayName = u.Username
	}
	if utf8.RuneCountInString(u.DisplayName) > 100 || strings.ContainsAny(u.DisplayName, "\x00\r\n") {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Display name must be one line of at most 100 characters.")
	}
	if u.Capacity == 0 {
		u.Capacity = DefaultCapacity
	}
	if u.Capacity < 0 || u.Capacity > 50 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Capacity must be between 0 and 50.")
	}
	return nil
}

// HashPassword hashes a password with bcrypt.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// dummyHash is compared against when a username does not exist, so a login takes as long for an
// unknown user as for a wrong password and does not reveal which usernames exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), bcrypt.DefaultCost)

// CheckPassword reports whether password matches hash; with an empty hash it still spends the
// time of a comparison.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

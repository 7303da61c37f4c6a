// Package userdata holds the rules for UserData, the key/value pairs attached to an interaction:
// who owns a key, who may see and change it, what values are allowed and how large it may grow.
// It is pure: the postgres package applies these rules inside the transaction that writes.
package userdata

import (
	"encoding/json"
	"strings"
	"time"
)

// Owner records who wrote a key last. Integrations are "integration:<name>".
type Owner string

// The owners. Keys with ReservedPrefix are always OwnerSystem.
const (
	OwnerClient   Owner = "client"
	OwnerAgent    Owner = "agent"
	OwnerStrategy Owner = "strategy"
	OwnerSystem   Owner = "system"
)

// ReservedPrefix marks keys that only agentd itself writes.
const ReservedPrefix = "_agentd."

// IntegrationOwner returns the owner for the integration with the given name.
func IntegrationOwner(name string) Owner { return Owner("integration:" + name) }

// Valid reports whether o is a known owner.
func (o Owner) Valid() bool {
	switch o {
	case OwnerClient, OwnerAgent, OwnerStrategy, OwnerSystem:
		return true
	}
	name, ok := strings.CutPrefix(string(o), "integration:")
	return ok && name != ""
}

// Well-known keys.
const (
	KeyFirstName                = "FirstName"
	KeyLastName                 = "LastName"
	KeyEmailAddress             = "EmailAddress"
	KeySubject                  = "Subject"
	KeyCoBrowseSessionID        = "CoBrowseSessionId"
	KeyCoBrowseAssociated       = "CoBrowseAssociated"
	KeyCoBrowseStartTime        = "CoBrowseStartTime"
	KeyCoBrowseSessionsQuantity = "CoBrowseSessionsQuantity"
	KeySurveyURL                = "SurveyURL"
	KeyDisposition              = "Disposition"
)

// Entry is one key of an interaction's UserData as stored.
type Entry struct {
	Key       string
	Value     json.RawMessage // a JSON string, number or boolean
	Owner     Owner
	Visible   bool // visible to the customer although not owned by it
	UpdatedAt time.Time
}

// CustomerCanRead reports whether the customer API may see e: keys the customer wrote, and keys
// marked customer-visible. Everything else answers as absent.
func (e Entry) CustomerCanRead() bool { return e.Owner == OwnerClient || e.Visible }

// Change is one requested write. A nil Value deletes the key. Visible, when set, changes the
// customer visibility (ignored for the client, whose keys are always visible to it).
type Change struct {
	Key     string
	Value   any
	Visible *bool
}

// Op is what a History row records.
type Op string

// History operations.
const (
	OpSet    Op = "set"
	OpDelete Op = "delete"
)

// HistoryEntry is one change in an interaction's UserData history.
type HistoryEntry struct {
	Seq        int64 // the interaction's side-channel sequence number
	Key        string
	Op         Op
	OldValue   json.RawMessage // nil when the key did not exist
	NewValue   json.RawMessage // nil on delete
	Owner      Owner           // who made the change
	ActorName  string          // display name of the actor, when known
	Visible    bool            // customer-visible after the change
	WasVisible bool            // customer-visible before the change
	At         time.Time
}

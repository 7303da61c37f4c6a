package userdata

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"agentd"
)

// Limits bound the UserData of one interaction. They are configurable (docs/configuration.md).
type Limits struct {
	MaxKeyLen     int // characters per key
	MaxValueBytes int // encoded bytes per value
	MaxKeys       int // keys per interaction
	MaxTotalBytes int // sum of key and encoded value bytes per interaction
}

// DefaultLimits are generous for chat metadata while keeping a hostile page from turning an
// interaction into a blob store.
var DefaultLimits = Limits{MaxKeyLen: 128, MaxValueBytes: 4096, MaxKeys: 100, MaxTotalBytes: 64 << 10}

// Write is one planned row change, produced by Plan.
type Write struct {
	Key        string
	Op         Op
	Old        *Entry // nil when the key did not exist
	Value      json.RawMessage
	Owner      Owner // who makes the change (the new owner of a set key)
	Visible    bool
	WasVisible bool
}

// ValidateKey checks a key's shape: non-empty, valid UTF-8, no control characters, not too long.
func ValidateKey(key string, lim Limits) error {
	switch {
	case key == "":
		return agentd.Errorf(agentd.EINVALID, "userdata_invalid_key", "UserData key must not be empty.")
	case !utf8.ValidString(key):
		return agentd.Errorf(agentd.EINVALID, "userdata_invalid_key", "UserData key is not valid UTF-8.")
	case utf8.RuneCountInString(key) > lim.MaxKeyLen:
		return agentd.Errorf(agentd.EINVALID, "userdata_invalid_key", "UserData key is longer than %d characters.", lim.MaxKeyLen)
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return agentd.Errorf(agentd.EINVALID, "userdata_invalid_key", "UserData key %q contains a control character.", key)
	}
	return nil
}

// EncodeValue validates v and returns its canonical JSON. Allowed: strings (valid UTF-8, no NUL),
// finite numbers and booleans. json.RawMessage and json.Number are decoded and checked the same way.
func EncodeValue(key string, v any, lim Limits) (json.RawMessage, error) {
	bad := func(format string, args ...any) error {
		return agentd.Errorf(agentd.EINVALID, "userdata_invalid_value", "UserData %q: "+format, append([]any{key}, args...)...)
	}
	switch x := v.(type) {
	case json.RawMessage:
		var decoded any
		dec := json.NewDecoder(strings.NewReader(string(x)))
		dec.UseNumber()
		if err := dec.Decode(&decoded); err != nil {
			return nil, bad("value is not valid JSON.")
		}
		if decoded == nil {
			return nil, bad("value must be a string, number or boolean, not null.")
		}
		return EncodeValue(key, decoded, lim)
	case string:
		if !utf8.ValidString(x) {
			return nil, bad("value is not valid UTF-8.")
		}
		if strings.IndexByte(x, 0) >= 0 {
			return nil, bad("value contains a NUL character.")
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, bad("value is not a finite number.")
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, bad("value is not a finite number.")
		}
	case float32, int, int32, int64, uint, uint32, uint64, bool:
	default:
		return nil, bad("value must be a string, number or boolean, not %T.", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, bad("value cannot be encoded.")
	}
	if len(b) > lim.MaxValueBytes {
		return nil, bad("value is longer than %d bytes.", lim.MaxValueBytes)
	}
	return b, nil
}

// errForbidden is the one answer for a write the actor may not make. It is the same whether or not
// the customer can see the key, so a refused write never reveals that a hidden key exists.
func errForbidden(key string) error {
	return agentd.Errorf(agentd.EFORBIDDEN, "userdata_forbidden", "UserData key %q cannot be changed by this party.", key)
}

// mayWrite applies the ownership rules: the customer may create keys and change or delete keys it
// owns; agents may change anything but system keys; reserved keys are system-only.
func mayWrite(actor Owner, key string, old *Entry) bool {
	if strings.HasPrefix(key, ReservedPrefix) {
		return actor == OwnerSystem
	}
	switch {
	case actor == OwnerSystem:
		return true
	case old == nil:
		return true
	case actor == OwnerClient:
		return old.Owner == OwnerClient
	default:
		return old.Owner != OwnerSystem
	}
}

// Plan checks changes by actor against the existing entries (keyed by key) and the limits, and
// returns the writes to make. It either accepts every change or returns the first error: a
// request is applied whole or not at all. Deleting an absent key is not an error (nothing to do).
// A key owned by someone else answers userdata_forbidden whether or not the customer can see it.
func Plan(actor Owner, existing map[string]Entry, changes []Change, lim Limits) ([]Write, error) {
	if !actor.Valid() {
		return nil, fmt.Errorf("userdata: plan: unknown owner %q", actor)
	}
	keys := len(existing)
	total := 0
	for _, e := range existing {
		total += len(e.Key) + len(e.Value)
	}
	keysBefore, totalBefore := keys, total
	seen := make(map[string]bool, len(changes))
	writes := make([]Write, 0, len(changes))
	for _, c := range changes {
		if err := ValidateKey(c.Key, lim); err != nil {
			return nil, err
		}
		if seen[c.Key] {
			return nil, agentd.Errorf(agentd.EINVALID, "userdata_invalid_key", "UserData key %q appears twice.", c.Key)
		}
		seen[c.Key] = true
		var old *Entry
		if e, ok := existing[c.Key]; ok {
			old = &e
		}
		if !mayWrite(actor, c.Key, old) {
			return nil, errForbidden(c.Key)
		}
		wasVisible := old != nil && old.CustomerCanRead()
		if c.Value == nil {
			if old == nil {
				continue
			}
			writes = append(writes, Write{Key: c.Key, Op: OpDelete, Old: old, Owner: actor, WasVisible: wasVisible})
			keys--
			total -= len(old.Key) + len(old.Value)
			continue
		}
		val, err := EncodeValue(c.Key, c.Value, lim)
		if err != nil {
			return nil, err
		}
		// The customer's keys are its own to read. Anyone else who writes a key makes it theirs,
		// and it is visible only if that writer says so: a key the customer created first (say
		// Disposition, before the agent's wrap-up) must not hand the customer what the agent
		// writes into it. The console's edit form always says, with its "Visible to customer" box.
		visible := actor == OwnerClient
		if c.Visible != nil && actor != OwnerClient {
			visible = *c.Visible
		}
		if old == nil {
			keys++
		} else {
			total -= len(old.Key) + len(old.Value)
		}
		total += len(c.Key) + len(val)
		writes = append(writes, Write{Key: c.Key, Op: OpSet, Old: old, Value: val, Owner: actor, Visible: visible, WasVisible: wasVisible})
	}
	// The key count and total size limits bound what the customer can add. agentd's own writes
	// and the agents' get the same allowance again on top, so a page that filled its UserData
	// cannot block routing, wrap-up, co-browse or the survey. A request that does not grow
	// UserData is never refused for its size, even past a limit (after staff writes).
	maxKeys, maxTotal := lim.MaxKeys, lim.MaxTotalBytes
	if actor != OwnerClient {
		maxKeys, maxTotal = 2*maxKeys, 2*maxTotal
	}
	if keys > maxKeys && keys > keysBefore {
		return nil, agentd.Errorf(agentd.EINVALID, "userdata_too_many_keys", "UserData would have more than %d keys.", maxKeys)
	}
	if total > maxTotal && total > totalBefore {
		return nil, agentd.Errorf(agentd.EINVALID, "userdata_too_large", "UserData would be larger than %d bytes.", maxTotal)
	}
	return writes, nil
}

// ChangesOf turns a key → value object (as the customer API sends it) into changes, sorted by key
// so the history records them in a stable order.
func ChangesOf(values map[string]json.RawMessage) []Change {
	keys := slices.Sorted(maps.Keys(values))
	changes := make([]Change, len(keys))
	for i, k := range keys {
		changes[i] = Change{Key: k, Value: values[k]}
	}
	return changes
}

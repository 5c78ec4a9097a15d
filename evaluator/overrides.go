package evaluator

import (
	"encoding/json"
	"slices"
	"time"
)

// OverrideInfo describes an override entry that currently applies to a
// subject: where it comes from, what it serves, until when and why.
type OverrideInfo struct {
	Key       string      `json:"key"`
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	// Source is the Result.Source the entry produces.
	Source    string     `json:"source"`
	Object    ObjectRef  `json:"object"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	// Mode is "on" (the flag's on value), "off" (its off value) or "value"
	// (Value is served).
	Mode  string          `json:"mode"`
	Value json.RawMessage `json:"value,omitempty"`
}

func infoOf(oe *objEntry) OverrideInfo {
	o := oe.obj
	info := OverrideInfo{
		Key: oe.key, Kind: o.ov.Kind, SubjectID: o.ov.SubjectID, Source: o.source,
		Object: o.objectRef(), CreatedAt: o.ov.CreatedAt, Reason: o.ov.Reason, Mode: oe.mode.String(),
	}
	if at, ok := o.expiry(); ok {
		info.ExpiresAt = &at
	}
	if oe.mode == modeValue {
		info.Value = oe.val.raw
	}
	return info
}

// UserOverrides lists, sorted by key, the override entries that apply to a
// user now: the winning entry per flag among valid, enabled, unexpired
// overrides. It does not consider the role gate, which needs a context.
func (n Namespace) UserOverrides(userID string) []OverrideInfo {
	return n.overrides(SubjectUser, userID)
}

// DeviceOverrides is UserOverrides for a device. It does not consider device
// class eligibility, which needs a context.
func (n Namespace) DeviceOverrides(deviceID string) []OverrideInfo {
	return n.overrides(SubjectDevice, deviceID)
}

// UserOverride returns the override entry that applies to (user, key) now.
// Like UserOverrides it does not consider the role gate.
func (n Namespace) UserOverride(userID, key string) (OverrideInfo, bool) {
	return n.override(SubjectUser, userID, key)
}

// DeviceOverride returns the override entry that applies to (device, key)
// now. Like DeviceOverrides it does not consider device class eligibility.
func (n Namespace) DeviceOverride(deviceID, key string) (OverrideInfo, bool) {
	return n.override(SubjectDevice, deviceID, key)
}

func (n Namespace) override(kind SubjectKind, id, key string) (OverrideInfo, bool) {
	if n.st == nil {
		return OverrideInfo{}, false
	}
	oe := n.st.effective(kind, id, key, n.now())
	if oe == nil {
		return OverrideInfo{}, false
	}
	return infoOf(oe), true
}

// HasUserOverride reports whether an override entry applies to (user, key)
// now.
func (n Namespace) HasUserOverride(userID, key string) bool {
	_, ok := n.UserOverride(userID, key)
	return ok
}

func (n Namespace) overrides(kind SubjectKind, id string) []OverrideInfo {
	if n.st == nil || id == "" {
		return nil
	}
	se := n.st.subject(subjKey{kind, id})
	if se == nil {
		return nil
	}
	now := n.now()
	var out []OverrideInfo
	for _, kc := range se.keys {
		for _, oe := range kc.list {
			if oe.active(now) {
				out = append(out, infoOf(oe))
				break
			}
		}
	}
	return out
}

// OverrideState says whether an override entry naming a flag applies now,
// and if not, why not.
type OverrideState string

// Override states, in the order FlagOverrides checks them.
const (
	// OverrideInvalid: the entry is never served (FlagOverride.Error says
	// why, "unknown flag" when the flag does not exist).
	OverrideInvalid OverrideState = "invalid"
	// OverrideDisabled: the object has enabled false.
	OverrideDisabled OverrideState = "disabled"
	// OverrideExpired: the object's expiresAt has passed.
	OverrideExpired OverrideState = "expired"
	// OverrideLost: another object's entry for the same (subject, key)
	// wins (FlagOverride.Winner).
	OverrideLost OverrideState = "lost"
	// OverrideApplies: the entry is the subject's override for the flag.
	OverrideApplies OverrideState = "applies"
)

// FlagOverride is one override entry naming a flag, with its state now.
type FlagOverride struct {
	OverrideInfo
	// Enabled is the object's enabled.
	Enabled bool          `json:"enabled"`
	State   OverrideState `json:"state"`
	// Error is why an invalid entry is never served.
	Error string `json:"error,omitempty"`
	// Winner is the object whose entry wins when State is lost.
	Winner *ObjectRef `json:"winner,omitempty"`
}

// FlagOverridesPage is one page of the overrides naming a flag.
type FlagOverridesPage struct {
	// FlagExists reports whether the namespace has the flag (compiled or
	// not). Overrides may name a key before its flag exists.
	FlagExists bool
	// Total is the number of entries naming the key, on every page.
	Total int
	// Overrides are the page's entries.
	Overrides []FlagOverride
	// Next is the position to continue from, nil on the last page.
	Next *OverrideCursor
}

// FlagOverrides lists the override entries of the namespace (user and
// device) that name key, sorted by kind (device before user), subject id
// and object name: the entries after the cursor after (nil: from the
// start), at most limit of them (limit <= 0: all). Each entry's state is
// decided as of now, as evaluation decides it: invalid, disabled, expired,
// losing to an older entry for the same (subject, key), or applying. Like
// UserOverrides it does not consider the role gate or device-class
// eligibility, which need a context.
//
// It reads every override object of the namespace: there is no index by
// flag key, because keeping one costs every write, and this listing is for
// operators, not for evaluation (docs/benchmarks.md measures it at 100,000
// overrides).
func (n Namespace) FlagOverrides(key string, after *OverrideCursor, limit int) FlagOverridesPage {
	var page FlagOverridesPage
	if n.st == nil {
		return page
	}
	page.FlagExists = n.st.flags[key] != nil
	type item struct {
		at OverrideCursor
		e  *objEntry
	}
	var items []item
	n.st.objs.each(func(sh *objShard) {
		for _, obj := range sh.m {
			for i := range obj.entries {
				if e := &obj.entries[i]; e.key == key {
					// An object has at most one entry per key.
					items = append(items, item{cursorOf(e), e})
					break
				}
			}
		}
	})
	page.Total = len(items)
	slices.SortFunc(items, func(a, b item) int { return a.at.compare(b.at) })
	start := 0
	if after != nil {
		var found bool
		start, found = slices.BinarySearchFunc(items, *after, func(it item, c OverrideCursor) int { return it.at.compare(c) })
		if found {
			start++
		}
	}
	end := len(items)
	if limit > 0 && start+limit < end {
		end = start + limit
		page.Next = &items[end-1].at
	}
	now := n.now()
	for _, it := range items[start:end] {
		page.Overrides = append(page.Overrides, n.flagOverride(it.e, now))
	}
	return page
}

func (n Namespace) flagOverride(e *objEntry, now time.Time) FlagOverride {
	o := e.obj
	fo := FlagOverride{OverrideInfo: infoOf(e), Enabled: o.ov.Enabled}
	if e.mode == modeValue {
		fo.Value = e.val.raw // also for an invalid value, which has no parsed form
	}
	switch {
	case e.invalid != "":
		fo.State, fo.Error = OverrideInvalid, e.invalid
	case !o.ov.Enabled:
		fo.State = OverrideDisabled
	case o.expiredAt(now):
		fo.State = OverrideExpired
	default:
		fo.State = OverrideApplies
		if w := n.st.effective(o.ov.Kind, o.ov.SubjectID, e.key, now); w != e {
			ref := w.obj.objectRef()
			fo.State, fo.Winner = OverrideLost, &ref
		}
	}
	return fo
}

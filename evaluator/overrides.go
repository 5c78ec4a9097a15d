package evaluator

import (
	"encoding/json"
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
	if o.expires {
		at := o.expAt
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
func (n Namespace) UserOverride(userID, key string) (OverrideInfo, bool) {
	if n.st == nil {
		return OverrideInfo{}, false
	}
	oe := n.st.effective(SubjectUser, userID, key, n.now())
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

package evaluator

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func ptr[T any](v T) *T { return &v }

func mustApply(tb testing.TB, s *Store, ops ...Op) ChangeSet {
	tb.Helper()
	_, cs, err := s.Apply(ops...)
	if err != nil {
		tb.Fatalf("apply: %v", err)
	}
	return cs
}

func boolFlag(enabled bool) FlagSpec { return FlagSpec{Type: TypeBoolean, Enabled: enabled} }

func userOverride(ns, name, user string, created time.Time, entries ...OverrideEntry) Override {
	return Override{Kind: SubjectUser, SubjectID: user, Namespace: ns, Name: name, UID: "uid-" + name,
		CreatedAt: created, Enabled: true, Entries: entries}
}

func deviceOverride(ns, name, device string, created time.Time, entries ...OverrideEntry) Override {
	o := userOverride(ns, name, device, created, entries...)
	o.Kind = SubjectDevice
	return o
}

func on(key string) OverrideEntry  { return OverrideEntry{Key: key, Enabled: ptr(true)} }
func off(key string) OverrideEntry { return OverrideEntry{Key: key, Enabled: ptr(false)} }
func val(key, v string) OverrideEntry {
	return OverrideEntry{Key: key, Value: raw(v)}
}

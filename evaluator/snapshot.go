package evaluator

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Snapshot is an immutable view of the store at one revision. It is safe for
// concurrent use and stays valid after later writes.
type Snapshot struct {
	rev   uint64
	asOf  time.Time
	clock Clock
	nss   map[string]*nsState
}

// Revision returns the snapshot's revision; each write increments it.
func (s *Snapshot) Revision() uint64 { return s.rev }

// AsOf returns the time of the write that produced the snapshot. Status
// queries (Conflicts, OverrideStatus) are answered as of this instant;
// evaluation always uses the clock.
func (s *Snapshot) AsOf() time.Time { return s.asOf }

// Namespace returns a handle to one namespace. A namespace without flags or
// overrides yields a handle whose evaluations report FLAG_NOT_FOUND.
func (s *Snapshot) Namespace(ns string) Namespace {
	return Namespace{snap: s, st: s.nss[ns], name: ns}
}

// Namespaces returns the names of all non-empty namespaces, sorted.
func (s *Snapshot) Namespaces() []string {
	out := make([]string, 0, len(s.nss))
	for k := range s.nss {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *Snapshot) flag(ns, key string) *Flag {
	if st := s.nss[ns]; st != nil {
		if fe := st.flags[key]; fe != nil {
			return fe.flag
		}
	}
	return nil
}

// Flag returns the compiled flag, if it exists and compiled.
func (s *Snapshot) Flag(ns, key string) (*Flag, bool) {
	f := s.flag(ns, key)
	return f, f != nil
}

// FlagError returns the compile error of a stored flag, or nil when the flag
// compiled or does not exist.
func (s *Snapshot) FlagError(ns, key string) error {
	if st := s.nss[ns]; st != nil {
		if fe := st.flags[key]; fe != nil {
			return fe.err
		}
	}
	return nil
}

// ObjectRef identifies an override object.
type ObjectRef struct {
	Kind      SubjectKind `json:"kind"`
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	UID       string      `json:"uid,omitempty"`
}

func (o *overrideObj) objectRef() ObjectRef {
	return ObjectRef{Kind: o.ov.Kind, Namespace: o.ov.Namespace, Name: o.ov.Name, UID: o.ov.UID}
}

// Conflict reports that Loser's entry for (subject, key) is shadowed by
// Winner's.
type Conflict struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Key       string      `json:"key"`
	Winner    ObjectRef   `json:"winner"`
	Loser     ObjectRef   `json:"loser"`
}

// Conflicts lists, as of AsOf, every active override entry of namespace ns
// that loses to an older (or, at equal CreatedAt, lower namespace/name)
// active entry for the same (subject, key). Inactive entries (disabled,
// expired or invalid objects) do not compete. The list is sorted.
func (s *Snapshot) Conflicts(ns string) []Conflict {
	st := s.nss[ns]
	if st == nil {
		return nil
	}
	var out []Conflict
	for _, kind := range [...]SubjectKind{SubjectUser, SubjectDevice} {
		st.subjects(kind).each(func(sh *subjShard) {
			for _, slot := range sh.slots {
				se := slot.se
				if se == nil {
					continue
				}
				id := se.id
				for _, kc := range se.keys {
					var winner *objEntry
					for _, e := range kc.list {
						if !e.active(s.asOf) {
							continue
						}
						if winner == nil {
							winner = e
							continue
						}
						out = append(out, Conflict{Kind: kind, SubjectID: id, Key: kc.key,
							Winner: winner.obj.objectRef(), Loser: e.obj.objectRef()})
					}
				}
			}
		})
	}
	slices.SortFunc(out, func(a, b Conflict) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.SubjectID, b.SubjectID),
			strings.Compare(a.Key, b.Key), strings.Compare(a.Loser.Name, b.Loser.Name))
	})
	return out
}

// EntryError reports an override entry that is never served.
type EntryError struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// LostEntry reports an override entry shadowed by another object's entry.
type LostEntry struct {
	Key    string    `json:"key"`
	Winner ObjectRef `json:"winner"`
}

// OverrideStatus is what a controller needs to write an override object's
// status, as of the snapshot's AsOf.
type OverrideStatus struct {
	// Expired is true once ExpiresAt has passed.
	Expired bool `json:"expired"`
	// Invalid lists entries that are never served: unknown flag ("unknown
	// flag"), a flag that failed to compile, a value of the wrong type or
	// failing the schema, or a duplicate key.
	Invalid []EntryError `json:"invalid,omitempty"`
	// Lost lists entries that lose a conflict (only for enabled, unexpired
	// objects).
	Lost []LostEntry `json:"lost,omitempty"`
	// Applied lists the keys this object currently decides.
	Applied []string `json:"applied,omitempty"`
}

// OverrideStatus returns the status of the user or device override object
// ns/name.
func (s *Snapshot) OverrideStatus(kind SubjectKind, ns, name string) (OverrideStatus, bool) {
	st := s.nss[ns]
	if st == nil {
		return OverrideStatus{}, false
	}
	obj := st.object(kind, name)
	if obj == nil {
		return OverrideStatus{}, false
	}
	status := OverrideStatus{Expired: obj.expiredAt(s.asOf)}
	for i := range obj.entries {
		e := &obj.entries[i]
		if e.invalid != "" {
			status.Invalid = append(status.Invalid, EntryError{Key: e.key, Message: e.invalid})
			continue
		}
		if !e.active(s.asOf) {
			continue
		}
		w := st.effective(obj.ov.Kind, obj.ov.SubjectID, e.key, s.asOf)
		if w == e {
			status.Applied = append(status.Applied, e.key)
		} else if w != nil {
			status.Lost = append(status.Lost, LostEntry{Key: e.key, Winner: w.obj.objectRef()})
		}
	}
	status.Invalid = append(status.Invalid, obj.dups...)
	return status, true
}

// Namespace is a handle to one namespace of a snapshot. It is a small value,
// safe for concurrent use; take a fresh one from the Store per request to
// see new writes. A handle to a namespace without flags reports
// FLAG_NOT_FOUND; the zero value is attached to no snapshot and reports
// GENERAL.
type Namespace struct {
	snap *Snapshot
	st   *nsState
	name string
}

// Name returns the namespace name.
func (n Namespace) Name() string { return n.name }

// Revision returns the revision of the snapshot the handle belongs to.
func (n Namespace) Revision() uint64 {
	if n.snap == nil {
		return 0
	}
	return n.snap.rev
}

// Keys returns the keys of all flags in the namespace, sorted.
func (n Namespace) Keys() []string {
	if n.st == nil {
		return nil
	}
	out := make([]string, len(n.st.flagList))
	for i, fe := range n.st.flagList {
		out[i] = fe.key
	}
	return out
}

func (n Namespace) now() time.Time {
	if n.snap == nil || n.snap.clock == nil {
		return time.Now()
	}
	return n.snap.clock.Now()
}

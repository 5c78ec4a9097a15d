package evaluator

import (
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultChangeHistory is the number of change sets a Store retains for
// Changes unless WithChangeHistory says otherwise.
const DefaultChangeHistory = 1024

// WithChangeHistory sets how many of the latest change sets the store
// retains for Changes. n < 1 selects 1.
func WithChangeHistory(n int) Option {
	return func(s *Store) {
		s.feed.ring = make([]ChangeSet, max(n, 1))
	}
}

// feed is the bounded history of published change sets. Its own mutex is
// held only to store one change set (writers) or to copy slice headers
// (readers), so readers never wait for a commit and never delay one by
// more than that copy.
type feed struct {
	mu     sync.Mutex
	ring   []ChangeSet // ring[(rev-1) % len] holds revision rev
	last   uint64      // revision of the latest retained change set
	notify chan struct{}
}

// publish makes snap current and records its change set cs (revision
// f.last+1) under f.mu, so that a reader that loaded snap and then calls
// Changes finds cs; then it wakes waiters. Called with Store.mu held.
func (f *feed) publish(cur *atomic.Pointer[Snapshot], snap *Snapshot, cs ChangeSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur.Store(snap)
	f.ring[(cs.Revision-1)%uint64(len(f.ring))] = cs
	f.last = cs.Revision
	close(f.notify)
	f.notify = make(chan struct{})
}

// Changes returns the retained change sets of the revisions after since, in
// revision order, and a channel that is closed at the next publish. Every
// Apply and Tick publishes exactly one change set, also when it is empty,
// so the revisions of the returned change sets are consecutive (since+1,
// since+2, ...) and a follower can tell that it has seen every write. ok
// is false when revision since+1 is no longer retained (see
// WithChangeHistory): the caller must resynchronise from a Snapshot and
// continue from its revision. A since at or beyond the current revision
// returns no change sets and ok true.
//
// Changes is consistent with Snapshot: when a snapshot at revision r was
// loaded before the call and since < r, the result includes revision r.
// A follower therefore loads the snapshot first, then calls Changes and
// ignores change sets after the snapshot's revision: the remaining ones
// are exactly what happened between since and the snapshot.
//
// The returned change sets share their Flags and Subjects slices with the
// store and with other readers; they must not be modified. Readers never
// block writers beyond the copy of the returned slice headers.
func (s *Store) Changes(since uint64) ([]ChangeSet, <-chan struct{}, bool) {
	f := &s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if since >= f.last {
		return nil, f.notify, true
	}
	n := uint64(len(f.ring))
	if f.last-since > n {
		return nil, f.notify, false
	}
	out := make([]ChangeSet, 0, f.last-since)
	for rev := since + 1; rev <= f.last; rev++ {
		out = append(out, f.ring[(rev-1)%n])
	}
	return out, f.notify, true
}

// DeviceClasses returns the device classes eligible for device overrides of
// the flag (DefaultDeviceClasses when the spec lists none). The slice must
// not be modified.
func (f *Flag) DeviceClasses() []string { return f.devClasses }

// EligibleDeviceClass reports whether class is eligible for device
// overrides of at least one compiled flag of the namespace. The empty class
// is always eligible, as in evaluation.
func (n Namespace) EligibleDeviceClass(class string) bool {
	if class == "" {
		return true
	}
	if n.st == nil {
		return false
	}
	for _, fe := range n.st.flagList {
		if fe.flag != nil && slices.Contains(fe.flag.devClasses, class) {
			return true
		}
	}
	return false
}

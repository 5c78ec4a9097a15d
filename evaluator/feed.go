package evaluator

import (
	"cmp"
	"slices"
	"strings"
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
		s.feed.ring = make([]feedEntry, max(n, 1))
	}
}

// DefaultMaxRetainedChanges is the largest change set, in changes listed
// (flags, subject changes and overrides), that a Store retains for Changes
// unless WithMaxRetainedChanges says otherwise.
const DefaultMaxRetainedChanges = 1 << 16

// WithMaxRetainedChanges sets the largest change set, in changes listed,
// that the store retains for Changes. A larger one, such as the first load
// of a large store, is published but not retained: the store does not keep
// a list of everything it holds for as long as the history lasts, and a
// reader that would have to read it resynchronises from a snapshot instead
// (Changes returns ok false, ChangesFor Complete false), which costs it no
// more than reading such a list. Every follower is woken by it. n < 1
// selects 1.
func WithMaxRetainedChanges(n int) Option {
	return func(s *Store) { s.feed.maxChanges = max(n, 1) }
}

// feed is the bounded history of published change sets and the registry
// of followers. Its own mutex is held only to store one change set and
// close the wake channels of the followers it concerns (writers), or to
// copy slice headers and hand out a wake channel (readers), so readers
// never wait for a commit and never delay one by more than that copy.
type feed struct {
	mu   sync.Mutex
	ring []feedEntry // ring[(rev-1) % len] holds revision rev
	last uint64      // revision of the latest retained change set
	// maxChanges is the largest change set retained (WithMaxRetainedChanges).
	maxChanges int
	// dropped is the revision of the latest change set not retained, 0 for none.
	dropped uint64
	notify  chan struct{}
	// followers are the open followers by topic.
	followers map[Topic]map[*Follower]struct{}
}

// feedEntry is one published change set and the keys it touched per
// topic.
type feedEntry struct {
	cs     ChangeSet
	topics map[Topic][]string
}

// topicsOf indexes a change set by topic: the namespace's flags for each
// flag, the subject's overrides for each subject change.
func topicsOf(cs *ChangeSet) map[Topic][]string {
	if cs.Empty() {
		return nil
	}
	m := make(map[Topic][]string)
	for _, f := range cs.Flags {
		t := FlagsTopic(f.Namespace)
		m[t] = append(m[t], f.Key)
	}
	for _, sc := range cs.Subjects {
		t := SubjectTopic(sc.Namespace, sc.Kind, sc.SubjectID)
		m[t] = append(m[t], sc.Key)
	}
	return m
}

// publish makes snap current and records its change set cs (revision
// f.last+1) under f.mu, so that a reader that loaded snap and then calls
// Changes finds cs, and a follower's read returns snap and cs together.
// Then it wakes the Changes waiters and closes the wake channel of every
// follower of a topic cs touches. Called with Store.mu held.
func (f *feed) publish(cur *atomic.Pointer[Snapshot], snap *Snapshot, cs ChangeSet) {
	drop := len(cs.Flags)+len(cs.Subjects)+len(cs.Overrides) > f.maxChanges
	e := feedEntry{cs: ChangeSet{Revision: cs.Revision}}
	if !drop {
		e = feedEntry{cs: cs, topics: topicsOf(&cs)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur.Store(snap)
	f.ring[(cs.Revision-1)%uint64(len(f.ring))] = e
	f.last = cs.Revision
	close(f.notify)
	f.notify = make(chan struct{})
	if drop {
		f.dropped = cs.Revision
		for _, set := range f.followers {
			for fo := range set {
				fo.wakeLocked()
			}
		}
		return
	}
	for t := range e.topics {
		for fo := range f.followers[t] {
			fo.wakeLocked()
		}
	}
}

// Changes returns the retained change sets of the revisions after since, in
// revision order, and a channel that is closed at the next publish. Every
// Apply and Tick publishes exactly one change set, also when it is empty,
// so the revisions of the returned change sets are consecutive (since+1,
// since+2, ...) and a follower can tell that it has seen every write. ok
// is false when a change set after since is no longer retained (see
// WithChangeHistory and WithMaxRetainedChanges): the caller must resynchronise from a Snapshot and
// continue from its revision. A since at or beyond the current revision
// returns no change sets and ok true.
//
// Changes is consistent with Snapshot: when a snapshot at revision r was
// loaded before the call and since < r, the result includes revision r.
// A follower therefore loads the snapshot first, then calls Changes and
// ignores change sets after the snapshot's revision: the remaining ones
// are exactly what happened between since and the snapshot. Followers
// that wait for changes should use Follow instead, whose reads return the
// snapshot and the change sets together.
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
	if f.last-since > n || since < f.dropped {
		return nil, f.notify, false
	}
	out := make([]ChangeSet, 0, f.last-since)
	for rev := since + 1; rev <= f.last; rev++ {
		out = append(out, f.ring[(rev-1)%n].cs)
	}
	return out, f.notify, true
}

// Topic is a part of a namespace that a Follower watches: the namespace's
// flags (Kind empty), or the overrides of one user or device. A write
// touches the flags topic of a namespace when its change set lists a flag
// of it, and a subject's topic when it lists a (subject, key) pair of it.
type Topic struct {
	Namespace string
	Kind      SubjectKind // empty for the flags topic
	SubjectID string
}

// FlagsTopic is the topic of the flags of namespace ns.
func FlagsTopic(ns string) Topic { return Topic{Namespace: ns} }

// SubjectTopic is the topic of the overrides of one user or device of
// namespace ns.
func SubjectTopic(ns string, kind SubjectKind, id string) Topic {
	return Topic{Namespace: ns, Kind: kind, SubjectID: id}
}

// Follower follows the writes of a Store that touch its topics. Its reads
// (ChangesFor) hand out a wake channel that only those writes close, so a
// write wakes only the followers it concerns. A Follower is used by one
// goroutine at a time; Close it when done.
type Follower struct {
	store  *Store
	topics []Topic
	wake   chan struct{} // guarded by store.feed.mu; nil after a wake
}

// Follow registers a follower of topics (duplicates are ignored).
func (s *Store) Follow(topics ...Topic) *Follower {
	fo := &Follower{store: s}
	f := &s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.followers == nil {
		f.followers = make(map[Topic]map[*Follower]struct{})
	}
	for _, t := range topics {
		set := f.followers[t]
		if set == nil {
			set = make(map[*Follower]struct{})
			f.followers[t] = set
		}
		if _, dup := set[fo]; dup {
			continue
		}
		set[fo] = struct{}{}
		fo.topics = append(fo.topics, t)
	}
	return fo
}

// Close unregisters the follower. Wake channels it handed out and that
// are still open are never closed.
func (fo *Follower) Close() {
	f := &fo.store.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range fo.topics {
		if set := f.followers[t]; set != nil {
			delete(set, fo)
			if len(set) == 0 {
				delete(f.followers, t)
			}
		}
	}
}

func (fo *Follower) wakeLocked() {
	if fo.wake != nil {
		close(fo.wake)
		fo.wake = nil
	}
}

// TopicChanges is one read of the feed by a Follower.
type TopicChanges struct {
	// Snapshot is the store's current snapshot. Every write up to its
	// revision is accounted for: in Keys, or, when Complete is false, not
	// at all (see below).
	Snapshot *Snapshot
	// Keys are the flags whose result may have changed, for a context
	// matching the follower's topics, between revision since (excluded)
	// and Snapshot's revision (included): sorted by namespace and key,
	// without duplicates.
	Keys []FlagRef
	// Complete is false when a change set after since is no longer
	// retained (see WithChangeHistory and WithMaxRetainedChanges); Keys is
	// then empty and the follower must compare everything it derived with
	// Snapshot.
	Complete bool
	// Wake is closed by the first write after Snapshot that touches a
	// topic of the follower. Waiting on it never misses such a write: it
	// was handed out in the same critical section that read Snapshot.
	Wake <-chan struct{}
}

// ChangesFor reads what changed for the follower's topics after revision
// since, with the current snapshot and the channel to wait on when
// nothing did. A follower loop is:
//
//	pos := store.Snapshot().Revision() // after deriving its state from that snapshot
//	for {
//		ch := fo.ChangesFor(pos)
//		// re-derive ch.Keys (or everything, if !ch.Complete) from ch.Snapshot
//		pos = ch.Snapshot.Revision()
//		<-ch.Wake
//	}
//
// No write is missed: a write before the read is in the read (its
// revision is at most the snapshot's), and a write after it closes Wake.
func (fo *Follower) ChangesFor(since uint64) TopicChanges {
	f := &fo.store.feed
	f.mu.Lock()
	snap := fo.store.cur.Load()
	if fo.wake == nil {
		fo.wake = make(chan struct{})
	}
	out := TopicChanges{Snapshot: snap, Complete: true, Wake: fo.wake}
	var entries []map[Topic][]string
	n := uint64(len(f.ring))
	switch {
	case since >= f.last:
	case f.last-since > n || since < f.dropped:
		out.Complete = false
	default:
		for rev := since + 1; rev <= f.last; rev++ {
			if m := f.ring[(rev-1)%n].topics; m != nil {
				entries = append(entries, m)
			}
		}
	}
	f.mu.Unlock()

	// Outside the lock: collect the keys of the follower's topics.
	for _, m := range entries {
		for _, t := range fo.topics {
			for _, key := range m[t] {
				out.Keys = append(out.Keys, FlagRef{Namespace: t.Namespace, Key: key})
			}
		}
	}
	slices.SortFunc(out.Keys, compareFlagRef)
	out.Keys = slices.Compact(out.Keys)
	return out
}

func compareFlagRef(a, b FlagRef) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Key, b.Key))
}

// DeviceClasses returns the device classes eligible for the flag's
// overrides on a device, device and user overrides alike
// (DefaultDeviceClasses when the spec lists none). The slice must not be
// modified.
func (f *Flag) DeviceClasses() []string { return f.devClasses }

// EligibleDeviceClass reports whether class is eligible for overrides of at
// least one compiled flag of the namespace. The empty class, a context that
// is not a device, is always eligible: such a context gets user overrides
// in evaluation. (A context with a deviceId but no deviceClass gets no
// overrides at all; callers reject it before asking.)
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

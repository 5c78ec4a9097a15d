package evaluator

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Clock supplies the current time. Evaluation, Apply and UserOverrides read
// it; tests inject a fake.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now implements Clock.
func (f ClockFunc) Now() time.Time { return f() }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures a Store.
type Option func(*Store)

// WithClock makes the store and its snapshots read time from c.
func WithClock(c Clock) Option {
	return func(s *Store) {
		if c != nil {
			s.clock = c
		}
	}
}

// Store holds the flags and overrides of all namespaces as a sequence of
// immutable snapshots. Readers (Snapshot, Namespace, Evaluate) never lock;
// writers (Apply, Tick, NextDeadline) are serialised by a mutex.
type Store struct {
	clock Clock
	cur   atomic.Pointer[Snapshot]

	mu        sync.Mutex
	gen       uint64
	deadlines deadlineHeap
	compactAt int
	feed      feed
}

// NewStore returns an empty store at revision 0.
func NewStore(opts ...Option) *Store {
	s := &Store{clock: systemClock{}, compactAt: minCompact}
	for _, o := range opts {
		o(s)
	}
	if s.feed.ring == nil {
		s.feed.ring = make([]feedEntry, DefaultChangeHistory)
	}
	if s.feed.maxChanges == 0 {
		s.feed.maxChanges = DefaultMaxRetainedChanges
	}
	s.feed.notify = make(chan struct{})
	s.cur.Store(&Snapshot{asOf: s.clock.Now(), clock: s.clock, nss: map[string]*nsState{}})
	return s
}

// Snapshot returns the current snapshot.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// Namespace returns a handle to a namespace of the current snapshot.
func (s *Store) Namespace(ns string) Namespace { return s.cur.Load().Namespace(ns) }

// Evaluate evaluates key in namespace ns against the current snapshot.
func (s *Store) Evaluate(ns string, ctx Context, key string) Result {
	return s.cur.Load().Namespace(ns).Evaluate(ctx, key)
}

type opKind uint8

const (
	opUpsertFlag opKind = iota + 1
	opDeleteFlag
	opUpsertOverride
	opDeleteOverride
)

// Op is one write in an Apply batch. Build it with UpsertFlag,
// UpsertCompiledFlag, DeleteFlag, UpsertOverride or DeleteOverride.
type Op struct {
	kind opKind
	ns   string
	key  string // flag key or override name
	spec FlagSpec
	flag *Flag
	ov   Override
}

// UpsertFlag creates or replaces a flag. A spec that does not compile is
// stored as invalid: evaluating it returns PARSE_ERROR and FlagError reports
// why.
func UpsertFlag(namespace, key string, spec FlagSpec) Op {
	return Op{kind: opUpsertFlag, ns: namespace, key: key, spec: spec}
}

// UpsertCompiledFlag creates or replaces a flag compiled with Compile.
func UpsertCompiledFlag(namespace string, f *Flag) Op {
	op := Op{kind: opUpsertFlag, ns: namespace, flag: f}
	if f != nil {
		op.key = f.key
	}
	return op
}

// DeleteFlag removes a flag.
func DeleteFlag(namespace, key string) Op {
	return Op{kind: opDeleteFlag, ns: namespace, key: key}
}

// UpsertOverride creates or replaces the override object identified by
// o.Kind, o.Namespace and o.Name.
func UpsertOverride(o Override) Op {
	return Op{kind: opUpsertOverride, ns: o.Namespace, key: o.Name, ov: o}
}

// DeleteOverride removes an override object. User and device overrides are
// distinct objects even when they share a namespace and name.
func DeleteOverride(kind SubjectKind, namespace, name string) Op {
	return Op{kind: opDeleteOverride, ns: namespace, key: name, ov: Override{Kind: kind}}
}

// FlagRef names a flag of a namespace.
type FlagRef struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
}

// SubjectChange names one (subject, flag) pair of a namespace whose override
// outcome changed.
type SubjectChange struct {
	Namespace string      `json:"namespace"`
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Key       string      `json:"key"`
}

// ChangeSet lists what a write changed, both sorted. Flags lists keys whose
// result may have changed for everybody: every upserted flag, every deleted
// flag that existed, and every flag whose schedule state changed. Subjects
// lists exactly the (subject, key) pairs whose effective override changed:
// the entry that wins for the pair after the write differs from the one
// before in source object, served mode or value, expiry or reason, or one
// side has none.
//
// Overrides lists the override objects the write upserted or deleted (UID
// left out), sorted by namespace, kind and name, whether or not a result
// changed: what a copy of the namespace's objects needs (Namespace.Overrides).
// Empty does not look at it.
type ChangeSet struct {
	Revision  uint64          `json:"revision"`
	Flags     []FlagRef       `json:"flags,omitempty"`
	Subjects  []SubjectChange `json:"subjects,omitempty"`
	Overrides []ObjectRef     `json:"overrides,omitempty"`
}

// Empty reports whether no result changed.
func (c ChangeSet) Empty() bool { return len(c.Flags) == 0 && len(c.Subjects) == 0 }

// Apply applies a batch of writes atomically at the store clock's current
// time and publishes a new snapshot. The change set also covers override
// expiries and schedule steps that took effect since the previous write, so
// that change sets of consecutive revisions add up to every observable
// change. Malformed operations (missing namespace, key, name or subject,
// unknown subject kind) reject the whole batch with an error wrapping
// ErrInvalidOp; the current snapshot and an empty change set are returned.
func (s *Store) Apply(ops ...Op) (*Snapshot, ChangeSet, error) {
	comp, err := prepare(ops)
	if err != nil {
		return s.Snapshot(), ChangeSet{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, cs := s.commit(s.clock.Now(), ops, comp)
	return snap, cs, nil
}

// Tick publishes a new revision as of now, reporting overrides that expired
// and schedule steps that took effect since the previous write. A now before
// the previous write is treated as the time of that write.
func (s *Store) Tick(now time.Time) (*Snapshot, ChangeSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(now, nil, nil)
}

// NextDeadline returns the next instant after the current snapshot's time at
// which an override expires or a schedule step takes effect, so that a timer
// can call Tick then.
func (s *Store) NextDeadline() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	for len(s.deadlines) > 0 {
		d := s.deadlines[0]
		if d.live(cur) {
			return d.at, true
		}
		heap.Pop(&s.deadlines)
	}
	return time.Time{}, false
}

// compiled is the outcome of compiling the spec of an UpsertFlag op.
type compiled struct {
	flag *Flag
	err  error
}

// prepare validates the ops and compiles flag specs, outside the writer
// lock. The result is indexed like ops (nil when no op needs compiling).
func prepare(ops []Op) ([]compiled, error) {
	var out []compiled
	var errs fieldErrs
	for i := range ops {
		op := &ops[i]
		f := "ops[" + strconv.Itoa(i) + "]"
		if op.ns == "" {
			errs.invalid(f+".namespace", "must not be empty")
		}
		switch op.kind {
		case opUpsertFlag:
			if op.key == "" {
				errs.invalid(f+".key", "must not be empty")
			}
			if op.flag == nil {
				if out == nil {
					out = make([]compiled, len(ops))
				}
				out[i].flag, out[i].err = Compile(op.key, op.spec)
			}
		case opDeleteFlag:
			if op.key == "" {
				errs.invalid(f+".key", "must not be empty")
			}
		case opUpsertOverride:
			if op.key == "" {
				errs.invalid(f+".name", "must not be empty")
			}
			if op.ov.SubjectID == "" {
				errs.invalid(f+".subjectId", "must not be empty")
			}
			if op.ov.Kind != SubjectUser && op.ov.Kind != SubjectDevice {
				errs.invalid(f+".kind", fmt.Sprintf("unknown subject kind %q (want user or device)", op.ov.Kind))
			}
		case opDeleteOverride:
			if op.key == "" {
				errs.invalid(f+".name", "must not be empty")
			}
			if op.ov.Kind != SubjectUser && op.ov.Kind != SubjectDevice {
				errs.invalid(f+".kind", fmt.Sprintf("unknown subject kind %q (want user or device)", op.ov.Kind))
			}
		default:
			errs.invalid(f, "unknown operation")
		}
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return out, nil
}

func (e *fieldErrs) invalid(field, detail string) {
	*e = append(*e, &FieldError{Field: field, Detail: detail, Err: ErrInvalidOp})
}

type pairKey struct {
	ns      string
	kind    SubjectKind
	subject string
	key     string
}

// txn accumulates one commit.
type txn struct {
	old     *Snapshot
	nss     map[string]*nsTxn
	pairs   []pairKey                    // may hold duplicates; deduplicated when diffing
	flags   map[FlagRef]struct{}         // upserted or deleted
	sched   map[FlagRef]struct{}         // schedule steps due
	reval   map[string]map[string]uint64 // namespace -> key -> gen of the last flag change
	newObjs []*overrideObj
	newFlag []nsFlag
	objs    map[ObjectRef]struct{} // upserted or deleted override objects, without UID
}

type nsFlag struct {
	ns string
	fe *flagEntry
}

func (t *txn) ns(name string) *nsTxn {
	if n, ok := t.nss[name]; ok {
		return n
	}
	n := newNsTxn(t.old.nss[name], name)
	t.nss[name] = n
	return n
}

func (t *txn) trackObj(ns string, obj *overrideObj) {
	if obj == nil {
		return
	}
	for i := range obj.entries {
		t.pairs = append(t.pairs, pairKey{ns, obj.ov.Kind, obj.ov.SubjectID, obj.entries[i].key})
	}
}

func (s *Store) commit(now time.Time, ops []Op, comp []compiled) (*Snapshot, ChangeSet) {
	old := s.cur.Load()
	if now.Before(old.asOf) {
		now = old.asOf
	}
	t := &txn{
		old:   old,
		nss:   map[string]*nsTxn{},
		flags: map[FlagRef]struct{}{},
		sched: map[FlagRef]struct{}{},
		reval: map[string]map[string]uint64{},
		objs:  map[ObjectRef]struct{}{},
	}

	// Time: expiries and schedule steps in (old.asOf, now].
	for len(s.deadlines) > 0 && !s.deadlines[0].at.After(now) {
		d := heap.Pop(&s.deadlines).(deadline)
		if !d.live(old) {
			continue
		}
		if d.flag {
			t.sched[FlagRef{d.ns, d.name}] = struct{}{}
		} else {
			t.trackObj(d.ns, old.nss[d.ns].object(d.kind, d.name))
		}
	}

	for i := range ops {
		op := &ops[i]
		n := t.ns(op.ns)
		switch op.kind {
		case opUpsertFlag:
			s.gen++
			fe := &flagEntry{key: op.key, keyHash: hashOf(op.key), spec: op.spec, flag: op.flag, gen: s.gen}
			if fe.flag == nil {
				fe.flag, fe.err = comp[i].flag, comp[i].err
			} else {
				fe.spec = op.flag.spec
			}
			if fe.err != nil {
				fe.flag, fe.errMsg, fe.validation = nil, fe.err.Error(), "\x01invalid"
			} else {
				fe.validation = fe.flag.validation
			}
			prev := n.st.flags[op.key]
			n.flagsW()[op.key] = fe
			t.flags[FlagRef{op.ns, op.key}] = struct{}{}
			t.newFlag = append(t.newFlag, nsFlag{op.ns, fe})
			if prev.validationKey() != fe.validation {
				t.revalidate(op.ns, op.key, s.gen)
			}
		case opDeleteFlag:
			prev := n.st.flags[op.key]
			if prev == nil {
				continue
			}
			delete(n.flagsW(), op.key)
			t.flags[FlagRef{op.ns, op.key}] = struct{}{}
			s.gen++
			t.revalidate(op.ns, op.key, s.gen)
		case opUpsertOverride:
			s.gen++
			flags := n.st.flags
			obj := buildObj(op.ov, s.gen, func(k string) *flagEntry { return flags[k] })
			prev := n.putObj(op.ov.Kind, op.key, obj)
			t.trackObj(op.ns, prev)
			t.trackObj(op.ns, obj)
			t.newObjs = append(t.newObjs, obj)
			t.objs[ObjectRef{Kind: op.ov.Kind, Namespace: op.ns, Name: op.key}] = struct{}{}
		case opDeleteOverride:
			prev := n.putObj(op.ov.Kind, op.key, nil)
			t.trackObj(op.ns, prev)
			if prev != nil {
				t.objs[ObjectRef{Kind: op.ov.Kind, Namespace: op.ns, Name: op.key}] = struct{}{}
			}
		}
	}

	// Re-validate overrides of flags whose type, schema or existence changed.
	for ns, keys := range t.reval {
		n := t.ns(ns)
		flags := n.st.flags
		lookup := func(k string) *flagEntry { return flags[k] }
		var redo []*overrideObj
		n.st.objs.each(func(sh *objShard) {
			for _, obj := range sh.m {
				for i := range obj.entries {
					// Objects upserted after the last change of the flag
					// were validated against it already.
					if gen, ok := keys[obj.entries[i].key]; ok && obj.gen < gen {
						redo = append(redo, obj)
						break
					}
				}
			}
		})
		for _, obj := range redo {
			if nobj := revalidated(obj, lookup); nobj != nil {
				n.putObj(nobj.ov.Kind, nobj.ov.Name, nobj)
				t.trackObj(ns, obj)
			}
		}
	}

	// Publish.
	nss := old.nss
	if len(t.nss) > 0 {
		nss = make(map[string]*nsState, len(old.nss)+len(t.nss))
		for k, v := range old.nss {
			nss[k] = v
		}
		for name, n := range t.nss {
			if n.flagsOwned {
				n.st.flagList = sortedFlags(n.st.flags)
			}
			n.settleFilter()
			if len(n.st.flags) == 0 && n.st.numObjs == 0 {
				delete(nss, name)
				continue
			}
			nss[name] = n.st
		}
	}
	snap := &Snapshot{rev: old.rev + 1, asOf: now, clock: s.clock, nss: nss}

	// Change set.
	cs := ChangeSet{Revision: snap.rev}
	for ref := range t.flags {
		cs.Flags = append(cs.Flags, ref)
	}
	for ref := range t.sched {
		if _, listed := t.flags[ref]; listed {
			continue
		}
		of, nf := old.flag(ref.Namespace, ref.Key), snap.flag(ref.Namespace, ref.Key)
		if of == nil || nf == nil || of != nf || of.stateAt(old.asOf) != nf.stateAt(now) {
			cs.Flags = append(cs.Flags, ref)
		}
	}
	slices.SortFunc(t.pairs, comparePairKey)
	for _, pk := range slices.Compact(t.pairs) {
		var o, n *objEntry
		if st := old.nss[pk.ns]; st != nil {
			o = st.effective(pk.kind, pk.subject, pk.key, old.asOf)
		}
		if st := nss[pk.ns]; st != nil {
			n = st.effective(pk.kind, pk.subject, pk.key, now)
		}
		if !samePair(o, n) {
			cs.Subjects = append(cs.Subjects, SubjectChange{pk.ns, pk.kind, pk.subject, pk.key})
		}
	}
	slices.SortFunc(cs.Flags, compareFlagRef)
	for ref := range t.objs {
		cs.Overrides = append(cs.Overrides, ref)
	}
	slices.SortFunc(cs.Overrides, compareObjectRef)

	// Deadlines of new objects and flags (after now; earlier ones are
	// already in effect).
	for _, obj := range t.newObjs {
		if at, ok := obj.expiry(); ok && at.After(now) {
			heap.Push(&s.deadlines, deadline{at: at, ns: obj.ov.Namespace, kind: obj.ov.Kind, name: obj.ov.Name, gen: obj.gen})
		}
	}
	for _, nf := range t.newFlag {
		if nf.fe.flag == nil {
			continue
		}
		for _, st := range nf.fe.flag.steps {
			if st.at.After(now) {
				heap.Push(&s.deadlines, deadline{at: st.at, ns: nf.ns, name: nf.fe.key, gen: nf.fe.gen, flag: true})
			}
		}
	}
	s.feed.publish(&s.cur, snap, cs)
	s.compact(snap)
	return snap, cs
}

// comparePairKey orders pairs like SubjectChange lists: namespace, kind,
// subject, key.
func comparePairKey(a, b pairKey) int {
	return cmp.Or(
		strings.Compare(a.ns, b.ns),
		strings.Compare(string(a.kind), string(b.kind)),
		strings.Compare(a.subject, b.subject),
		strings.Compare(a.key, b.key),
	)
}

func (t *txn) revalidate(ns, key string, gen uint64) {
	m := t.reval[ns]
	if m == nil {
		m = map[string]uint64{}
		t.reval[ns] = m
	}
	m[key] = gen
}

func sortedFlags(m map[string]*flagEntry) []*flagEntry {
	out := make([]*flagEntry, 0, len(m))
	for _, fe := range m {
		out = append(out, fe)
	}
	slices.SortFunc(out, func(a, b *flagEntry) int { return strings.Compare(a.key, b.key) })
	return out
}

// deadline is a future instant at which an override expires or a schedule
// step takes effect. Entries of replaced objects and flags are left in the
// heap and skipped when popped (their gen no longer matches).
type deadline struct {
	at   time.Time
	ns   string
	kind SubjectKind // override deadlines
	name string
	gen  uint64
	flag bool
}

func (d deadline) live(s *Snapshot) bool {
	st := s.nss[d.ns]
	if st == nil {
		return false
	}
	if d.flag {
		fe := st.flags[d.name]
		return fe != nil && fe.gen == d.gen
	}
	obj := st.object(d.kind, d.name)
	return obj != nil && obj.gen == d.gen
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

const minCompact = 4096

// compact drops deadlines of replaced objects and flags once the heap has
// doubled since the last compaction, keeping it proportional to the live
// deadlines at amortised O(1) per write.
func (s *Store) compact(cur *Snapshot) {
	if len(s.deadlines) < s.compactAt {
		return
	}
	live := s.deadlines[:0]
	for _, d := range s.deadlines {
		if d.live(cur) {
			live = append(live, d)
		}
	}
	clear(s.deadlines[len(live):])
	s.deadlines = live
	heap.Init(&s.deadlines)
	s.compactAt = max(minCompact, 2*len(live))
}

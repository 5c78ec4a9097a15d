package evaluator

import (
	"bytes"
	"hash/maphash"
	"maps"
	"slices"
	"time"
)

// Overrides of a namespace live in sharded, copy-on-write indexes: override
// objects by name, and candidate entries by subject. Shards sit in a
// three-level directory (16 x 16 x 16 = 4096 leaves), so a write copies three
// 128-byte arrays and the leaf it touches: one upsert costs O(leaf size +
// entries) however many overrides the store holds, and every published leaf
// stays immutable for lock-free readers.
const (
	dirBits   = 4
	dirFan    = 1 << dirBits
	numShards = dirFan * dirFan * dirFan
)

var shardSeed = maphash.MakeSeed()

func hashOf(s string) uint64 { return maphash.String(shardSeed, s) }

func shardOf(s string) int { return int(hashOf(s) & (numShards - 1)) }

type (
	dirL2[S any] [dirFan]*S
	dirL1[S any] [dirFan]*dirL2[S]
	dirL0[S any] [dirFan]*dirL1[S]
)

// shardDir is an immutable three-level array of shards.
type shardDir[S any] struct {
	top *dirL0[S]
}

func (d shardDir[S]) get(i int) *S {
	if d.top == nil {
		return nil
	}
	l1 := d.top[i>>(2*dirBits)]
	if l1 == nil {
		return nil
	}
	l2 := l1[(i>>dirBits)&(dirFan-1)]
	if l2 == nil {
		return nil
	}
	return l2[i&(dirFan-1)]
}

// each calls fn for every non-nil shard.
func (d shardDir[S]) each(fn func(*S)) {
	if d.top == nil {
		return
	}
	for _, l1 := range d.top {
		if l1 == nil {
			continue
		}
		for _, l2 := range l1 {
			if l2 == nil {
				continue
			}
			for _, s := range l2 {
				if s != nil {
					fn(s)
				}
			}
		}
	}
}

// dirTxn tracks which arrays and leaves of a shardDir a transaction owns.
type dirTxn struct {
	topOwned  bool
	l1Owned   [dirFan]bool
	l2Owned   [dirFan * dirFan / 64]uint64 // bitset
	leafOwned map[int]bool
}

// own reports whether leaf i is already private to the transaction and
// marks it so.
func (t *dirTxn) own(i int) bool {
	if t.leafOwned[i] {
		return true
	}
	if t.leafOwned == nil {
		t.leafOwned = make(map[int]bool, 2)
	}
	t.leafOwned[i] = true
	return false
}

// setLeaf stores leaf i, copying each array on its path once per
// transaction.
func setLeaf[S any](t *dirTxn, d *shardDir[S], i int, s *S) {
	if !t.topOwned {
		n := new(dirL0[S])
		if d.top != nil {
			*n = *d.top
		}
		d.top, t.topOwned = n, true
	}
	a, b := i>>(2*dirBits), i>>dirBits
	if !t.l1Owned[a] {
		n := new(dirL1[S])
		if old := d.top[a]; old != nil {
			*n = *old
		}
		d.top[a], t.l1Owned[a] = n, true
	}
	l1 := d.top[a]
	if bit := uint64(1) << (b % 64); t.l2Owned[b/64]&bit == 0 {
		n := new(dirL2[S])
		if old := l1[b&(dirFan-1)]; old != nil {
			*n = *old
		}
		l1[b&(dirFan-1)] = n
		t.l2Owned[b/64] |= bit
	}
	l1[b&(dirFan-1)][i&(dirFan-1)] = s
}

type subjKey struct {
	kind SubjectKind
	id   string
}

type entryMode uint8

const (
	modeOn    entryMode = iota // serve the flag's on value
	modeOff                    // serve the flag's off value
	modeValue                  // serve the entry's value
)

func (m entryMode) String() string {
	switch m {
	case modeOff:
		return "off"
	case modeValue:
		return "value"
	}
	return "on"
}

// objEntry is one override entry, validated against its flag.
type objEntry struct {
	// self holds a pointer to the entry itself, so that self[:] is a
	// candidate list of one without an allocation of its own.
	self [1]*objEntry
	obj  *overrideObj
	key  string
	mode entryMode
	// val is, when mode is modeValue, the value: parsed when valid, and
	// otherwise only its raw form as given, kept for re-validation and for
	// listings.
	val     value
	invalid string // non-empty: never served, with the reason
}

// overrideObj is the immutable, validated form of one Override object.
type overrideObj struct {
	ov      Override
	gen     uint64     // identity of the upsert, kept across re-validation
	ref     string     // namespace/name
	source  string     // user-override:ns/name or device-override:ns/name
	entries []objEntry // first entry per key, in input order
	dups    []EntryError
}

func (o *overrideObj) subject() subjKey { return subjKey{o.ov.Kind, o.ov.SubjectID} }

// expiry returns when the override ends, if it does. ov.ExpiresAt is the
// object's own copy.
func (o *overrideObj) expiry() (time.Time, bool) {
	if o.ov.ExpiresAt == nil {
		return time.Time{}, false
	}
	return *o.ov.ExpiresAt, true
}

func (o *overrideObj) expiredAt(now time.Time) bool {
	return o.ov.ExpiresAt != nil && !now.Before(*o.ov.ExpiresAt)
}

// active reports whether the entry would be served at now.
func (e *objEntry) active(now time.Time) bool {
	return e.invalid == "" && e.obj.ov.Enabled && !e.obj.expiredAt(now)
}

// before orders competing overrides: older CreatedAt first, then lower
// namespace/name, then lower UID.
func before(a, b *overrideObj) bool {
	if c := a.ov.CreatedAt.Compare(b.ov.CreatedAt); c != 0 {
		return c < 0
	}
	if a.ref != b.ref {
		return a.ref < b.ref
	}
	return a.ov.UID < b.ov.UID
}

// flagLookup returns the flag entry for a key in the namespace being built.
type flagLookup func(key string) *flagEntry

// buildObj validates an override against the namespace's flags. The object
// keeps what evaluation and status need; entries are not kept as given.
func buildObj(o Override, gen uint64, flags flagLookup) *overrideObj {
	prefix := SourceUserOverride
	if o.Kind == SubjectDevice {
		prefix = SourceDeviceOverride
	}
	source := prefix + o.Namespace + "/" + o.Name
	obj := &overrideObj{ov: o, gen: gen, source: source, ref: source[len(prefix):]}
	obj.ov.Entries = nil
	if o.ExpiresAt != nil {
		at := *o.ExpiresAt
		obj.ov.ExpiresAt = &at
	}
	obj.entries = make([]objEntry, 0, len(o.Entries))
	var seen map[string]struct{} // only for large objects; small ones scan
	if len(o.Entries) > 64 {
		seen = make(map[string]struct{}, len(o.Entries))
	}
	for _, e := range o.Entries {
		if obj.has(e.Key, seen) {
			obj.dups = append(obj.dups, EntryError{Key: e.Key, Message: MessageDuplicateKey})
			continue
		}
		if seen != nil {
			seen[e.Key] = struct{}{}
		}
		fe := flags(e.Key)
		oe := objEntry{obj: obj, key: e.Key, mode: modeOf(e)}
		if fe != nil {
			// The flag's own copy of the key: the entry then keeps nothing of the
			// object it was decoded from alive.
			oe.key = fe.key
		}
		oe.val, oe.invalid = entryValue(oe.mode, e.Value, fe)
		obj.entries = append(obj.entries, oe)
	}
	for i := range obj.entries {
		obj.entries[i].self[0] = &obj.entries[i]
	}
	return obj
}

func (o *overrideObj) has(key string, seen map[string]struct{}) bool {
	if seen != nil {
		_, ok := seen[key]
		return ok
	}
	for i := range o.entries {
		if o.entries[i].key == key {
			return true
		}
	}
	return false
}

// modeOf decides how an entry is served: enabled false wins, then a value,
// then the on value.
func modeOf(e OverrideEntry) entryMode {
	switch {
	case e.Enabled != nil && !*e.Enabled:
		return modeOff
	case !isAbsent(e.Value):
		return modeValue
	}
	return modeOn
}

// validateEntry checks an entry against its flag (nil: unknown flag) and
// parses its value.
func validateEntry(mode entryMode, raw []byte, fe *flagEntry) (value, string) {
	switch {
	case fe == nil:
		return value{}, MessageUnknownFlag
	case fe.flag == nil:
		return value{}, MessageInvalidFlag
	case mode == modeValue:
		v, err := fe.flag.checkValue(raw)
		if err != nil {
			return value{}, err.Error()
		}
		return v, ""
	}
	return value{}, ""
}

// entryValue is validateEntry keeping, for an invalid value, a copy of the
// value as given.
func entryValue(mode entryMode, raw []byte, fe *flagEntry) (value, string) {
	v, invalid := validateEntry(mode, raw, fe)
	if mode == modeValue && invalid != "" {
		v = value{raw: bytes.Clone(raw)}
	}
	return v, invalid
}

// revalidated returns a copy of obj validated against the current flags, or
// nil when no entry's outcome changes.
func revalidated(obj *overrideObj, flags flagLookup) *overrideObj {
	entries := make([]objEntry, len(obj.entries))
	changed := false
	for i, e := range obj.entries {
		e.val, e.invalid = entryValue(e.mode, e.val.raw, flags(e.key))
		if e.invalid != obj.entries[i].invalid || !bytes.Equal(e.val.raw, obj.entries[i].val.raw) {
			changed = true
		}
		entries[i] = e
	}
	if !changed {
		return nil
	}
	n := *obj
	for i := range entries {
		entries[i].obj, entries[i].self[0] = &n, &entries[i]
	}
	n.entries = entries
	return &n
}

// samePair reports whether two effective entries for the same (subject, key)
// are observably identical: same source object, serving the same thing, with
// the same expiry and reason.
func samePair(a, b *objEntry) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.mode != b.mode || !bytes.Equal(a.val.raw, b.val.raw) {
		return false
	}
	oa, ob := a.obj, b.obj
	return oa == ob || (oa.ref == ob.ref && oa.ov.UID == ob.ov.UID &&
		oa.ov.Reason == ob.ov.Reason && oa.ov.CreatedAt.Equal(ob.ov.CreatedAt) &&
		sameExpiry(oa, ob))
}

func sameExpiry(a, b *overrideObj) bool {
	at, ok := a.expiry()
	bt, bok := b.expiry()
	return ok == bok && at.Equal(bt)
}

// subjEntry holds the candidate entries of one subject, sorted by flag key;
// each candidate list is sorted by precedence (see before).
type subjEntry struct {
	id   string
	keys []keyCands
}

type keyCands struct {
	key  string
	list []*objEntry
}

// find binary-searches the sorted keys.
func (se *subjEntry) find(key string) (int, bool) {
	lo, hi := 0, len(se.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if se.keys[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(se.keys) && se.keys[lo].key == key
}

// get returns the candidates for key. Most subjects have a handful of keys,
// for which equality tests beat ordered string comparisons.
func (se *subjEntry) get(key string) []*objEntry {
	if se == nil {
		return nil
	}
	if len(se.keys) <= 8 {
		for i := range se.keys {
			if se.keys[i].key == key {
				return se.keys[i].list
			}
		}
		return nil
	}
	if i, ok := se.find(key); ok {
		return se.keys[i].list
	}
	return nil
}

// put sets (or, with an empty list, removes) the candidates for key. The
// subject entry must be private to the transaction.
func (se *subjEntry) put(key string, list []*objEntry) {
	i, ok := se.find(key)
	switch {
	case ok && len(list) == 0:
		se.keys = slices.Delete(se.keys, i, i+1)
	case ok:
		se.keys[i].list = list
	case len(list) > 0:
		se.keys = slices.Insert(se.keys, i, keyCands{key, list})
	}
}

// objKey identifies an override object within its namespace: user and
// device overrides are different kinds of objects and may share a name.
type objKey struct {
	kind SubjectKind
	name string
}

type objShard struct {
	m map[objKey]*overrideObj
}

// subjShard is a small open-addressing hash table (linear probing) of the
// subjects of one shard. It is keyed by the same 64-bit hash that selected
// the shard, so a lookup hashes the subject id once. Tables are immutable once
// published; writers copy them (see nsTxn.subjW).
type subjShard struct {
	slots []subjSlot // length is a power of two; se == nil marks a free slot
	n     int
}

type subjSlot struct {
	h  uint64
	se *subjEntry
}

func (sh *subjShard) start(h uint64) int {
	return int(h>>(3*dirBits)) & (len(sh.slots) - 1)
}

// find returns the slot of (h, id), or the free slot where it would go.
func (sh *subjShard) find(h uint64, id string) (int, bool) {
	mask := len(sh.slots) - 1
	for i := sh.start(h); ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.se == nil {
			return i, false
		}
		if s.h == h && s.se.id == id {
			return i, true
		}
	}
}

func (sh *subjShard) get(h uint64, id string) *subjEntry {
	if sh == nil || sh.n == 0 {
		return nil
	}
	if i, ok := sh.find(h, id); ok {
		return sh.slots[i].se
	}
	return nil
}

// set inserts or replaces (se non-nil, se.id == id) or removes (se nil) a
// subject. The table must be private to the transaction.
func (sh *subjShard) set(h uint64, id string, se *subjEntry) {
	if se == nil {
		if sh.n == 0 {
			return
		}
		i, ok := sh.find(h, id)
		if !ok {
			return
		}
		// Rebuild without the slot: tables are small and copied per write
		// anyway, and this keeps probing free of tombstones.
		old := sh.slots
		old[i].se = nil
		sh.rehash(old, len(old))
		sh.n--
		return
	}
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.rehash(sh.slots, max(8, 2*len(sh.slots)))
	}
	i, ok := sh.find(h, id)
	if !ok {
		sh.n++
	}
	sh.slots[i] = subjSlot{h: h, se: se}
}

func (sh *subjShard) rehash(old []subjSlot, size int) {
	sh.slots = make([]subjSlot, size)
	for _, s := range old {
		if s.se != nil {
			i, _ := sh.find(s.h, s.se.id)
			sh.slots[i] = s
		}
	}
}

// flagEntry is a flag slot of a namespace: a compiled flag or the error that
// prevented compiling it.
type flagEntry struct {
	key        string
	keyHash    uint64   // hashOf(key), for the pair filter
	spec       FlagSpec // as given, also when it did not compile
	flag       *Flag
	err        error
	errMsg     string
	gen        uint64
	validation string
}

func (fe *flagEntry) validationKey() string {
	if fe == nil {
		return ""
	}
	return fe.validation
}

// nsState is the immutable state of one namespace inside a snapshot.
type nsState struct {
	name     string
	flags    map[string]*flagEntry
	flagList []*flagEntry // sorted by key
	objs     shardDir[objShard]
	users    shardDir[subjShard]
	devices  shardDir[subjShard]
	filter   pairFilter
	numObjs  int
}

func (st *nsState) subjects(kind SubjectKind) *shardDir[subjShard] {
	if kind == SubjectDevice {
		return &st.devices
	}
	return &st.users
}

func (st *nsState) subject(k subjKey) *subjEntry {
	return st.subjectFor(k.kind, k.id, nil)
}

// subjectFor is subject for entries of fe, or of any flag when fe is nil:
// nil when the pair filter rules the pair out.
func (st *nsState) subjectFor(kind SubjectKind, id string, fe *flagEntry) *subjEntry {
	h := hashOf(id)
	if fe != nil && !st.filter.may(pairHash(kind, h, fe.keyHash)) {
		return nil
	}
	return st.subjects(kind).get(int(h&(numShards-1))).get(h, id)
}

func (st *nsState) object(kind SubjectKind, name string) *overrideObj {
	sh := st.objs.get(shardOf(name))
	if sh == nil {
		return nil
	}
	return sh.m[objKey{kind, name}]
}

func (st *nsState) candidates(kind SubjectKind, id, key string) []*objEntry {
	if st == nil || id == "" {
		return nil
	}
	return st.subject(subjKey{kind, id}).get(key)
}

// effective returns the entry served for (subject, key) at now, if any.
func (st *nsState) effective(kind SubjectKind, id, key string, now time.Time) *objEntry {
	for _, e := range st.candidates(kind, id, key) {
		if e.active(now) {
			return e
		}
	}
	return nil
}

// nsTxn is a private, mutable copy of a namespace state being written. Shard
// arrays, leaves and subject entries are copied the first time the
// transaction touches them.
type nsTxn struct {
	st         *nsState
	objDir     dirTxn
	userDir    dirTxn
	devDir     dirTxn
	seOwned    map[subjKey]bool
	flagsOwned bool
}

func newNsTxn(old *nsState, name string) *nsTxn {
	st := &nsState{name: name}
	if old != nil {
		*st = *old
	}
	return &nsTxn{st: st, seOwned: make(map[subjKey]bool)}
}

func (t *nsTxn) flagsW() map[string]*flagEntry {
	if !t.flagsOwned {
		t.st.flags = cloneMap(t.st.flags)
		t.flagsOwned = true
	}
	return t.st.flags
}

func (t *nsTxn) objShardW(i int) *objShard {
	if t.objDir.own(i) {
		return t.st.objs.get(i)
	}
	n := &objShard{}
	if old := t.st.objs.get(i); old != nil {
		n.m = cloneMap(old.m)
	} else {
		n.m = make(map[objKey]*overrideObj, 1)
	}
	setLeaf(&t.objDir, &t.st.objs, i, n)
	return n
}

func (t *nsTxn) subjShardW(kind SubjectKind, i int) *subjShard {
	dt, dir := &t.userDir, &t.st.users
	if kind == SubjectDevice {
		dt, dir = &t.devDir, &t.st.devices
	}
	if dt.own(i) {
		return dir.get(i)
	}
	n := &subjShard{}
	if old := dir.get(i); old != nil {
		n.slots, n.n = slices.Clone(old.slots), old.n
	}
	setLeaf(dt, dir, i, n)
	return n
}

// subjW returns a writable subject entry, creating it when missing, and the
// hash of its id.
func (t *nsTxn) subjW(k subjKey) (*subjEntry, uint64) {
	h := hashOf(k.id)
	sh := t.subjShardW(k.kind, int(h&(numShards-1)))
	se := sh.get(h, k.id)
	if se != nil && t.seOwned[k] {
		return se, h
	}
	n := &subjEntry{id: k.id}
	if se != nil {
		n.keys = slices.Clone(se.keys)
	}
	sh.set(h, k.id, n)
	t.seOwned[k] = true
	return n, h
}

// dropSubj removes a subject whose entry became empty.
func (t *nsTxn) dropSubj(k subjKey) {
	h := hashOf(k.id)
	t.subjShardW(k.kind, int(h&(numShards-1))).set(h, k.id, nil)
	delete(t.seOwned, k)
}

// cloneMap copies a map; maps.Clone copies the table without rehashing.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V, 1)
	}
	return maps.Clone(m)
}

func (t *nsTxn) unindex(obj *overrideObj) {
	if len(obj.entries) == 0 {
		return
	}
	se, _ := t.subjW(obj.subject())
	for i := range obj.entries {
		e := &obj.entries[i]
		list := se.get(e.key)
		idx := slices.Index(list, e)
		if idx < 0 {
			continue
		}
		switch len(list) {
		case 1:
			se.put(e.key, nil)
			t.st.filter.live--
		case 2:
			rest := list[1-idx]
			se.put(e.key, rest.self[:])
		default:
			n := make([]*objEntry, 0, len(list)-1)
			n = append(n, list[:idx]...)
			se.put(e.key, append(n, list[idx+1:]...))
		}
	}
}

// dropIfEmpty removes a subject left without entries.
func (t *nsTxn) dropIfEmpty(k subjKey) {
	h := hashOf(k.id)
	sh := t.st.subjects(k.kind).get(int(h & (numShards - 1)))
	if se := sh.get(h, k.id); se != nil && len(se.keys) == 0 {
		t.dropSubj(k)
	}
}

func (t *nsTxn) index(obj *overrideObj) {
	if len(obj.entries) == 0 {
		return
	}
	se, hs := t.subjW(obj.subject())
	for i := range obj.entries {
		e := &obj.entries[i]
		list := se.get(e.key)
		if len(list) == 0 {
			se.put(e.key, e.self[:])
			t.st.filter.add(pairHash(obj.ov.Kind, hs, hashOf(e.key)))
			t.st.filter.live++
			continue
		}
		pos := len(list)
		for j, c := range list {
			if before(obj, c.obj) {
				pos = j
				break
			}
		}
		n := make([]*objEntry, 0, len(list)+1)
		n = append(n, list[:pos]...)
		n = append(n, e)
		se.put(e.key, append(n, list[pos:]...))
	}
}

// putObj replaces (obj non-nil) or deletes (obj nil) the override object
// (kind, name), keeping the subject index in sync. It returns the previous
// object.
func (t *nsTxn) putObj(kind SubjectKind, name string, obj *overrideObj) *overrideObj {
	sh := t.objShardW(shardOf(name))
	k := objKey{kind, name}
	old := sh.m[k]
	if old != nil {
		t.unindex(old)
		t.st.numObjs--
	}
	if obj == nil {
		delete(sh.m, k)
	} else {
		sh.m[k] = obj
		t.st.numObjs++
		t.index(obj)
	}
	// Drop the old subject only now, so that re-upserting an object for
	// the same subject does not remove and re-insert it.
	if old != nil && len(old.entries) > 0 {
		t.dropIfEmpty(old.subject())
	}
	return old
}

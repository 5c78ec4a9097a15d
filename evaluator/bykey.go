package evaluator

import (
	"slices"
	"strings"
)

// The flag-key index lists, per namespace, every override entry that names
// a flag key, whatever its state (valid or not, enabled or not, expired or
// not), so that the overrides of one flag are found without reading every
// object. Its invariants:
//
//   - keyIdx of key k holds exactly the entries e of the namespace's
//     stored objects with e.key == k, each once; a key without entries has
//     no keyIdx;
//   - entries are sorted by (kind, subject id, object name), which is
//     unique per key because an object has at most one entry per key; each
//     item carries its object's posKey, which sorts the same way;
//   - the entries of a key sit in a B+ tree: leaves hold 1 to fan items,
//     inner nodes 1 to fan children with the greatest position of each;
//     read left to right, the leaves are the sorted list;
//   - like the other indexes it is copy-on-write: nsTxn.index and
//     nsTxn.unindex maintain it, copying the key's shard (a sorted slice
//     of keys) and the nodes on the path to the leaf they change, once per
//     transaction; a node may be changed in place only by the transaction
//     whose id it carries, which is never one that published it.
//
// A write of an object with E entries therefore costs, per entry, a
// search and copies of about log_fan(n) nodes of at most fan items for a
// key named by n entries (two levels up to about 1,000 entries, three up
// to about 30,000, four up to about a million).
const fan = 32

// keyShard holds the flag keys of one shard, sorted. A transaction copies
// the slice once and then changes its elements in place.
type keyShard struct {
	keys []keyIdx
}

// keyIdx holds the entries naming one flag key: n entries under root.
type keyIdx struct {
	key  string
	root *bnode
	n    int
}

// find returns where key is or would be.
func (sh *keyShard) find(key string) (int, bool) {
	return slices.BinarySearchFunc(sh.keys, key, func(ki keyIdx, key string) int { return strings.Compare(ki.key, key) })
}

// bnode is a node of a keyIdx tree: a leaf (kids nil) or an inner node.
type bnode struct {
	items []keyItem // leaf: sorted entries
	kids  []*bnode  // inner: children, in order
	maxs  []string  // inner: the greatest position under each child
	txn   uint64    // the nsTxn.id of the transaction that made it, the only one that may change it
}

// keyItem is an entry with its object's position, kept beside the
// pointer so that searches compare strings without visiting the objects.
type keyItem struct {
	pos string
	e   *objEntry
}

func (nd *bnode) leaf() bool { return nd.kids == nil }

func (nd *bnode) size() int {
	if nd.leaf() {
		return len(nd.items)
	}
	return len(nd.kids)
}

// max returns the greatest position under a non-empty node.
func (nd *bnode) max() string {
	if nd.leaf() {
		return nd.items[len(nd.items)-1].pos
	}
	return nd.maxs[len(nd.maxs)-1]
}

// kidFor returns the first child whose greatest position is at or after
// pos (orEqual) or after it; len(kids) when there is none.
func (nd *bnode) kidFor(pos string, orEqual bool) int {
	i, found := slices.BinarySearch(nd.maxs, pos)
	if found && !orEqual {
		i++
	}
	return i
}

// OverrideCursor is a position in the overrides of one flag: the listing
// continues with the first entry after it in (kind, subject id, object
// name) order. The zero value is the start.
type OverrideCursor struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Name      string      `json:"name"`
}

func (c OverrideCursor) pos() string { return posKey(c.Kind, c.SubjectID, c.Name) }

// posKey encodes (kind, subject, name) as a string that sorts like the
// tuple: each part ends with "\x00\x00", and a NUL inside a part becomes
// "\x00\xff", so a part that is a prefix of another sorts first and no two
// tuples share an encoding.
func posKey(kind SubjectKind, subject, name string) string {
	var b strings.Builder
	b.Grow(len(kind) + len(subject) + len(name) + 6)
	for _, part := range [3]string{string(kind), subject, name} {
		if strings.IndexByte(part, 0) < 0 {
			b.WriteString(part)
		} else {
			b.WriteString(strings.ReplaceAll(part, "\x00", "\x00\xff"))
		}
		b.WriteString("\x00\x00")
	}
	return b.String()
}

// cursorOf returns the position of an entry.
func cursorOf(e *objEntry) OverrideCursor {
	return OverrideCursor{Kind: e.obj.ov.Kind, SubjectID: e.obj.ov.SubjectID, Name: e.obj.ov.Name}
}

// itemAt returns where pos is or would be in a leaf.
func itemAt(list []keyItem, pos string) (int, bool) {
	return slices.BinarySearchFunc(list, pos, func(it keyItem, pos string) int { return strings.Compare(it.pos, pos) })
}

// walk calls fn for the entries under nd after pos (all of them when
// start) in order, and reports whether fn wants more.
func (nd *bnode) walk(pos string, start bool, fn func(*objEntry) bool) bool {
	if nd.leaf() {
		j := 0
		if !start {
			var found bool
			if j, found = itemAt(nd.items, pos); found {
				j++
			}
		}
		for _, it := range nd.items[j:] {
			if !fn(it.e) {
				return false
			}
		}
		return true
	}
	i := 0
	if !start {
		i = nd.kidFor(pos, false)
	}
	for ; i < len(nd.kids); i++ {
		if !nd.kids[i].walk(pos, start, fn) {
			return false
		}
		start = true // the first child visited holds the first entry after pos
	}
	return true
}

// after calls fn for the entries after pos (from the first when start) in
// order until fn returns false.
func (ki *keyIdx) after(pos string, start bool, fn func(*objEntry) bool) {
	ki.root.walk(pos, start, fn)
}

// byKey returns the entries naming key, or nil.
func (st *nsState) byKey(key string) *keyIdx {
	sh := st.keys.get(shardOf(key))
	if sh == nil {
		return nil
	}
	if i, ok := sh.find(key); ok {
		return &sh.keys[i]
	}
	return nil
}

func (t *nsTxn) keyShardW(i int) *keyShard {
	if t.keyDir.own(i) {
		return t.st.keys.get(i)
	}
	n := &keyShard{}
	if old := t.st.keys.get(i); old != nil {
		n.keys = slices.Clone(old.keys)
	}
	setLeaf(&t.keyDir, &t.st.keys, i, n)
	return n
}

// nodeW returns nd if the transaction may change it, else a copy it may.
func (t *nsTxn) nodeW(nd *bnode) *bnode {
	if nd.txn == t.id {
		return nd
	}
	n := &bnode{txn: t.id}
	if nd.leaf() {
		n.items = make([]keyItem, len(nd.items), len(nd.items)+1)
		copy(n.items, nd.items)
	} else {
		n.kids = make([]*bnode, len(nd.kids), len(nd.kids)+1)
		copy(n.kids, nd.kids)
		n.maxs = make([]string, len(nd.maxs), len(nd.maxs)+1)
		copy(n.maxs, nd.maxs)
	}
	return n
}

// addByKey inserts an entry into the index of its key.
func (t *nsTxn) addByKey(e *objEntry) {
	sh := t.keyShardW(shardOf(e.key))
	i, found := sh.find(e.key)
	if !found {
		sh.keys = slices.Insert(sh.keys, i, keyIdx{key: e.key})
	}
	ki := &sh.keys[i]
	it := keyItem{pos: e.obj.pos, e: e}
	ki.n++
	if ki.root == nil {
		ki.root = &bnode{items: []keyItem{it}, txn: t.id}
		return
	}
	root, right := t.insert(ki.root, it)
	if right != nil {
		root = &bnode{kids: []*bnode{root, right}, maxs: []string{root.max(), right.max()}, txn: t.id}
	}
	ki.root = root
}

// insert adds it under nd and returns nd's writable copy and, when it
// overflowed, the new node holding its upper half.
func (t *nsTxn) insert(nd *bnode, it keyItem) (*bnode, *bnode) {
	nd = t.nodeW(nd)
	if nd.leaf() {
		j, _ := itemAt(nd.items, it.pos)
		nd.items = slices.Insert(nd.items, j, it)
		if len(nd.items) <= fan {
			return nd, nil
		}
		// Both halves get slices of their own size, so that a node
		// never keeps more than twice the room it needs.
		h := len(nd.items) / 2
		right := &bnode{items: slices.Clone(nd.items[h:]), txn: t.id}
		nd.items = slices.Clone(nd.items[:h])
		return nd, right
	}
	i := min(nd.kidFor(it.pos, true), len(nd.kids)-1)
	kid, split := t.insert(nd.kids[i], it)
	nd.kids[i], nd.maxs[i] = kid, kid.max()
	if split == nil {
		return nd, nil
	}
	nd.kids = slices.Insert(nd.kids, i+1, split)
	nd.maxs = slices.Insert(nd.maxs, i+1, split.max())
	if len(nd.kids) <= fan {
		return nd, nil
	}
	h := len(nd.kids) / 2
	right := &bnode{kids: slices.Clone(nd.kids[h:]), maxs: slices.Clone(nd.maxs[h:]), txn: t.id}
	nd.kids, nd.maxs = slices.Clone(nd.kids[:h]), slices.Clone(nd.maxs[:h])
	return nd, right
}

// removeByKey removes an entry from the index of its key.
func (t *nsTxn) removeByKey(e *objEntry) {
	sh := t.st.keys.get(shardOf(e.key))
	if sh == nil {
		return
	}
	i, found := sh.find(e.key)
	if !found {
		return
	}
	root, ok := t.remove(sh.keys[i].root, e.obj.pos, e)
	if !ok {
		return
	}
	sh = t.keyShardW(shardOf(e.key))
	ki := &sh.keys[i]
	ki.n--
	if ki.n == 0 {
		sh.keys = slices.Delete(sh.keys, i, i+1)
		return
	}
	for !root.leaf() && len(root.kids) == 1 {
		root = root.kids[0]
	}
	ki.root = root
}

// remove deletes e (at pos) under nd. It copies nothing when e is not
// there; otherwise it returns nd's writable copy, which may be empty.
func (t *nsTxn) remove(nd *bnode, pos string, e *objEntry) (*bnode, bool) {
	if nd.leaf() {
		j, found := itemAt(nd.items, pos)
		if !found || nd.items[j].e != e {
			return nd, false
		}
		nd = t.nodeW(nd)
		nd.items = slices.Delete(nd.items, j, j+1)
		return nd, true
	}
	i := nd.kidFor(pos, true)
	if i == len(nd.kids) {
		return nd, false
	}
	kid, ok := t.remove(nd.kids[i], pos, e)
	if !ok {
		return nd, false
	}
	nd = t.nodeW(nd)
	nd.kids[i] = kid
	switch {
	case kid.size() == 0:
		nd.kids = slices.Delete(nd.kids, i, i+1)
		nd.maxs = slices.Delete(nd.maxs, i, i+1)
	default:
		nd.maxs[i] = kid.max()
		if kid.size() < fan/4 {
			t.mergeKid(nd, i)
		}
	}
	return nd, true
}

// mergeKid merges the small child i of a writable node into a neighbour
// when both fit in one node, so that deletions do not leave a tree of
// tiny nodes.
func (t *nsTxn) mergeKid(nd *bnode, i int) {
	for _, l := range [2]int{i - 1, i} { // (left, i) or (i, right)
		r := l + 1
		if l < 0 || r >= len(nd.kids) || nd.kids[l].size()+nd.kids[r].size() > fan {
			continue
		}
		left, right := t.nodeW(nd.kids[l]), nd.kids[r]
		left.items = append(left.items, right.items...)
		left.kids = append(left.kids, right.kids...)
		left.maxs = append(left.maxs, right.maxs...)
		nd.kids[l], nd.maxs[l] = left, left.max()
		nd.kids = slices.Delete(nd.kids, r, r+1)
		nd.maxs = slices.Delete(nd.maxs, r, r+1)
		return
	}
}

package evaluator

import (
	"cmp"
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
//   - entries are sorted by entryPos (kind, subject id, object name),
//     which is unique per key because an object has at most one entry per
//     key;
//   - entries sit in chunks of 1 to maxChunk entries; the chunks, read in
//     order, are the sorted list;
//   - like the other indexes it is copy-on-write: nsTxn.index and
//     nsTxn.unindex maintain it, copying the key's shard, its chunk
//     directory and the one chunk they change, once per transaction.
//
// A write of an object with E entries therefore costs, per entry, a
// binary search and copies of one chunk (at most maxChunk pointers) and of
// the key's chunk directory (about n/maxChunk to 2n/maxChunk pointers for
// a key named by n objects).
const maxChunk = 256

// keyShard maps the flag keys of one shard to their entries.
type keyShard struct {
	m map[string]*keyIdx
}

// keyIdx is the sorted list of the entries naming one flag key.
type keyIdx struct {
	chunks []*keyChunk
	n      int
}

type keyChunk struct {
	list []*objEntry
}

// OverrideCursor is a position in the overrides of one flag: the listing
// continues with the first entry after it in (kind, subject id, object
// name) order. The zero value is the start.
type OverrideCursor struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Name      string      `json:"name"`
}

// cursorOf returns the position of an entry.
func cursorOf(e *objEntry) OverrideCursor {
	return OverrideCursor{Kind: e.obj.ov.Kind, SubjectID: e.obj.ov.SubjectID, Name: e.obj.ov.Name}
}

// compare orders a cursor against an entry's position.
func (c OverrideCursor) compare(e *objEntry) int {
	o := &e.obj.ov
	return cmp.Or(
		strings.Compare(string(c.Kind), string(o.Kind)),
		strings.Compare(c.SubjectID, o.SubjectID),
		strings.Compare(c.Name, o.Name),
	)
}

// chunkAfter returns the index of the first chunk whose last entry is after
// c (len(ki.chunks) when there is none).
func (ki *keyIdx) chunkAfter(c OverrideCursor, orEqual bool) int {
	i, _ := slices.BinarySearchFunc(ki.chunks, c, func(ch *keyChunk, c OverrideCursor) int {
		d := -c.compare(ch.list[len(ch.list)-1])
		if d == 0 && !orEqual {
			return -1 // an equal last entry is not after c
		}
		return d
	})
	return i
}

// after calls fn for the entries after c in order until fn returns false.
func (ki *keyIdx) after(c OverrideCursor, start bool, fn func(*objEntry) bool) {
	ci := 0
	if !start {
		ci = ki.chunkAfter(c, false)
	}
	for ; ci < len(ki.chunks); ci++ {
		list := ki.chunks[ci].list
		j := 0
		if !start {
			j, _ = slices.BinarySearchFunc(list, c, func(e *objEntry, c OverrideCursor) int {
				if c.compare(e) >= 0 {
					return -1
				}
				return 1
			})
			start = true
		}
		for _, e := range list[j:] {
			if !fn(e) {
				return
			}
		}
	}
}

// byKey returns the entries naming key, or nil.
func (st *nsState) byKey(key string) *keyIdx {
	sh := st.keys.get(shardOf(key))
	if sh == nil {
		return nil
	}
	return sh.m[key]
}

func (t *nsTxn) keyShardW(i int) *keyShard {
	if t.keyDir.own(i) {
		return t.st.keys.get(i)
	}
	n := &keyShard{}
	if old := t.st.keys.get(i); old != nil {
		n.m = cloneMap(old.m)
	} else {
		n.m = make(map[string]*keyIdx, 1)
	}
	setLeaf(&t.keyDir, &t.st.keys, i, n)
	return n
}

// keyIdxW returns a writable index of key, creating it when missing.
func (t *nsTxn) keyIdxW(sh *keyShard, key string) *keyIdx {
	ki := sh.m[key]
	if ki != nil && t.keyOwned[key] {
		return ki
	}
	n := &keyIdx{}
	if ki != nil {
		n.chunks, n.n = slices.Clone(ki.chunks), ki.n
	}
	sh.m[key] = n
	if t.keyOwned == nil {
		t.keyOwned = make(map[string]bool)
	}
	t.keyOwned[key] = true
	return n
}

// chunkW makes chunk i of a writable index writable.
func (t *nsTxn) chunkW(ki *keyIdx, i int) *keyChunk {
	c := ki.chunks[i]
	if t.chunkOwned[c] {
		return c
	}
	n := t.newChunk(make([]*objEntry, len(c.list), len(c.list)+1))
	copy(n.list, c.list)
	ki.chunks[i] = n
	return n
}

func (t *nsTxn) newChunk(list []*objEntry) *keyChunk {
	c := &keyChunk{list: list}
	if t.chunkOwned == nil {
		t.chunkOwned = make(map[*keyChunk]bool)
	}
	t.chunkOwned[c] = true
	return c
}

// addByKey inserts an entry into the index of its key.
func (t *nsTxn) addByKey(e *objEntry) {
	ki := t.keyIdxW(t.keyShardW(shardOf(e.key)), e.key)
	pos := cursorOf(e)
	ki.n++
	if len(ki.chunks) == 0 {
		ki.chunks = append(ki.chunks, t.newChunk([]*objEntry{e}))
		return
	}
	ci := min(ki.chunkAfter(pos, true), len(ki.chunks)-1)
	c := t.chunkW(ki, ci)
	j, _ := slices.BinarySearchFunc(c.list, pos, func(x *objEntry, p OverrideCursor) int { return -p.compare(x) })
	c.list = slices.Insert(c.list, j, e)
	if len(c.list) > maxChunk {
		half := len(c.list) / 2
		right := t.newChunk(slices.Clone(c.list[half:]))
		clear(c.list[half:])
		c.list = c.list[:half]
		ki.chunks = slices.Insert(ki.chunks, ci+1, right)
	}
}

// removeByKey removes an entry from the index of its key.
func (t *nsTxn) removeByKey(e *objEntry) {
	sh := t.keyShardW(shardOf(e.key))
	if sh.m[e.key] == nil {
		return
	}
	ki := t.keyIdxW(sh, e.key)
	pos := cursorOf(e)
	ci := ki.chunkAfter(pos, true)
	if ci == len(ki.chunks) {
		return
	}
	j, found := slices.BinarySearchFunc(ki.chunks[ci].list, pos, func(x *objEntry, p OverrideCursor) int { return -p.compare(x) })
	if !found || ki.chunks[ci].list[j] != e {
		return
	}
	ki.n--
	if ki.n == 0 {
		delete(sh.m, e.key)
		delete(t.keyOwned, e.key)
		return
	}
	c := t.chunkW(ki, ci)
	c.list = slices.Delete(c.list, j, j+1)
	switch {
	case len(c.list) == 0:
		ki.chunks = slices.Delete(ki.chunks, ci, ci+1)
	case len(c.list) < maxChunk/4:
		t.mergeChunk(ki, ci)
	}
}

// mergeChunk merges the small chunk ci into a neighbour when they fit in
// one chunk, so that deletions do not leave a directory of tiny chunks.
func (t *nsTxn) mergeChunk(ki *keyIdx, ci int) {
	for _, l := range [2]int{ci - 1, ci} { // (left, ci) or (ci, right)
		r := l + 1
		if l < 0 || r >= len(ki.chunks) || len(ki.chunks[l].list)+len(ki.chunks[r].list) > maxChunk {
			continue
		}
		left := t.chunkW(ki, l)
		left.list = append(left.list, ki.chunks[r].list...)
		ki.chunks = slices.Delete(ki.chunks, r, r+1)
		return
	}
}

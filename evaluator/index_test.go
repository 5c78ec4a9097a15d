package evaluator

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"
)

// TestSubjShardMatchesMap drives the open-addressing subject table with
// random inserts, replacements and deletions and compares it with a map.
func TestSubjShardMatchesMap(t *testing.T) {
	tests := []struct {
		name string
		ids  int
		ops  int
		// mask forces hash collisions when small: all hashes share the
		// bits that pick the start slot.
		mask uint64
	}{
		{name: "few ids", ids: 8, ops: 2000, mask: ^uint64(0)},
		{name: "many ids", ids: 500, ops: 20000, mask: ^uint64(0)},
		{name: "colliding hashes", ids: 64, ops: 5000, mask: 0xF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.ids)))
			sh := &subjShard{}
			model := map[string]*subjEntry{}
			hash := func(id string) uint64 { return hashOf(id) & tc.mask }
			for i := range tc.ops {
				id := "s" + strconv.Itoa(rng.IntN(tc.ids))
				if rng.IntN(3) == 0 {
					sh.set(hash(id), id, nil)
					delete(model, id)
				} else {
					se := &subjEntry{id: id}
					sh.set(hash(id), id, se)
					model[id] = se
				}
				if sh.n != len(model) {
					t.Fatalf("op %d: table holds %d subjects, model %d", i, sh.n, len(model))
				}
			}
			for j := range tc.ids {
				id := "s" + strconv.Itoa(j)
				if got := sh.get(hash(id), id); got != model[id] {
					t.Fatalf("%s: got %p, want %p", id, got, model[id])
				}
			}
			free := 0
			for _, s := range sh.slots {
				if s.se == nil {
					free++
				}
			}
			if free == 0 {
				t.Fatal("table is full; probing would not terminate")
			}
		})
	}
	var empty *subjShard
	if empty.get(1, "x") != nil {
		t.Fatal("nil table")
	}
}

func TestSubjEntryFindLarge(t *testing.T) {
	se := &subjEntry{}
	for i := 99; i >= 0; i-- {
		se.put("k"+strconv.Itoa(1000+i), []*objEntry{{key: "x"}})
	}
	for i := range 100 {
		if se.get("k"+strconv.Itoa(1000+i)) == nil {
			t.Fatalf("key %d missing", i)
		}
	}
	if se.get("k0999") != nil || se.get("zzz") != nil {
		t.Fatal("unexpected key")
	}
	se.put("k1050", nil)
	if se.get("k1050") != nil || len(se.keys) != 99 {
		t.Fatal("delete failed")
	}
}

// TestOverrideEntriesShareTheFlagsKey: an entry for a known flag keeps the flag's copy of
// its key, not the one of the object it was decoded from, which can then be collected; an
// entry for an unknown flag keeps its own.
func TestOverrideEntriesShareTheFlagsKey(t *testing.T) {
	s := NewStore()
	mustApply(t, s, UpsertFlag("ns", "shop.enabled", boolFlag(true)))
	decoded := string([]byte("shop.enabled")) // another copy, as a decoder makes it
	mustApply(t, s, UpsertOverride(userOverride("ns", "o", "alice", t0, off(decoded), off("nope"))))
	st := s.Snapshot().nss["ns"]
	fe, obj := st.flags["shop.enabled"], st.object(SubjectUser, "o")
	if obj == nil || len(obj.entries) != 2 {
		t.Fatalf("object %+v, want two entries", obj)
	}
	if unsafe.StringData(obj.entries[0].key) != unsafe.StringData(fe.key) {
		t.Error("the entry of a known flag keeps its own copy of the key")
	}
	if se := st.subject(subjKey{SubjectUser, "alice"}); se == nil || unsafe.StringData(se.keys[1].key) != unsafe.StringData(fe.key) {
		t.Error("the subject's index keeps its own copy of the key")
	}
	if obj.entries[1].key != "nope" {
		t.Errorf("the entry of an unknown flag has key %q", obj.entries[1].key)
	}
}

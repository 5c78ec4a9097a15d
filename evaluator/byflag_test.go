package evaluator

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listing renders a page as "kind/subject/name:state[:winner|error]" lines.
func listing(p FlagOverridesPage) []string {
	var out []string
	for _, fo := range p.Overrides {
		s := string(fo.Kind) + "/" + fo.SubjectID + "/" + fo.Object.Name + ":" + string(fo.State)
		switch {
		case fo.Winner != nil:
			s += ":" + fo.Winner.Name
		case fo.Error != "":
			s += ":" + fo.Error
		}
		out = append(out, s)
	}
	return out
}

func TestFlagOverrides(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	past, soon := t0.Add(-time.Minute), t0.Add(time.Hour)
	disabled := userOverride("ns", "carol-off", "carol", t0, on("f"))
	disabled.Enabled = false
	expired := userOverride("ns", "dave-old", "dave", t0.Add(-time.Hour), on("f"))
	expired.ExpiresAt = &past
	expiring := deviceOverride("ns", "tab-qa", "tab-1", t0, val("f", `true`))
	expiring.ExpiresAt = &soon
	mustApply(t, s,
		UpsertFlag("ns", "f", boolFlag(false)),
		UpsertFlag("ns", "g", boolFlag(false)),
		UpsertFlag("other", "f", boolFlag(false)),
		UpsertOverride(userOverride("ns", "alice-old", "alice", t0.Add(-2*time.Hour), on("f"), on("g"))),
		UpsertOverride(userOverride("ns", "alice-new", "alice", t0.Add(-time.Hour), off("f"))),
		UpsertOverride(userOverride("ns", "bob-bad", "bob", t0, val("f", `"text"`))),
		UpsertOverride(disabled),
		UpsertOverride(expired),
		UpsertOverride(expiring),
		UpsertOverride(userOverride("ns", "erin", "erin", t0, on("g"), on("ghost"))),
		UpsertOverride(userOverride("other", "alice-other", "alice", t0, on("f"))),
	)
	all := []string{
		"device/tab-1/tab-qa:applies",
		"user/alice/alice-new:lost:alice-old",
		"user/alice/alice-old:applies",
		"user/bob/bob-bad:invalid:boolean flag needs a json boolean, got string",
		"user/carol/carol-off:disabled",
		"user/dave/dave-old:expired",
	}
	tests := []struct {
		name   string
		ns     string
		key    string
		after  *OverrideCursor
		limit  int
		want   []string
		next   *OverrideCursor
		exists bool
		total  int
	}{
		{name: "all, sorted, with states", ns: "ns", key: "f", want: all, exists: true, total: 6},
		{name: "first page", ns: "ns", key: "f", limit: 2, want: all[:2], exists: true, total: 6,
			next: &OverrideCursor{Kind: SubjectUser, SubjectID: "alice", Name: "alice-new"}},
		{name: "middle page", ns: "ns", key: "f", limit: 3, after: &OverrideCursor{Kind: SubjectUser, SubjectID: "alice", Name: "alice-new"},
			want: all[2:5], exists: true, total: 6, next: &OverrideCursor{Kind: SubjectUser, SubjectID: "carol", Name: "carol-off"}},
		{name: "last page exactly", ns: "ns", key: "f", limit: 1, after: &OverrideCursor{Kind: SubjectUser, SubjectID: "carol", Name: "carol-off"},
			want: all[5:], exists: true, total: 6},
		{name: "cursor between entries", ns: "ns", key: "f", after: &OverrideCursor{Kind: SubjectUser, SubjectID: "b"},
			want: all[3:], exists: true, total: 6},
		{name: "cursor past the end", ns: "ns", key: "f", after: &OverrideCursor{Kind: "zzz"}, exists: true, total: 6},
		{name: "other namespace", ns: "other", key: "f", want: []string{"user/alice/alice-other:applies"}, exists: true, total: 1},
		{name: "second key of an object", ns: "ns", key: "g", want: []string{"user/alice/alice-old:applies", "user/erin/erin:applies"}, exists: true, total: 2},
		{name: "key without a flag", ns: "ns", key: "ghost", want: []string{"user/erin/erin:invalid:" + MessageUnknownFlag}, total: 1},
		{name: "flag without overrides", ns: "other", key: "none", total: 0},
		{name: "unknown namespace", ns: "nope", key: "f", total: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := s.Namespace(tc.ns).FlagOverrides(tc.key, tc.after, tc.limit)
			if got := listing(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("listing\n got %q\nwant %q", got, tc.want)
			}
			if !reflect.DeepEqual(p.Next, tc.next) {
				t.Errorf("next = %+v, want %+v", p.Next, tc.next)
			}
			if p.FlagExists != tc.exists || p.Total != tc.total {
				t.Errorf("exists %v total %d, want %v %d", p.FlagExists, p.Total, tc.exists, tc.total)
			}
		})
	}

	t.Run("details of an entry", func(t *testing.T) {
		p := s.Namespace("ns").FlagOverrides("f", nil, 1)
		fo := p.Overrides[0]
		if string(fo.Value) != "true" || fo.Mode != "value" || !fo.Enabled || fo.ExpiresAt == nil || !fo.ExpiresAt.Equal(soon) ||
			fo.Object != (ObjectRef{Kind: SubjectDevice, Namespace: "ns", Name: "tab-qa", UID: "uid-tab-qa"}) ||
			fo.Source != "device-override:ns/tab-qa" {
			t.Errorf("entry %+v", fo)
		}
		bad := s.Namespace("ns").FlagOverrides("f", &OverrideCursor{Kind: SubjectUser, SubjectID: "alice", Name: "alice-old"}, 1).Overrides[0]
		if string(bad.Value) != `"text"` {
			t.Errorf("an invalid value is listed as given: %s", bad.Value)
		}
	})

	t.Run("states follow the clock and writes", func(t *testing.T) {
		clk.Set(soon)
		p := s.Namespace("ns").FlagOverrides("f", nil, 1)
		if got := listing(p); !reflect.DeepEqual(got, []string{"device/tab-1/tab-qa:expired"}) {
			t.Errorf("at expiry: %q", got)
		}
		// The winner goes away: the loser applies; the flag goes away:
		// every entry is invalid.
		mustApply(t, s, DeleteOverride(SubjectUser, "ns", "alice-old"))
		p = s.Namespace("ns").FlagOverrides("f", &OverrideCursor{Kind: SubjectDevice, SubjectID: "tab-1", Name: "tab-qa"}, 1)
		if got := listing(p); !reflect.DeepEqual(got, []string{"user/alice/alice-new:applies"}) {
			t.Errorf("after the winner's deletion: %q", got)
		}
		mustApply(t, s, DeleteFlag("ns", "f"))
		p = s.Namespace("ns").FlagOverrides("f", nil, 0)
		if p.FlagExists || p.Total != 5 {
			t.Errorf("after the flag's deletion: exists %v, total %d", p.FlagExists, p.Total)
		}
		for _, fo := range p.Overrides {
			if fo.State != OverrideInvalid || fo.Error != MessageUnknownFlag {
				t.Errorf("%s: %s %q, want invalid: unknown flag", fo.Object.Name, fo.State, fo.Error)
			}
		}
	})
}

// refOverrides lists what FlagOverrides must return for key, computed from
// the objects the model holds.
func refOverrides(objs map[objKey]Override, flags map[string]bool, key string, now time.Time) []string {
	type item struct {
		o     Override
		entry OverrideEntry
	}
	var items []item
	for _, o := range objs {
		for _, e := range o.Entries {
			if e.Key == key {
				items = append(items, item{o, e})
				break
			}
		}
	}
	active := func(it item) bool {
		return flags[key] && it.o.Enabled && (it.o.ExpiresAt == nil || now.Before(*it.o.ExpiresAt))
	}
	var out []string
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(strings.Compare(string(a.o.Kind), string(b.o.Kind)), strings.Compare(a.o.SubjectID, b.o.SubjectID), strings.Compare(a.o.Name, b.o.Name))
	})
	for _, it := range items {
		s := string(it.o.Kind) + "/" + it.o.SubjectID + "/" + it.o.Name + ":"
		switch {
		case !flags[key]:
			s += "invalid:" + MessageUnknownFlag
		case !it.o.Enabled:
			s += "disabled"
		case !active(it):
			s += "expired"
		default:
			// The oldest active entry of the subject wins (then the lower name).
			var winner *Override
			for _, other := range items {
				if other.o.Kind != it.o.Kind || other.o.SubjectID != it.o.SubjectID || !active(other) {
					continue
				}
				if winner == nil || other.o.CreatedAt.Before(winner.CreatedAt) ||
					(other.o.CreatedAt.Equal(winner.CreatedAt) && other.o.Name < winner.Name) {
					w := other.o
					winner = &w
				}
			}
			if winner.Name == it.o.Name {
				s += "applies"
			} else {
				s += "lost:" + winner.Name
			}
		}
		out = append(out, s)
	}
	return out
}

func TestFlagOverridesMatchesModel(t *testing.T) {
	tests := []struct {
		name             string
		subjects, objs   int
		keys, batches    int
		maxBatch, expire int
	}{
		// Few keys and many objects: long listings, in many pages.
		{name: "crowded keys", subjects: 100, objs: 400, keys: 3, batches: 30, maxBatch: 60, expire: 10},
		// Many keys, subjects with conflicts, small batches.
		{name: "conflicts", subjects: 20, objs: 200, keys: 12, batches: 120, maxBatch: 5, expire: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.objs)))
			clk := newFakeClock(t0)
			s := NewStore(WithClock(clk))
			objs := map[objKey]Override{}
			flags := map[string]bool{}
			keyName := func(i int) string { return "k" + strconv.Itoa(i) }
			expect := func() map[string][]string {
				m := map[string][]string{}
				for k := range tc.keys + 1 { // one key more than entries name: never listed
					m[keyName(k)] = refOverrides(objs, flags, keyName(k), clk.Now())
				}
				return m
			}
			var oldSnap *Snapshot
			var oldWant map[string][]string
			// The last batches only delete, in random order, until no
			// object is left.
			drain := tc.batches
			for b := 0; b < drain || len(objs) > 0; b++ {
				var ops []Op
				if b >= drain {
					var keys []objKey
					for k := range objs {
						keys = append(keys, k)
					}
					slices.SortFunc(keys, func(a, b objKey) int {
						return cmp.Or(strings.Compare(string(a.kind), string(b.kind)), strings.Compare(a.name, b.name))
					})
					rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
					for _, k := range keys[:min(len(keys), 1+rng.IntN(tc.maxBatch))] {
						ops = append(ops, DeleteOverride(k.kind, "ns", k.name))
						delete(objs, k)
					}
				}
				for range (1 + rng.IntN(tc.maxBatch)) * btoi(b < drain) {
					kind := SubjectUser
					if rng.IntN(4) == 0 {
						kind = SubjectDevice
					}
					name := "o" + strconv.Itoa(rng.IntN(tc.objs))
					switch r := rng.IntN(10); {
					case r < 6:
						o := userOverride("ns", name, "s"+strconv.Itoa(rng.IntN(tc.subjects)), t0.Add(time.Duration(rng.IntN(50))*time.Second))
						o.Kind = kind
						o.Enabled = rng.IntN(8) != 0
						if rng.IntN(tc.expire) == 0 {
							at := clk.Now().Add(time.Duration(rng.IntN(20)) * time.Second)
							o.ExpiresAt = &at
						}
						for _, k := range rng.Perm(tc.keys)[:rng.IntN(min(tc.keys, 4)+1)] {
							o.Entries = append(o.Entries, on(keyName(k)))
						}
						ops = append(ops, UpsertOverride(o))
						objs[objKey{kind, name}] = o
					case r < 9:
						ops = append(ops, DeleteOverride(kind, "ns", name))
						delete(objs, objKey{kind, name})
					default:
						k := keyName(rng.IntN(tc.keys))
						if flags[k] {
							ops = append(ops, DeleteFlag("ns", k))
						} else {
							ops = append(ops, UpsertFlag("ns", k, boolFlag(false)))
						}
						flags[k] = !flags[k]
					}
				}
				// The anchor flag keeps the namespace from emptying.
				ops = append(ops, UpsertFlag("ns", "anchor", boolFlag(true)))
				clk.Add(time.Duration(rng.IntN(3)) * time.Second)
				mustApply(t, s, ops...)
				snap := s.Snapshot()
				want := expect()
				for k, w := range want {
					ns := snap.Namespace("ns")
					if got := listing(ns.FlagOverrides(k, nil, 0)); !slices.Equal(got, w) {
						t.Fatalf("batch %d, key %s:\n got %q\nwant %q", b, k, got, w)
					}
					// Pages of a random size add up to the whole listing.
					var paged []string
					var after *OverrideCursor
					limit := 1 + rng.IntN(40)
					for {
						p := ns.FlagOverrides(k, after, limit)
						if p.Total != len(w) {
							t.Fatalf("batch %d, key %s: total %d, want %d", b, k, p.Total, len(w))
						}
						paged = append(paged, listing(p)...)
						if p.Next == nil {
							break
						}
						after = p.Next
					}
					if !slices.Equal(paged, w) {
						t.Fatalf("batch %d, key %s, pages of %d:\n got %q\nwant %q", b, k, limit, paged, w)
					}
				}
				if oldSnap != nil {
					for k, w := range oldWant {
						// Old snapshots are evaluated with the clock, so
						// only the entries (not their states) must be kept.
						got := listing(oldSnap.Namespace("ns").FlagOverrides(k, nil, 0))
						if len(got) != len(w) || (len(w) > 0 && names(got) != names(w)) {
							t.Fatalf("batch %d: the previous snapshot's listing of %s changed:\n got %q\nwant %q", b, k, got, w)
						}
					}
				}
				oldSnap, oldWant = snap, want
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// names strips the states off a listing.
func names(l []string) string {
	var b strings.Builder
	for _, s := range l {
		parts := strings.SplitN(s, ":", 2)
		fmt.Fprintln(&b, parts[0])
	}
	return b.String()
}

func compareTuple(a, b OverrideCursor) int {
	return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.SubjectID, b.SubjectID), strings.Compare(a.Name, b.Name))
}

// TestCursorsSortLikeTheTuple checks that cursors sort like (kind, subject,
// name), also for parts that contain NUL bytes or are prefixes of each
// other.
func TestCursorsSortLikeTheTuple(t *testing.T) {
	parts := []string{"", "a", "a\x00", "a\x00b", "a\x01", "ab", "b", "\x00", "\x00\xff", "\xff", "a\x00\x00"}
	var cs []OverrideCursor
	for _, k := range []SubjectKind{SubjectDevice, SubjectUser} {
		for _, s := range parts {
			for _, n := range parts {
				cs = append(cs, OverrideCursor{Kind: k, SubjectID: s, Name: n})
			}
		}
	}
	for _, a := range cs {
		for _, b := range cs {
			if got, want := a.compare(b), compareTuple(a, b); got != want {
				t.Fatalf("%q vs %q: cursors compare %d, tuples %d", a, b, got, want)
			}
		}
	}
}

package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// syncReplica is what an in-process client holds: a store fed by the sync
// stream's events.
type syncReplica struct {
	store  *evaluator.Store
	ns     string
	lastID string
}

func newSyncReplica(ns string) *syncReplica {
	return &syncReplica{store: evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return testNow }))), ns: ns}
}

// apply applies a sync event to the replica.
func (r *syncReplica) apply(t *testing.T, ev sseEvent) {
	t.Helper()
	var ops []evaluator.Op
	switch ev.event {
	case eventSyncSnapshot:
		var s evaluator.NamespaceData
		if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if s.Namespace != r.ns {
			t.Fatalf("snapshot of namespace %q, want %q", s.Namespace, r.ns)
		}
		ops = s.Ops(r.store.Snapshot())
	case eventSyncChanged:
		var c evaluator.NamespaceChanges
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("change: %v", err)
		}
		ops = c.Ops(r.ns)
	case "":
		if ev.id == "" || ev.data != "" {
			t.Fatalf("unexpected frame %+v", ev)
		}
	default:
		t.Fatalf("unexpected event %+v", ev)
	}
	if len(ops) > 0 {
		if _, _, err := r.store.Apply(ops...); err != nil {
			t.Fatalf("applying %s: %v", ev.event, err)
		}
	}
	r.lastID = ev.id
}

var syncContexts = []evaluator.Context{
	{UserID: "alice"}, {UserID: "bob"}, {UserID: "bob", Attributes: map[string]any{"plan": "pro"}},
	{UserID: "carol", Role: "admin"}, {TargetingKey: "t-9"}, {UserID: "alice", DeviceID: "tab-1", DeviceClass: "tablet"},
}

// same asserts that the replica evaluates every test context as the
// server's store does; the error messages of keys in loose may differ.
func (r *syncReplica) same(t *testing.T, store *evaluator.Store, loose ...string) {
	t.Helper()
	for _, c := range syncContexts {
		want := store.Namespace(r.ns).EvaluateAll(c)
		got := r.store.Namespace(r.ns).EvaluateAll(c)
		for _, rs := range [][]evaluator.Result{want, got} {
			for i := range rs {
				if slices.Contains(loose, rs[i].Key) && rs[i].ErrorCode != evaluator.ErrorNone {
					rs[i].ErrorMessage = ""
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("replica evaluates %+v as\n%+v\nwant\n%+v", c, got, want)
		}
	}
}

// epochOf returns the epoch of a sync event ID, which must be of revision rev.
func epochOf(t *testing.T, id string, rev uint64) string {
	t.Helper()
	epoch, r, ok := strings.Cut(id, "-")
	if !ok || len(epoch) != 16 || r != strconv.FormatUint(rev, 10) {
		t.Fatalf("event ID %q, want <16 hex digits>-%d", id, rev)
	}
	return epoch
}

func syncID(epoch string, rev uint64) string { return epoch + "-" + strconv.FormatUint(rev, 10) }

func TestSyncStream(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	c := open(t, srv, "/v1/sync")
	r := newSyncReplica("shop")
	ev := c.next(t)
	if ev.event != eventSyncSnapshot {
		t.Fatalf("first event %+v", ev)
	}
	epoch := epochOf(t, ev.id, store.Snapshot().Revision())
	var snap evaluator.NamespaceData
	if err := json.Unmarshal([]byte(ev.data), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Flags) != 6 || len(snap.Overrides) != 1 || snap.Overrides[0].Reason != "beta tester" {
		t.Fatalf("snapshot has %d flags and overrides %+v, want 6 flags and alice-beta", len(snap.Flags), snap.Overrides)
	}
	r.apply(t, ev)
	r.same(t, store)

	steps := []struct {
		name string
		ops  []evaluator.Op
		want evaluator.NamespaceChanges
	}{
		{"flag changed", []evaluator.Op{evaluator.UpsertFlag("shop", "banner", stringFlag(`"sale"`, true))},
			evaluator.NamespaceChanges{Flags: map[string]evaluator.FlagSpec{"banner": stringFlag(`"sale"`, true)}}},
		{"override created", []evaluator.Op{userOv("bob", "bob-theme", "theme", `"neon"`)},
			evaluator.NamespaceChanges{Overrides: []evaluator.Override{{Kind: evaluator.SubjectUser, SubjectID: "bob", Namespace: "shop", Name: "bob-theme",
				CreatedAt: testNow.Add(-time.Minute), Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"neon"`)}}}}}},
		{"losing override", []evaluator.Op{userOv("bob", "bob-theme-2", "theme", `"light"`)},
			evaluator.NamespaceChanges{Overrides: []evaluator.Override{{Kind: evaluator.SubjectUser, SubjectID: "bob", Namespace: "shop", Name: "bob-theme-2",
				CreatedAt: testNow.Add(-time.Minute), Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"light"`)}}}}}},
		{"override deleted", []evaluator.Op{evaluator.DeleteOverride(evaluator.SubjectUser, "shop", "bob-theme")},
			evaluator.NamespaceChanges{DeletedOverrides: []evaluator.ObjectName{{Kind: evaluator.SubjectUser, Name: "bob-theme"}}}},
		{"flag deleted", []evaluator.Op{evaluator.DeleteFlag("shop", "limits")}, evaluator.NamespaceChanges{DeletedFlags: []string{"limits"}}},
	}
	for _, st := range steps {
		apply(t, store, st.ops...)
		ev := c.next(t)
		if ev.event != eventSyncChanged || ev.id != syncID(epoch, store.Snapshot().Revision()) {
			t.Fatalf("%s: event %+v", st.name, ev)
		}
		var got evaluator.NamespaceChanges
		if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s: change %+v, want %+v", st.name, got, st.want)
		}
		r.apply(t, ev)
		r.same(t, store)
	}

	// Writes to another namespace, and expiries, send nothing: the client
	// evaluates expiry itself.
	apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"yo"`, true)))
	store.Tick(testNow.Add(2 * time.Hour))
	c.quiet(t)

	// A client that resumes with its ID gets that ID alone, then what
	// changed since.
	c.cancel()
	c2 := open(t, srv, "/v1/sync", "Last-Event-ID", r.lastID)
	c2.expectUpToDate(t, r.lastID)
	apply(t, store, userOv("carol", "carol-banner", "banner", `"vip"`))
	r.apply(t, c2.next(t))
	r.same(t, store)
	c2.cancel()
	id := r.lastID
	apply(t, store, evaluator.UpsertFlag("shop", "theme", stringFlag(`"blue"`, true)))
	c3 := open(t, srv, "/v1/sync?lastEventId="+id)
	c3.expectUpToDate(t, id)
	r.apply(t, c3.next(t))
	r.same(t, store)
	if r.lastID != syncID(epoch, store.Snapshot().Revision()) {
		t.Fatalf("last ID %s after catching up, want %s", r.lastID, syncID(epoch, store.Snapshot().Revision()))
	}
}

func TestSyncStreamSnapshotWhenItCannotResume(t *testing.T) {
	store, _ := newTestStore(t)
	srv := serveStore(t, store, Options{})
	rev := store.Snapshot().Revision()
	c := open(t, srv, "/v1/sync")
	epoch := epochOf(t, c.next(t).id, rev)
	// Another server over the same store: its IDs mean nothing here.
	other := open(t, serveStore(t, store, Options{}), "/v1/sync")
	otherID := other.next(t).id
	if epochOf(t, otherID, rev) == epoch {
		t.Fatal("two servers drew the same epoch")
	}
	for name, id := range map[string]string{
		"another server's ID":   otherID,
		"an ID from the future": syncID(epoch, rev+5),
		"garbage":               syncID(epoch, 0) + "x",
	} {
		t.Run(name, func(t *testing.T) {
			c := open(t, srv, "/v1/sync", "Last-Event-ID", id)
			if ev := c.next(t); ev.event != eventSyncSnapshot || ev.id != syncID(epoch, rev) {
				t.Fatalf("first event %+v, want a snapshot", ev)
			}
		})
	}
	t.Run("history overflowed", func(t *testing.T) {
		small := evaluator.NewStore(evaluator.WithChangeHistory(2))
		apply(t, small, evaluator.UpsertFlag("shop", "a", stringFlag(`"1"`, true)))
		srv := serveStore(t, small, Options{})
		id := open(t, srv, "/v1/sync").next(t).id
		for range 3 {
			apply(t, small, evaluator.UpsertFlag("shop", "a", stringFlag(`"2"`, true)))
		}
		c := open(t, srv, "/v1/sync", "Last-Event-ID", id)
		if ev := c.next(t); ev.event != eventSyncSnapshot || !strings.Contains(ev.data, `"2"`) {
			t.Fatalf("first event %+v, want a snapshot with the latest value", ev)
		}
	})
}

func TestSyncStreamOverflowWhileFollowing(t *testing.T) {
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 16)}
	srv, store, g := newGatedServer(t, Options{Metrics: m})
	c := open(t, srv, "/v1/sync")
	r := newSyncReplica("shop")
	first := c.next(t)
	epoch := epochOf(t, first.id, store.Snapshot().Revision())
	r.apply(t, first)
	g.outrun(t, store, userOv("bob", "bob-theme", "theme", `"neon"`), evaluator.DeleteFlag("shop", "limits"))
	for r.lastID != syncID(epoch, store.Snapshot().Revision()) {
		r.apply(t, c.next(t))
	}
	r.same(t, store)
	select {
	case <-m.overflow:
	default:
		t.Error("the resynchronisation was not counted")
	}
}

func TestSyncStreamRejections(t *testing.T) {
	srv, _ := newStreamServer(t, Options{MaxSubscribers: 1}, nil)
	resp, _ := get(t, srv, "/v1/sync?userId=bob")
	checkError(t, resp, http.StatusBadRequest, codeInvalidQuery, `unknown query parameter "userId"`)
	resp, _ = get(t, srv, "/namespaces/nope/v1/sync")
	checkError(t, resp, http.StatusNotFound, codeNamespaceNotFound)
	_ = open(t, srv, "/v1/sync")
	resp, _ = get(t, srv, "/v1/sync")
	checkError(t, resp, http.StatusServiceUnavailable, codeTooManySubscribers)
}

func TestSyncStreamNeedsTheSyncScope(t *testing.T) {
	auth := newAuth(t, AuthOptions{})
	srv, _ := newStreamServer(t, Options{Auth: auth}, nil)
	device := edToken(t, claims("shop", aliceCtx))
	admin := edToken(t, adminClaims("shop"))
	syncTok := edToken(t, with(claims("shop", map[string]any{}), "scope", ScopeSync))
	otherNS := edToken(t, with(claims("other", map[string]any{}), "scope", ScopeSync))
	tests := []struct {
		name   string
		path   string
		header []string
		status int
		code   string
	}{
		{"no token", "/v1/sync", nil, http.StatusUnauthorized, codeUnauthorized},
		{"a device token", "/v1/sync", bearer(device), http.StatusForbidden, codeForbidden},
		{"an admin token", "/v1/sync", bearer(admin), http.StatusForbidden, codeForbidden},
		{"a sync token of another namespace", "/v1/sync", bearer(otherNS), http.StatusUnauthorized, codeUnauthorized},
		{"a sync token in the query", "/v1/sync?access_token=" + syncTok, nil, http.StatusBadRequest, codeInvalidQuery},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(t, srv, tc.path, tc.header...)
			checkError(t, resp, tc.status, tc.code)
			if tc.status == http.StatusForbidden && !strings.Contains(resp.Header.Get("WWW-Authenticate"), ScopeSync) {
				t.Errorf("WWW-Authenticate %q does not name %s", resp.Header.Get("WWW-Authenticate"), ScopeSync)
			}
		})
	}
	c := open(t, srv, "/namespaces/shop/v1/sync", bearer(syncTok)...)
	if ev := c.next(t); ev.event != eventSyncSnapshot {
		t.Fatalf("first event %+v, want a snapshot", ev)
	}
}

// TestSyncStreamValuesThatAreNotJSON: the store keeps raw values that are
// not JSON (never serving them); the stream sends what evaluates alike.
func TestSyncStreamValuesThatAreNotJSON(t *testing.T) {
	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return testNow })))
	apply(t, store,
		evaluator.UpsertFlag("shop", "ok", stringFlag(`"v"`, true)),
		evaluator.UpsertFlag("shop", "bad", stringFlag(`{not json`, true)),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "bob", Namespace: "shop", Name: "bob",
			CreatedAt: testNow.Add(-time.Minute), Enabled: true, Entries: []evaluator.OverrideEntry{
				{Key: "ok", Value: json.RawMessage(`{nope`)}, {Key: "bad"}}}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "bob", Namespace: "shop", Name: "bob-2",
			CreatedAt: testNow, Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "ok", Value: json.RawMessage(`"second"`)}}}),
	)
	c := open(t, serveStore(t, store, Options{}), "/v1/sync")
	r := newSyncReplica("shop")
	ev := c.next(t)
	if !strings.Contains(ev.data, string(specNotJSON)) {
		t.Fatalf("snapshot %s does not mark the flag that is not JSON", ev.data)
	}
	r.apply(t, ev)
	r.same(t, store, "bad")
	if got := r.store.Evaluate("shop", evaluator.Context{UserID: "bob"}, "ok"); got.Value != "second" {
		t.Fatalf("bob's ok = %+v, want the second override's value", got)
	}
}

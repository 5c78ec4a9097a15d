package server

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// serveStore serves store on a test server with the stream test defaults.
func serveStore(t *testing.T, store *evaluator.Store, opts Options) *httptest.Server {
	t.Helper()
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "shop"
	}
	if opts.NewTicker == nil && opts.Heartbeat == 0 {
		opts.NewTicker = noTicks
	}
	srv := httptest.NewServer(New(store, opts))
	t.Cleanup(srv.Close)
	return srv
}

// clientState is what a native stream client holds: the flags of its last
// snapshot with every later changed event applied.
type clientState struct {
	flags  map[string]any
	lastID string
}

// apply applies a snapshot or changed event; it reports false for other
// frames.
func (c *clientState) apply(t *testing.T, ev sseEvent) bool {
	t.Helper()
	switch ev.event {
	case "snapshot":
		var d struct {
			Flags map[string]any `json:"flags"`
		}
		if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
			t.Fatalf("snapshot data %q: %v", ev.data, err)
		}
		c.flags = d.Flags
	case "device.feature-flags.changed":
		var d struct {
			Changed map[string]any `json:"changed"`
			Removed []string       `json:"removed"`
		}
		if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
			t.Fatalf("changed data %q: %v", ev.data, err)
		}
		for k, v := range d.Changed {
			c.flags[k] = v
		}
		for _, k := range d.Removed {
			delete(c.flags, k)
		}
	default:
		return false
	}
	if ev.id == "" {
		t.Fatalf("event without id: %+v", ev)
	}
	c.lastID = ev.id
	return true
}

// effectiveFlags returns the effective map of a context from POST /v1/evaluate.
func effectiveFlags(t *testing.T, srv *httptest.Server, path, context string) map[string]any {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(`{"context":`+context+`}`))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, resp.Body)
	var d struct {
		Flags map[string]any `json:"flags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST %s: status %d, %v", path, resp.StatusCode, err)
	}
	return d.Flags
}

// catchUp reads events into st until it equals the server's effective map
// for bob, failing after eventWait.
func (c *sseClient) catchUp(t *testing.T, srv *httptest.Server, st *clientState) {
	t.Helper()
	want := effectiveFlags(t, srv, "/v1/evaluate", `{"userId":"bob"}`)
	deadline := time.Now().Add(eventWait)
	for !reflect.DeepEqual(st.flags, want) {
		if time.Now().After(deadline) {
			t.Fatalf("client state\n%v\nwant\n%v", st.flags, want)
		}
		st.apply(t, c.next(t))
	}
}

func bannerOn() evaluator.Op {
	return evaluator.UpsertFlag("shop", "banner", stringFlag(`"hello"`, true))
}

func tickN(store *evaluator.Store, n int) {
	for range n {
		store.Tick(testNow)
	}
}

// TestResumeOnAnotherReplica: two replicas hold the same state through
// different histories (so their revisions differ). A client that read from
// one and resumes on the other with its last event ID gets every change
// made meanwhile, or nothing when it is up to date.
func TestResumeOnAnotherReplica(t *testing.T) {
	changes := []evaluator.Op{userOv("bob", "bob-theme", "theme", `"neon"`), bannerOn()}
	tests := []struct {
		name string
		kind string // stream path
	}{
		{"native", "/v1/stream"},
		{"OFREP", "/ofrep/v1/sse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Replica A: the fixture, then five ticks: revision 6.
			storeA, _ := newTestStore(t)
			tickN(storeA, 5)
			// Replica B: the fixture, then the changes, then ticks.
			storeB, _ := newTestStore(t)
			a, b := serveStore(t, storeA, Options{}), serveStore(t, storeB, Options{})

			var lastID string
			var st clientState
			if tc.kind == "/v1/stream" {
				c := open(t, a, tc.kind+"?userId=bob")
				if !st.apply(t, c.next(t)) {
					t.Fatal("no snapshot")
				}
				lastID = st.lastID
				c.cancel()
			} else {
				// An OFREP client holds the bulk response; its stream
				// tells it about the state of that response.
				lastID = ofrepStreamID(t, a, "bob")
			}

			// The changes reach both replicas; B publishes them at
			// revisions below A's and then ticks past it.
			for _, op := range changes {
				apply(t, storeA, op)
				apply(t, storeB, op)
			}
			tickN(storeB, 8)

			c := open(t, b, tc.kind+"?userId=bob", "Last-Event-ID", lastID)
			if tc.kind == "/v1/stream" {
				c.catchUp(t, b, &st)
			} else if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) {
				t.Fatalf("frame = %+v, want a refetch event", ev)
			}
			c.quiet(t)

			// A client that is up to date on A gets nothing new on B: the ID
			// alone on the native stream, nothing on the OFREP stream.
			upToDate := ofrepStreamID(t, a, "bob")
			if tc.kind == "/v1/stream" {
				c := open(t, a, tc.kind+"?userId=bob")
				var st clientState
				st.apply(t, c.next(t))
				upToDate = st.lastID
			}
			c = open(t, b, tc.kind+"?userId=bob", "Last-Event-ID", upToDate)
			if tc.kind == "/v1/stream" {
				c.expectUpToDate(t, upToDate)
			}
			c.quiet(t)
		})
	}
}

// ofrepStreamID opens an OFREP stream for user on srv, makes it send a
// refetch event by changing nothing but asking with an unknown ID, and
// returns that event's ID: the state of the user's values on srv now.
func ofrepStreamID(t *testing.T, srv *httptest.Server, user string) string {
	t.Helper()
	c := open(t, srv, "/ofrep/v1/sse?userId="+user, "Last-Event-ID", "unknown")
	ev := c.next(t)
	if !strings.Contains(ev.data, `"refetchEvaluation"`) || ev.id == "" {
		t.Fatalf("frame = %+v, want a refetch event with an id", ev)
	}
	c.cancel()
	return ev.id
}

// TestResumeAfterRestart: a server restarted from the same state (a new
// store with a fresh, shorter history) gives a resuming client nothing when
// nothing changed, and every change made while it was down otherwise.
func TestResumeAfterRestart(t *testing.T) {
	before, _ := newTestStore(t)
	apply(t, before, userOv("bob", "bob-theme", "theme", `"neon"`))
	tickN(before, 3) // revision 5
	srv := serveStore(t, before, Options{})
	c := open(t, srv, "/v1/stream?userId=bob")
	var st clientState
	st.apply(t, c.next(t))
	c.cancel()
	srv.Close()

	t.Run("nothing changed", func(t *testing.T) {
		after, _ := newTestStore(t)
		apply(t, after, userOv("bob", "bob-theme", "theme", `"neon"`)) // revision 2
		srv := serveStore(t, after, Options{})
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", st.lastID)
		c.expectUpToDate(t, st.lastID)
		c.quiet(t)
	})
	t.Run("changed while down", func(t *testing.T) {
		after, _ := newTestStore(t)
		apply(t, after, bannerOn()) // the change made while down
		apply(t, after, userOv("bob", "bob-theme", "theme", `"neon"`))
		tickN(after, 3) // revision 6
		srv := serveStore(t, after, Options{})
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", st.lastID)
		st := st
		st.flags = maps.Clone(st.flags)
		c.catchUp(t, srv, &st)
		c.quiet(t)
	})
}

// TestWriteBetweenSnapshotAndFeedIsDelivered places a write exactly
// between a stream's read of the store's state (its snapshot) and its
// first read of the change feed: the write must reach the client without
// any later write.
func TestWriteBetweenSnapshotAndFeedIsDelivered(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	gotSnapshot, written := make(chan struct{}), make(chan struct{})
	var fired atomic.Bool
	hook := func() {
		if !fired.CompareAndSwap(false, true) {
			return
		}
		defer close(written)
		// Write only once the client holds the snapshot, so that the
		// stream has nothing else left to send.
		select {
		case <-gotSnapshot:
		case <-time.After(eventWait):
			t.Error("the client got no snapshot")
			return
		}
		apply(t, store, bannerOn())
	}
	testHookBeforeFeedRead.Store(&hook)
	t.Cleanup(func() { testHookBeforeFeedRead.Store(nil) })

	c := open(t, srv, "/v1/stream?userId=bob")
	var st clientState
	if !st.apply(t, c.next(t)) {
		t.Fatal("no snapshot")
	}
	close(gotSnapshot)
	select {
	case <-written:
	case <-time.After(eventWait):
		t.Fatal("the hook never ran: the test did not place its write")
	}
	c.catchUp(t, srv, &st)
	if st.flags["banner"].(map[string]any)["value"] != "hello" {
		t.Fatalf("banner = %v, want the write made in the gap", st.flags["banner"])
	}
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// eventWait bounds how long a test waits for an expected event; absence is
// asserted over quietWait.
const (
	eventWait = 5 * time.Second
	quietWait = 300 * time.Millisecond
)

// sseEvent is one frame of an event stream.
type sseEvent struct {
	id, event, data, comment, retry string
}

type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	retry  string // of the first frame
}

// noTicks never ticks: heartbeats stay out of the way of tests that do not
// test them.
func noTicks(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

func newStreamServer(t *testing.T, opts Options, wrap func(http.Handler) http.Handler) (*httptest.Server, *evaluator.Store) {
	t.Helper()
	store, _ := newTestStore(t)
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "shop"
	}
	if opts.NewTicker == nil && opts.Heartbeat == 0 {
		opts.NewTicker = noTicks
	}
	h := New(store, opts)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store
}

// get sends a GET; the response body is closed at cleanup.
func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		closeOrFail(t, resp.Body)
	})
	return resp, cancel
}

// open opens a stream and reads its frames in the background.
func open(t *testing.T, srv *httptest.Server, path string, header ...string) *sseClient {
	t.Helper()
	resp, cancel := get(t, srv, path, header...)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	// A token in the URL must not be stored by caches (RFC 6750, section 2.3).
	wantCC := "no-cache"
	if strings.Contains(path, "access_token=") {
		wantCC = "no-store"
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != wantCC {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 256), cancel: cancel}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": "):
				ev.comment = line[2:]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			case strings.HasPrefix(line, "retry: "):
				ev.retry = line[7:]
			default:
				ev.comment = "unparsed: " + line
			}
		}
	}()
	ev := c.next(t)
	if ev.retry == "" || ev.id != "" || ev.event != "" || ev.data != "" {
		t.Fatalf("first frame = %+v, want only retry", ev)
	}
	c.retry = ev.retry
	return c
}

func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-timer.C:
		t.Fatal("no event within", eventWait)
	}
	return sseEvent{}
}

// quiet asserts that no frame arrives within quietWait.
func (c *sseClient) quiet(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(quietWait)
	defer timer.Stop()
	select {
	case ev := <-c.events:
		t.Fatalf("unexpected frame %+v", ev)
	case <-timer.C:
	}
}

func jsonEq(t *testing.T, got, want string) {
	t.Helper()
	if g, w := decodeJSON(t, got), decodeJSON(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("data = %s\nwant   %s", got, want)
	}
}

func (c *sseClient) expect(t *testing.T, event, id, data string) {
	t.Helper()
	ev := c.next(t)
	if ev.event != event || ev.id != id {
		t.Fatalf("frame = %+v, want event %q id %q", ev, event, id)
	}
	jsonEq(t, ev.data, data)
}

// expectUpToDate asserts that the next frame is the ID alone, which a
// native stream sends a client that resumes with the ID of its values.
func (c *sseClient) expectUpToDate(t *testing.T, id string) {
	t.Helper()
	if ev := c.next(t); ev != (sseEvent{id: id}) {
		t.Fatalf("frame = %+v, want id %q alone", ev, id)
	}
}

// idOf is the event ID of a client of namespace ns holding the current
// effective map of ctx in store.
func idOf(store *evaluator.Store, ns string, ctx evaluator.Context) string {
	st := streamState{ns: ns, ctx: ctx}
	st.reset(store.Namespace(ns))
	return st.id()
}

var bobCtx = evaluator.Context{UserID: "bob"}

func apply(t *testing.T, store *evaluator.Store, ops ...evaluator.Op) {
	t.Helper()
	if _, _, err := store.Apply(ops...); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func userOv(user, name, key, value string) evaluator.Op {
	return evaluator.UpsertOverride(evaluator.Override{
		Kind: evaluator.SubjectUser, SubjectID: user, Namespace: "shop", Name: name,
		CreatedAt: testNow.Add(-time.Minute), Enabled: true,
		Entries: []evaluator.OverrideEntry{{Key: key, Value: json.RawMessage(value)}},
	})
}

func stringFlag(value string, enabled bool) evaluator.FlagSpec {
	return evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: enabled, Value: json.RawMessage(value)}
}

const bobSnapshot = `{"namespace":"shop","revision":1,"flags":{
	"banner":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch"},
	"broken":{"enabled":false,"reason":"ERROR","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
	"limits":{"value":{"maxItems":50},"enabled":true,"variant":"on","reason":"STATIC","source":"default"},
	"new-checkout":{"value":false,"enabled":false,"variant":"off","reason":"SPLIT","source":"rollout"},
	"theme":{"value":"dark","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`

func TestStreamSnapshotAndChanges(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	bob := open(t, srv, "/v1/stream?userId=bob")
	bob.expect(t, "snapshot", idOf(store, "shop", bobCtx), bobSnapshot)
	checkInRange(t, "retry (default 3000 ms)", bob.retry, 1500, 4500)
	aliceCtx := evaluator.Context{TargetingKey: "alice"}
	alice := open(t, srv, "/v1/stream?targetingKey=alice")
	if ev := alice.next(t); ev.event != "snapshot" || strings.Contains(ev.data, "admin-panel") ||
		!strings.Contains(ev.data, `"source":"user-override:shop/alice-beta"`) {
		t.Fatalf("alice snapshot = %+v (role-gated flag must be left out, override applied)", ev)
	}

	t.Run("user override reaches only that user", func(t *testing.T) {
		apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
		bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx), `{"revision":2,"changed":{
			"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"}},
			"removed":[]}`)
		alice.quiet(t)
		bob.quiet(t)
	})

	t.Run("flag change re-evaluated per subscriber", func(t *testing.T) {
		apply(t, store, evaluator.UpsertFlag("shop", "banner", stringFlag(`"hello"`, true)))
		want := `{"revision":3,"changed":{"banner":{"value":"hello","enabled":true,"variant":"on","reason":"STATIC","source":"default"}},"removed":[]}`
		bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx), want)
		alice.expect(t, "device.feature-flags.changed", idOf(store, "shop", aliceCtx), want)
	})

	t.Run("flag change without effect sends nothing", func(t *testing.T) {
		// theme is overridden for bob; for alice its result is unchanged.
		apply(t, store, evaluator.UpsertFlag("shop", "theme", evaluator.FlagSpec{
			Type: evaluator.TypeString, Enabled: true, Value: json.RawMessage(`"dark"`), OffValue: json.RawMessage(`"light"`),
		}))
		bob.quiet(t)
		alice.quiet(t)
	})

	t.Run("removed key", func(t *testing.T) {
		apply(t, store, evaluator.DeleteFlag("shop", "limits"))
		bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx), `{"revision":5,"changed":{},"removed":["limits"]}`)
		alice.expect(t, "device.feature-flags.changed", idOf(store, "shop", aliceCtx), `{"revision":5,"changed":{},"removed":["limits"]}`)
	})

	t.Run("other namespace", func(t *testing.T) {
		other := open(t, srv, "/namespaces/other/v1/stream?userId=bob")
		other.expect(t, "snapshot", idOf(store, "other", bobCtx), `{"namespace":"other","revision":5,"flags":{
			"greeting":{"value":"hi","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`)
		apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"hey"`, true)))
		other.expect(t, "device.feature-flags.changed", idOf(store, "other", bobCtx), `{"revision":6,"changed":{
			"greeting":{"value":"hey","enabled":true,"variant":"on","reason":"STATIC","source":"default"}},"removed":[]}`)
		bob.quiet(t)
	})
}

func TestStreamDeviceOverrides(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	d1 := open(t, srv, "/v1/stream?deviceId=d1&deviceClass=phone")
	d1.next(t)
	d2 := open(t, srv, "/v1/stream?deviceId=d2&deviceClass=phone")
	d2.next(t)
	apply(t, store, evaluator.UpsertOverride(evaluator.Override{
		Kind: evaluator.SubjectDevice, SubjectID: "d1", Namespace: "shop", Name: "d1-theme",
		CreatedAt: testNow, Enabled: true,
		Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"neon"`)}},
	}))
	d1.expect(t, "device.feature-flags.changed", idOf(store, "shop", evaluator.Context{DeviceID: "d1", DeviceClass: "phone"}), `{"revision":2,"changed":{
		"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"device-override:shop/d1-theme"}},"removed":[]}`)
	d2.quiet(t)
}

func TestStreamResume(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	first := open(t, srv, "/v1/stream?userId=bob")
	first.expect(t, "snapshot", idOf(store, "shop", bobCtx), bobSnapshot)
	first.cancel()
	old := idOf(store, "shop", bobCtx)

	apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
	apply(t, store, userOv("carol", "carol-theme", "theme", `"neon"`))
	apply(t, store, evaluator.DeleteFlag("shop", "limits"))
	apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"hey"`, true)))
	want := `{"namespace":"shop","revision":5,"flags":{
		"banner":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch"},
		"broken":{"enabled":false,"reason":"ERROR","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
		"new-checkout":{"value":false,"enabled":false,"variant":"off","reason":"SPLIT","source":"rollout"},
		"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"}}}`
	current := idOf(store, "shop", bobCtx)
	if current == old {
		t.Fatal("the ID did not change with the values")
	}

	tests := []struct {
		name   string
		path   string
		header []string
		want   bool // a fresh snapshot; false: the ID alone
	}{
		{"older ID in the header", "/v1/stream?userId=bob", []string{"Last-Event-ID", old}, true},
		{"older ID as query parameter", "/v1/stream?userId=bob&lastEventId=" + old, nil, true},
		{"header wins over the query parameter", "/v1/stream?userId=bob&lastEventId=" + old, []string{"Last-Event-ID", current}, false},
		{"unknown ID", "/v1/stream?userId=bob", []string{"Last-Event-ID", "999999"}, true},
		{"current ID", "/v1/stream?userId=bob", []string{"Last-Event-ID", current}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, srv, tc.path, tc.header...)
			if tc.want {
				c.expect(t, "snapshot", current, want)
			} else {
				c.expectUpToDate(t, current)
			}
			c.quiet(t)
		})
	}
	t.Run("changes after an up-to-date resume", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", idOf(store, "shop", bobCtx))
		c.expectUpToDate(t, idOf(store, "shop", bobCtx))
		c.quiet(t)
		apply(t, store, userOv("bob", "bob-banner", "banner", `"hi"`))
		if ev := c.next(t); ev.event != "device.feature-flags.changed" || ev.id != idOf(store, "shop", bobCtx) {
			t.Fatalf("after resume: %+v", ev)
		}
	})
}

func TestStreamHeartbeat(t *testing.T) {
	type ticker struct {
		d time.Duration
		c chan time.Time
	}
	tickers := make(chan ticker, 1)
	stopped := make(chan struct{})
	srv, _ := newStreamServer(t, Options{Heartbeat: 42 * time.Second, NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
		c := make(chan time.Time)
		tickers <- ticker{d, c}
		return c, func() { close(stopped) }
	}}, nil)
	c := open(t, srv, "/v1/stream?userId=bob")
	c.next(t) // snapshot
	var tk ticker
	select {
	case tk = <-tickers:
	case <-time.After(eventWait):
		t.Fatal("no ticker created")
	}
	if tk.d != 42*time.Second {
		t.Errorf("ticker interval = %v, want 42s", tk.d)
	}
	for range 2 {
		tk.c <- testNow
		if ev := c.next(t); ev.comment != "heartbeat" || ev.event != "" {
			t.Fatalf("frame = %+v, want heartbeat comment", ev)
		}
	}
	c.cancel()
	select {
	case <-stopped:
	case <-time.After(eventWait):
		t.Fatal("ticker not stopped after the client left")
	}
}

// gatedWriter blocks writes while armed until release is closed. It
// signals blocked (when set) each time a write blocks.
type gatedWriter struct {
	http.ResponseWriter
	armed   *atomic.Bool
	release chan struct{}
	blocked chan struct{}
}

func (g gatedWriter) Write(b []byte) (int, error) {
	if g.armed.Load() {
		select {
		case g.blocked <- struct{}{}:
		default:
		}
		<-g.release
	}
	n, err := g.ResponseWriter.Write(b)
	return n, err
}

func (g gatedWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

type fakeMetrics struct {
	mu          sync.Mutex
	subscribers []int
	events      map[string]int
	propagation int
	overflow    chan struct{}
	gauge       chan int
}

func (m *fakeMetrics) Subscribers(n int) {
	m.mu.Lock()
	m.subscribers = append(m.subscribers, n)
	m.mu.Unlock()
	m.gauge <- n
}

func (m *fakeMetrics) EventSent(kind string) {
	m.mu.Lock()
	m.events[kind]++
	m.mu.Unlock()
}

func (m *fakeMetrics) Overflowed() {
	select {
	case m.overflow <- struct{}{}:
	default:
	}
}

func (m *fakeMetrics) Propagation(d time.Duration) {
	m.mu.Lock()
	m.propagation++
	m.mu.Unlock()
}

// TestSlowStreamCoalesces: a stream whose client is slow delays nobody
// else; once its writes go through again it sends one event bringing the
// client up to date with every write it missed.
func TestSlowStreamCoalesces(t *testing.T) {
	var armed atomic.Bool
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 16)}
	srv, store := newStreamServer(t, Options{Metrics: m}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("userId") == "slow" {
				w = gatedWriter{w, &armed, release, blocked}
			}
			h.ServeHTTP(w, r)
		})
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	slow := open(t, srv, "/v1/stream?userId=slow")
	slow.next(t)
	fast := open(t, srv, "/v1/stream?userId=fast")
	fast.next(t)
	armed.Store(true)

	const writes = 6
	for i := range writes {
		v := `"v` + strconv.Itoa(i) + `"`
		apply(t, store, evaluator.UpsertFlag("shop", "banner", stringFlag(v, true)))
		if i == 0 {
			waitBlocked(t, blocked)
		}
		ev := fast.next(t)
		if ev.id != idOf(store, "shop", evaluator.Context{UserID: "fast"}) || !strings.Contains(ev.data, `"value":`+v) {
			t.Fatalf("fast subscriber, write %d: %+v", i, ev)
		}
	}
	armed.Store(false)
	close(release)
	released = true
	// The event the writer was blocked on, then one event with the
	// latest value instead of the writes in between.
	if ev := slow.next(t); ev.event != "device.feature-flags.changed" || !strings.Contains(ev.data, `"value":"v0"`) {
		t.Fatalf("slow subscriber: %+v", ev)
	}
	ev := slow.next(t)
	if ev.event != "device.feature-flags.changed" || ev.id != idOf(store, "shop", evaluator.Context{UserID: "slow"}) ||
		!strings.Contains(ev.data, `"banner":{"value":"v5"`) {
		t.Fatalf("slow subscriber catching up: %+v", ev)
	}
	slow.quiet(t)

	// Once both streams are closed, every event they were sent is counted.
	slow.cancel()
	fast.cancel()
	for n := -1; n != 0; {
		select {
		case n = <-m.gauge:
		case <-time.After(eventWait):
			t.Fatal("streams not closed")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events["snapshot"] != 2 || m.events["changed"] != writes+2 || m.propagation != writes+2 {
		t.Errorf("metrics: events %v, propagation %d", m.events, m.propagation)
	}
	if !reflect.DeepEqual(m.subscribers, []int{1, 2, 1, 0}) {
		t.Errorf("subscriber gauge = %v, want [1 2 1 0]", m.subscribers)
	}
}

func waitBlocked(t *testing.T, blocked chan struct{}) {
	t.Helper()
	select {
	case <-blocked:
	case <-time.After(eventWait):
		t.Fatal("the stream did not write")
	}
}

// TestStreamBeyondHistory: a stream that falls further behind than the
// store's change history compares everything with the current state and
// sends exactly what changed for its client.
// gate holds a server's stream writes while armed, until released.
type gate struct {
	armed    atomic.Bool
	release  chan struct{}
	blocked  chan struct{}
	released bool
}

// newGatedServer returns a stream server whose writes g holds, and g; g is released
// at cleanup if the test did not.
func newGatedServer(t *testing.T, opts Options) (*httptest.Server, *evaluator.Store, *gate) {
	t.Helper()
	g := &gate{release: make(chan struct{}), blocked: make(chan struct{}, 1)}
	srv, store := newStreamServer(t, opts, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(gatedWriter{w, &g.armed, g.release, g.blocked}, r)
		})
	})
	t.Cleanup(func() {
		if !g.released {
			close(g.release)
		}
	})
	return srv, store, g
}

// outrun blocks the stream on the next write, then makes more writes than the
// store's change history holds (ending with ops), and lets the stream go on.
func (g *gate) outrun(t *testing.T, store *evaluator.Store, ops ...evaluator.Op) {
	t.Helper()
	g.armed.Store(true)
	apply(t, store, bannerOn()) // the stream blocks writing this one
	waitBlocked(t, g.blocked)
	tickN(store, evaluator.DefaultChangeHistory)
	for _, op := range ops {
		apply(t, store, op)
	}
	g.armed.Store(false)
	close(g.release)
	g.released = true
}

func TestStreamBeyondHistory(t *testing.T) {
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 16)}
	srv, store, g := newGatedServer(t, Options{Metrics: m})
	c := open(t, srv, "/v1/stream?userId=bob")
	var st clientState
	st.apply(t, c.next(t))
	g.outrun(t, store, userOv("bob", "bob-theme", "theme", `"neon"`), evaluator.DeleteFlag("shop", "limits"))
	c.catchUp(t, srv, &st)
	c.quiet(t)
	if st.lastID != idOf(store, "shop", bobCtx) {
		t.Errorf("last ID %s, want %s", st.lastID, idOf(store, "shop", bobCtx))
	}
	select {
	case <-m.overflow:
	default:
		t.Error("the resynchronisation was not counted")
	}
}

func TestStreamRejections(t *testing.T) {
	srv, _ := newStreamServer(t, Options{MaxSubscribers: 1, Retry: 2500 * time.Millisecond}, nil)
	tests := []struct {
		name, path string
		header     []string
		status     int
		code       string
		details    []string
	}{
		{"ineligible device class", "/v1/stream?deviceId=c1&deviceClass=charger", nil, 403, codeDeviceClassNotEligible,
			[]string{`device class "charger" is not eligible for any flag of namespace "shop"`}},
		{"ineligible on OFREP", "/ofrep/v1/sse?deviceClass=charger", nil, 403, codeDeviceClassNotEligible, []string{`"charger"`}},
		{"unknown parameters", "/v1/stream?userId=a&foo=1&attr.plan=pro", nil, 400, codeInvalidQuery,
			[]string{`unknown query parameters "attr.plan", "foo"`}},
		{"repeated parameter", "/v1/stream?userId=a&userId=b", nil, 400, codeInvalidQuery, []string{`"userId" is given 2 times`}},
		{"context and parameters", "/v1/stream?userId=a&context=%7B%7D", nil, 400, codeInvalidQuery, []string{`not both`}},
		{"context not an object", "/v1/stream?context=%5B%5D", nil, 400, codeInvalidContext, []string{`query parameter "context": must be a JSON object`}},
		{"context with trailing data", "/v1/stream?context=%7B%7D%7B%7D", nil, 400, codeInvalidContext, []string{`unexpected data`}},
		{"context null", "/v1/stream?context=null", nil, 400, codeInvalidContext, []string{`got null`}},
		{"context attribute of a bad type", "/v1/stream?context=%7B%22userId%22:1%7D", nil, 400, codeInvalidContext, []string{`context.userId`}},
		{"malformed query", "/v1/stream?userId=%zz", nil, 400, codeInvalidQuery, []string{`malformed query`}},
		{"unknown namespace", "/namespaces/nope/v1/stream", nil, 404, codeNamespaceNotFound, []string{`"nope"`}},
		{"method", "/v1/stream", nil, 405, codeMethodNotAllowed, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.status == 405 {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer closeOrFail(t, resp.Body)
			checkError(t, resp, tc.status, tc.code, tc.details...)
		})
	}

	t.Run("cap", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?deviceId=p1&deviceClass=phone")
		checkInRange(t, "retry (2500 ms)", c.retry, 1250, 3750)
		c.next(t)
		resp, _ := get(t, srv, "/ofrep/v1/sse?userId=b")
		checkError(t, resp, 503, codeTooManySubscribers, "limit 1")
		checkInRange(t, "Retry-After (2500 ms)", resp.Header.Get("Retry-After"), 3, 6)
	})
}

func checkError(t *testing.T, resp *http.Response, status int, code string, details ...string) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d (%s), want %d: %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	m, _ := decodeJSON(t, string(body)).(map[string]any)
	if m["errorCode"] != code {
		t.Errorf("errorCode = %v, want %s", m["errorCode"], code)
	}
	for _, d := range details {
		if s, _ := m["errorDetails"].(string); !strings.Contains(s, d) {
			t.Errorf("errorDetails = %q, want it to contain %q", s, d)
		}
	}
}

func TestOFREPStream(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	bob := open(t, srv, "/ofrep/v1/sse?targetingKey=bob")
	alice := open(t, srv, "/ofrep/v1/sse?targetingKey=alice")
	bob.quiet(t) // no snapshot on OFREP streams
	bobTK := evaluator.Context{TargetingKey: "bob"}
	old := idOf(store, "shop", bobTK)

	apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
	ev := bob.next(t)
	if ev.event != "" || ev.id != idOf(store, "shop", bobTK) {
		t.Fatalf("frame = %+v, want data-only event with the ID of the new values", ev)
	}
	resp, uri := postBulk(t, srv, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"bob"}}`)
	data, _ := json.Marshal(map[string]any{
		"type": "refetchEvaluation", "etag": resp.Header.Get("ETag"), "lastModified": testNow.Unix(),
	})
	jsonEq(t, ev.data, string(data))
	if !strings.Contains(uri, "lastEventId="+ev.id) {
		t.Errorf("advertised URI %q does not resume from %s", uri, ev.id)
	}
	alice.quiet(t)

	t.Run("resume", func(t *testing.T) {
		tests := []struct {
			name, path, lastID string
			refetch            bool
		}{
			{"older ID", "/ofrep/v1/sse?targetingKey=bob", old, true},
			{"current ID", "/ofrep/v1/sse?targetingKey=bob", idOf(store, "shop", bobTK), false},
			{"another user's current ID", "/ofrep/v1/sse?targetingKey=alice", idOf(store, "shop", evaluator.Context{TargetingKey: "alice"}), false},
			{"unknown ID", "/ofrep/v1/sse?targetingKey=alice", "99", true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := open(t, srv, tc.path, "Last-Event-ID", tc.lastID)
				if tc.refetch {
					if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) || ev.event != "" {
						t.Fatalf("frame = %+v, want a refetch event", ev)
					}
				}
				c.quiet(t)
			})
		}
	})
}

func TestStreamSystemTicker(t *testing.T) {
	srv, _ := newStreamServer(t, Options{Heartbeat: time.Millisecond}, nil)
	c := open(t, srv, "/v1/stream?userId=bob")
	if ev := c.next(t); ev.event != "snapshot" {
		t.Fatalf("frame = %+v, want snapshot", ev)
	}
	if ev := c.next(t); ev.comment != "heartbeat" {
		t.Fatalf("frame = %+v, want heartbeat", ev)
	}
}

func (m *fakeMetrics) Evaluated(string) {}

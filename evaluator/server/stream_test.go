package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
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
	var h http.Handler = New(store, opts)
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
		resp.Body.Close()
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
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != "no-cache" {
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
	bob.expect(t, "snapshot", "1", bobSnapshot)
	if bob.retry != "3000" {
		t.Errorf("retry = %q, want the default 3000 ms", bob.retry)
	}
	alice := open(t, srv, "/v1/stream?targetingKey=alice")
	if ev := alice.next(t); ev.event != "snapshot" || strings.Contains(ev.data, "admin-panel") ||
		!strings.Contains(ev.data, `"source":"user-override:shop/alice-beta"`) {
		t.Fatalf("alice snapshot = %+v (role-gated flag must be left out, override applied)", ev)
	}

	t.Run("user override reaches only that user", func(t *testing.T) {
		apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
		bob.expect(t, "device.feature-flags.changed", "2", `{"revision":2,"changed":{
			"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"}},
			"removed":[]}`)
		alice.quiet(t)
		bob.quiet(t)
	})

	t.Run("flag change re-evaluated per subscriber", func(t *testing.T) {
		apply(t, store, evaluator.UpsertFlag("shop", "banner", stringFlag(`"hello"`, true)))
		want := `{"revision":3,"changed":{"banner":{"value":"hello","enabled":true,"variant":"on","reason":"STATIC","source":"default"}},"removed":[]}`
		bob.expect(t, "device.feature-flags.changed", "3", want)
		alice.expect(t, "device.feature-flags.changed", "3", want)
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
		bob.expect(t, "device.feature-flags.changed", "5", `{"revision":5,"changed":{},"removed":["limits"]}`)
		alice.expect(t, "device.feature-flags.changed", "5", `{"revision":5,"changed":{},"removed":["limits"]}`)
	})

	t.Run("other namespace", func(t *testing.T) {
		other := open(t, srv, "/namespaces/other/v1/stream?userId=bob")
		other.expect(t, "snapshot", "5", `{"namespace":"other","revision":5,"flags":{
			"greeting":{"value":"hi","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`)
		apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"hey"`, true)))
		other.expect(t, "device.feature-flags.changed", "6", `{"revision":6,"changed":{
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
	d1.expect(t, "device.feature-flags.changed", "2", `{"revision":2,"changed":{
		"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"device-override:shop/d1-theme"}},"removed":[]}`)
	d2.quiet(t)
}

func TestStreamResume(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	first := open(t, srv, "/v1/stream?userId=bob")
	first.expect(t, "snapshot", "1", bobSnapshot)
	first.cancel()

	apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))     // 2: relevant
	apply(t, store, userOv("carol", "carol-theme", "theme", `"neon"`)) // 3: another user
	apply(t, store, evaluator.DeleteFlag("shop", "limits"))            // 4: relevant
	apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"hey"`, true)))
	want := `{"revision":5,"changed":{
		"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"}},
		"removed":["limits"]}`

	t.Run("header within history", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", "1")
		c.expect(t, "device.feature-flags.changed", "5", want)
		c.quiet(t)
	})
	t.Run("query parameter within history", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob&lastEventId=1")
		c.expect(t, "device.feature-flags.changed", "5", want)
	})
	t.Run("nothing relevant since", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob&lastEventId=4")
		c.quiet(t)
		apply(t, store, userOv("bob", "bob-banner", "banner", `"hi"`))
		if ev := c.next(t); ev.event != "device.feature-flags.changed" || ev.id != "6" {
			t.Fatalf("after resume: %+v", ev)
		}
	})
	t.Run("beyond history", func(t *testing.T) {
		for range evaluator.DefaultChangeHistory {
			store.Tick(testNow)
		}
		rev := store.Snapshot().Revision()
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", "1")
		ev := c.next(t)
		if ev.event != "snapshot" || ev.id != jsonNumber(rev) || !strings.Contains(ev.data, `"user-override:shop/bob-theme"`) {
			t.Fatalf("frame = %+v, want snapshot at %d", ev, rev)
		}
	})
	t.Run("future ID", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", "999999")
		if ev := c.next(t); ev.event != "snapshot" {
			t.Fatalf("frame = %+v, want snapshot", ev)
		}
	})
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
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

// gatedWriter blocks writes while armed until release is closed.
type gatedWriter struct {
	http.ResponseWriter
	armed   *atomic.Bool
	release chan struct{}
}

func (g gatedWriter) Write(b []byte) (int, error) {
	if g.armed.Load() {
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
	if d >= 0 {
		m.propagation++
	}
	m.mu.Unlock()
}

func TestStreamSlowConsumer(t *testing.T) {
	var armed atomic.Bool
	release := make(chan struct{})
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 16)}
	srv, store := newStreamServer(t, Options{SubscriberBuffer: 2, Metrics: m}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("userId") == "slow" {
				w = gatedWriter{w, &armed, release}
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
		v := `"v` + jsonNumber(uint64(i)) + `"`
		apply(t, store, evaluator.UpsertFlag("shop", "banner", stringFlag(v, true)))
		ev := fast.next(t)
		if ev.id != jsonNumber(uint64(i+2)) || !strings.Contains(ev.data, `"value":`+v) {
			t.Fatalf("fast subscriber, write %d: %+v", i, ev)
		}
	}
	select {
	case <-m.overflow:
	case <-time.After(eventWait):
		t.Fatal("slow subscriber did not overflow")
	}
	armed.Store(false)
	close(release)
	released = true
	// The event the writer was blocked on, then one snapshot of the
	// latest revision instead of the dropped events.
	if ev := slow.next(t); ev.event != "device.feature-flags.changed" || !strings.Contains(ev.data, `"value":"v0"`) {
		t.Fatalf("slow subscriber: %+v", ev)
	}
	ev := slow.next(t)
	if ev.event != "snapshot" || ev.id != "7" || !strings.Contains(ev.data, `"banner":{"value":"v5"`) {
		t.Fatalf("slow subscriber after overflow: %+v", ev)
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
	if m.events["snapshot"] != 3 || m.events["changed"] != writes+1 || m.propagation != writes+1 {
		t.Errorf("metrics: events %v, propagation %d", m.events, m.propagation)
	}
	if !reflect.DeepEqual(m.subscribers, []int{1, 2, 1, 0}) {
		t.Errorf("subscriber gauge = %v, want [1 2 1 0]", m.subscribers)
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
		{"ineligible device class", "/v1/stream?deviceId=c1&deviceClass=charger", nil, 403, codeDeviceNotEligible,
			[]string{`device class "charger" is not eligible for any flag of namespace "shop"`}},
		{"ineligible on OFREP", "/ofrep/v1/sse?deviceClass=charger", nil, 403, codeDeviceNotEligible, []string{`"charger"`}},
		{"unknown parameters", "/v1/stream?userId=a&foo=1&attr.plan=pro", nil, 400, codeInvalidQuery,
			[]string{`unknown query parameters "attr.plan", "foo"`}},
		{"repeated parameter", "/v1/stream?userId=a&userId=b", nil, 400, codeInvalidQuery, []string{`"userId" is given 2 times`}},
		{"bad last event ID", "/v1/stream?userId=a", []string{"Last-Event-ID", "x"}, 400, codeInvalidQuery, []string{`last event ID "x"`}},
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
			defer resp.Body.Close()
			checkError(t, resp, tc.status, tc.code, tc.details...)
		})
	}

	t.Run("cap", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?deviceId=p1&deviceClass=phone")
		if c.retry != "2500" {
			t.Errorf("retry = %q, want 2500", c.retry)
		}
		c.next(t)
		resp, _ := get(t, srv, "/ofrep/v1/sse?userId=b")
		checkError(t, resp, 503, codeTooManySubscribers, "limit 1")
		if ra := resp.Header.Get("Retry-After"); ra != "3" {
			t.Errorf("Retry-After = %q, want 3", ra)
		}
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

	apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
	ev := bob.next(t)
	if ev.event != "" || ev.id != "2" {
		t.Fatalf("frame = %+v, want data-only event with id 2", ev)
	}
	resp, err := srv.Client().Post(srv.URL+"/ofrep/v1/evaluate/flags", "application/json",
		strings.NewReader(`{"context":{"targetingKey":"bob"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"r2-`) {
		t.Fatalf("bulk ETag = %q", etag)
	}
	data, _ := json.Marshal(map[string]string{
		"type": "refetchEvaluation", "etag": etag, "lastModified": testNow.Format(http.TimeFormat),
	})
	jsonEq(t, ev.data, string(data))
	alice.quiet(t)

	t.Run("resume", func(t *testing.T) {
		c := open(t, srv, "/ofrep/v1/sse?targetingKey=bob", "Last-Event-ID", "1")
		if ev := c.next(t); ev.id != "2" || !strings.Contains(ev.data, `"refetchEvaluation"`) {
			t.Fatalf("frame = %+v", ev)
		}
		c = open(t, srv, "/ofrep/v1/sse?targetingKey=alice", "Last-Event-ID", "1")
		c.quiet(t)
		c = open(t, srv, "/ofrep/v1/sse?targetingKey=alice", "Last-Event-ID", "99")
		if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) {
			t.Fatalf("future ID: frame = %+v", ev)
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

// newHubSub builds a hub over a store retaining one change set and a
// subscriber for bob whose state is a snapshot at the current revision.
func newHubSub(t *testing.T) (*hub, *subscriber, *evaluator.Store) {
	t.Helper()
	store := evaluator.NewStore(evaluator.WithChangeHistory(1),
		evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return testNow })))
	apply(t, store, evaluator.UpsertFlag("shop", "theme", stringFlag(`"dark"`, true)))
	opts := Options{}
	opts.streamDefaults()
	h := newHub(store, &opts)
	sub := &subscriber{ns: "shop", user: "bob", ctx: evaluator.Context{UserID: "bob"},
		notify: make(chan struct{}, 1), log: slogDiscard()}
	sub.mu.Lock()
	sub.snapshot(store.Snapshot())
	sub.mu.Unlock()
	return h, sub, store
}

func TestCatchUp(t *testing.T) {
	t.Run("within history", func(t *testing.T) {
		h, sub, store := newHubSub(t)
		apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
		h.catchUp(sub, 1)
		evs := sub.take(store)
		if len(evs) != 1 || !strings.Contains(string(evs[0].frame), `"theme":{"value":"neon"`) {
			t.Fatalf("events = %q", frames(evs))
		}
		// Nothing new: no event.
		h.catchUp(sub, 2)
		if evs := sub.take(store); len(evs) != 0 {
			t.Errorf("second catch-up: %q", frames(evs))
		}
	})
	t.Run("beyond history", func(t *testing.T) {
		h, sub, store := newHubSub(t)
		apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
		apply(t, store, userOv("bob", "bob-theme", "theme", `"dark"`))
		h.catchUp(sub, 1)
		evs := sub.take(store)
		if len(evs) != 1 || evs[0].kind != "snapshot" || !strings.Contains(string(evs[0].frame), "id: 3\n") {
			t.Fatalf("events = %q, want a snapshot at 3", frames(evs))
		}
	})
}

func TestDispatcherResyncsWhenHistoryIsGone(t *testing.T) {
	h, sub, store := newHubSub(t)
	h.byNS["shop"] = map[*subscriber]struct{}{sub: {}}
	h.count, h.running = 1, true
	apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
	apply(t, store, userOv("bob", "bob-theme", "theme", `"dark"`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.dispatch(0) // revision 1 is no longer retained
	}()
	select {
	case <-sub.notify:
	case <-time.After(eventWait):
		t.Fatal("subscriber not woken")
	}
	evs := sub.take(store)
	if len(evs) != 1 || evs[0].kind != "snapshot" || !strings.Contains(string(evs[0].frame), "id: 3\n") {
		t.Fatalf("events = %q, want a snapshot at 3", frames(evs))
	}
	h.unregister(sub)
	select {
	case <-done:
	case <-time.After(eventWait):
		t.Fatal("dispatcher did not stop without subscribers")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running || len(h.byNS) != 0 {
		t.Errorf("after stop: running %v, index %v", h.running, h.byNS)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func frames(evs []event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.kind + ": " + string(ev.frame)
	}
	return out
}

func (m *fakeMetrics) Evaluated(string) {}

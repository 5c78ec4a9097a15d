package server

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// pollUntil polls cond every few milliseconds until it holds or timeout
// passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		<-tick.C
	}
}

// smallBuffers makes every accepted connection's kernel send buffer small,
// so that a client that does not read blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// dialNoRead opens a TCP connection with a small receive buffer, sends a
// stream request and never reads the response.
func dialNoRead(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOrFail(t, conn) })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestStalledReaderIsDropped: a client that stops reading is dropped once
// a write does not complete within the stream write timeout, and its
// subscriber slot is freed.
func TestStalledReaderIsDropped(t *testing.T) {
	store, _ := newTestStore(t)
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 1<<16)}
	srv := httptest.NewUnstartedServer(New(store, Options{
		DefaultNamespace: "shop", NewTicker: noTicks, MaxSubscribers: 1,
		StreamWriteTimeout: 100 * time.Millisecond, Metrics: m,
	}))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)

	dialNoRead(t, srv.Listener.Addr().String(), "/v1/stream?userId=bob")
	// Wait until the stalled client's stream is open (its snapshot is
	// written) and holds the only slot.
	pollUntil(t, eventWait, "the stalled client's stream opened", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.events["snapshot"] == 1
	})
	resp, _ := get(t, srv, "/v1/stream?userId=alice")
	checkError(t, resp, http.StatusServiceUnavailable, codeTooManySubscribers, "limit 1")

	// Large changes fill the socket buffers; the slot must free up.
	big := `"` + strings.Repeat("x", 32<<10)
	i := 0
	pollUntil(t, 20*time.Second, "the stalled client's slot freed", func() bool {
		i++
		apply(t, store, evaluator.UpsertFlag("shop", "banner", stringFlag(big+fmt.Sprint(i)+`"`, true)))
		resp, err := srv.Client().Get(srv.URL + "/v1/stream?userId=alice")
		if err != nil {
			t.Fatal(err)
		}
		defer closeOrFail(t, resp.Body)
		return resp.StatusCode == http.StatusOK
	})
}

// heldReports records the subscriber counts reported to Metrics. When hold
// is set, the next report waits inside Subscribers until release is closed,
// which widens the gap between a slot being freed and its count being
// reported.
type heldReports struct {
	noMetrics
	hold     atomic.Bool
	held     chan struct{} // closed once a report is held
	release  chan struct{}
	reported chan int
	mu       sync.Mutex
	reports  []int
}

func (m *heldReports) Subscribers(n int) {
	if m.hold.CompareAndSwap(true, false) {
		close(m.held)
		<-m.release
	}
	m.mu.Lock()
	m.reports = append(m.reports, n)
	m.mu.Unlock()
	m.reported <- n
}

// TestSubscriberReportsFollowTheCount: the subscriber counts reach Metrics
// in the order in which they were counted, so that the last report (the
// gauge's value) is the number of streams open, even when two streams end
// at once and the first one's report is slow.
func TestSubscriberReportsFollowTheCount(t *testing.T) {
	m := &heldReports{held: make(chan struct{}), release: make(chan struct{}), reported: make(chan int, 16)}
	srv, _ := newStreamServer(t, Options{Metrics: m}, nil)
	seen := 0 // reports taken from m.reported
	report := func() {
		t.Helper()
		select {
		case <-m.reported:
			seen++
		case <-time.After(eventWait):
			t.Fatal("no subscriber count reported")
		}
	}
	a := open(t, srv, "/v1/stream?userId=a")
	b := open(t, srv, "/v1/stream?userId=b")
	report()
	report()

	m.hold.Store(true)
	a.cancel()
	select {
	case <-m.held:
	case <-time.After(eventWait):
		t.Fatal("the first stream did not end")
	}
	// a's count (1) is held. b ends meanwhile; its count (0) must not be
	// reported before a's. Absence is asserted over quietWait.
	b.cancel()
	select {
	case n := <-m.reported:
		seen++
		t.Errorf("count %d reported while an earlier count was held", n)
	case <-time.After(quietWait):
	}
	close(m.release)
	for seen < 4 {
		report()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if want := []int{1, 2, 1, 0}; !slices.Equal(m.reports, want) {
		t.Errorf("subscriber counts reported %v, want %v: the last report must be the number of open streams", m.reports, want)
	}
}

// TestSubscriberCapBeforeWork: a stream request beyond the cap is refused
// before anything else is done with it: even a request that would fail
// validation gets 503.
func TestSubscriberCapBeforeWork(t *testing.T) {
	srv, _ := newStreamServer(t, Options{MaxSubscribers: 1}, nil)
	c := open(t, srv, "/v1/stream?userId=bob")
	c.next(t)
	tests := []struct{ name, path string }{
		{"valid", "/v1/stream?userId=alice"},
		{"unknown parameter", "/v1/stream?foo=1"},
		{"ineligible device class", "/v1/stream?deviceId=c1&deviceClass=charger"},
		{"OFREP", "/ofrep/v1/sse?userId=alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(t, srv, tc.path)
			checkError(t, resp, http.StatusServiceUnavailable, codeTooManySubscribers, "limit 1")
		})
	}
}

// TestStreamOutlivesServerWriteTimeout: the http.Server's own read and
// write timeouts do not end a stream; each stream write has its own
// deadline.
func TestStreamOutlivesServerWriteTimeout(t *testing.T) {
	store, _ := newTestStore(t)
	const serverTimeout = 200 * time.Millisecond
	srv := httptest.NewUnstartedServer(New(store, Options{DefaultNamespace: "shop", Heartbeat: 20 * time.Millisecond}))
	srv.Config.WriteTimeout = serverTimeout
	srv.Config.ReadTimeout = serverTimeout
	srv.Start()
	t.Cleanup(srv.Close)

	start := time.Now()
	c := open(t, srv, "/v1/stream?userId=bob")
	if ev := c.next(t); ev.event != "snapshot" {
		t.Fatalf("frame = %+v, want snapshot", ev)
	}
	for time.Since(start) < 4*serverTimeout {
		if ev := c.next(t); ev.comment != "heartbeat" {
			t.Fatalf("frame = %+v, want heartbeat", ev)
		}
	}
	apply(t, store, bannerOn())
	for {
		ev := c.next(t)
		if ev.event == "device.feature-flags.changed" {
			break
		}
		if ev.comment != "heartbeat" {
			t.Fatalf("frame = %+v, want the change", ev)
		}
	}
}

func TestMaxSubscribersFor(t *testing.T) {
	tests := []struct {
		budget int64
		want   int
	}{
		{0, 1},
		{-1, 1},
		{MemoryPerStream - 1, 1},
		{MemoryPerStream, 1},
		{128 << 20, int((128 << 20) / MemoryPerStream)},
		{math.MaxInt64, math.MaxInt32},
	}
	for _, tc := range tests {
		if got := MaxSubscribersFor(tc.budget); got != tc.want {
			t.Errorf("MaxSubscribersFor(%d) = %d, want %d", tc.budget, got, tc.want)
		}
	}
}

func TestStreamMemoryBudget(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	if got := StreamMemoryBudget(); got != DefaultStreamMemoryBudget {
		t.Errorf("without GOMEMLIMIT: %d, want %d", got, DefaultStreamMemoryBudget)
	}
	debug.SetMemoryLimit(300 << 20)
	if got := StreamMemoryBudget(); got != 150<<20 {
		t.Errorf("with GOMEMLIMIT 300Mi: %d, want 150Mi", got)
	}
	// The handler's default cap follows.
	opts := Options{}
	opts.streamDefaults()
	if opts.MaxSubscribers != MaxSubscribersFor(150<<20) || opts.StreamWriteTimeout != DefaultStreamWriteTimeout {
		t.Errorf("defaults: MaxSubscribers %d, StreamWriteTimeout %v", opts.MaxSubscribers, opts.StreamWriteTimeout)
	}
}

// checkJittered checks that every value of got (milliseconds or seconds as
// text) lies in [lo, hi] and that they are not all the same: clients that
// honour them exactly do not all come back at once.
func checkJittered(t *testing.T, what string, got []string, lo, hi int) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range got {
		checkInRange(t, what, s, lo, hi)
		seen[s] = true
	}
	if len(seen) < 2 {
		t.Errorf("%s: %d values, all %v: want them spread", what, len(got), got)
	}
}

// checkInRange checks that s is a whole number in [lo, hi].
func checkInRange(t *testing.T, what, s string, lo, hi int) {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		t.Errorf("%s = %q, want a whole number in [%d, %d]", what, s, lo, hi)
	}
}

// TestRetryIsJittered: each stream is told its own reconnection delay,
// drawn between half and one and a half of Options.Retry, on the native,
// OFREP and sync streams; each 503 its own Retry-After, between Retry and
// twice it (in whole seconds).
func TestRetryIsJittered(t *testing.T) {
	srv, _ := newStreamServer(t, Options{MaxSubscribers: 30, Retry: 3 * time.Second}, nil)
	var retries []string
	for i := range 30 {
		path := []string{"/v1/stream?userId=u", "/ofrep/v1/sse?userId=u", "/v1/sync"}[i%3]
		c := open(t, srv, path)
		retries = append(retries, c.retry)
	}
	checkJittered(t, "retry", retries, 1500, 4500)

	var after []string
	for range 30 {
		resp, _ := get(t, srv, "/v1/stream?userId=late")
		checkError(t, resp, http.StatusServiceUnavailable, codeTooManySubscribers, "limit 30")
		after = append(after, resp.Header.Get("Retry-After"))
	}
	checkJittered(t, "Retry-After", after, 3, 6)
}

// TestAcceptRate: beyond Options.AcceptRate new streams a second (after a
// burst of Options.AcceptBurst) a stream request gets 503
// TOO_MANY_NEW_STREAMS with a jittered Retry-After and takes no slot; a
// request refused at the subscriber cap spends none of the rate.
func TestAcceptRate(t *testing.T) {
	m := &fakeMetrics{events: map[string]int{}, overflow: make(chan struct{}, 1), gauge: make(chan int, 1<<16)}
	// A burst of 2, and no token back within the test.
	srv, _ := newStreamServer(t, Options{AcceptRate: 0.001, AcceptBurst: 2, MaxSubscribers: 1, Metrics: m}, nil)
	first := open(t, srv, "/v1/stream?userId=a")
	first.next(t)
	for range 3 {
		resp, _ := get(t, srv, "/v1/stream?userId=b")
		checkError(t, resp, http.StatusServiceUnavailable, codeTooManySubscribers, "limit 1")
	}
	first.cancel()
	pollUntil(t, eventWait, "the first stream's slot freed", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.subscribers[len(m.subscribers)-1] == 0
	})
	second := open(t, srv, "/v1/stream?userId=c") // the burst's second token
	second.next(t)
	second.cancel()
	pollUntil(t, eventWait, "the second stream's slot freed", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.subscribers[len(m.subscribers)-1] == 0
	})
	m.mu.Lock()
	reports := len(m.subscribers)
	m.mu.Unlock()
	resp, _ := get(t, srv, "/v1/stream?userId=d")
	checkError(t, resp, http.StatusServiceUnavailable, codeTooManyNewStreams, "0.001 new event streams a second")
	checkInRange(t, "Retry-After", resp.Header.Get("Retry-After"), 3, 6)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.subscribers) != reports {
		t.Errorf("subscriber reports %v: a refused request took a slot", m.subscribers[reports:])
	}
}

// TestAcceptBurstDefault: without Options.AcceptBurst the burst is one
// second's worth of the rate, at least 1; no rate needs none.
func TestAcceptBurstDefault(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want int
	}{{0, 0}, {0.001, 1}, {1, 1}, {2.5, 3}, {1000, 1000}, {-1, 0}} {
		o := Options{AcceptRate: tc.rate}
		o.streamDefaults()
		if o.AcceptBurst != tc.want {
			t.Errorf("AcceptRate %v: AcceptBurst = %d, want %d", tc.rate, o.AcceptBurst, tc.want)
		}
	}
}

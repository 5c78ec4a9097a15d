package flagops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// wait bounds every wait for something asynchronous: generous, since the machine
// may be busy; waits end as soon as the thing happens.
const wait = 20 * time.Second

// fakeServer is a device stream in a test: each stream request becomes a fakeConn
// the test writes frames to, unless refuse answers it with an error first.
type fakeServer struct {
	srv   *httptest.Server
	conns chan *fakeConn

	mu     sync.Mutex
	refuse func(r *http.Request) (status int, body string) // nil or status 0: accept
}

// fakeConn is one accepted stream request.
type fakeConn struct {
	req    *http.Request
	frames chan string
	end    chan struct{}
	ended  chan struct{} // closed when the handler returned
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	f := &fakeServer{conns: make(chan *fakeConn, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) setRefuse(fn func(r *http.Request) (int, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = fn
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		if status, body := refuse(r); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	c := &fakeConn{req: r, frames: make(chan string, 16), end: make(chan struct{}), ended: make(chan struct{})}
	defer close(c.ended)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "retry: 3000\n\n")
	w.(http.Flusher).Flush()
	select {
	case f.conns <- c:
	case <-r.Context().Done():
		return
	}
	for {
		select {
		case fr := <-c.frames:
			if _, err := io.WriteString(w, fr); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		case <-c.end:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// next returns the next stream request.
func (f *fakeServer) next(t testing.TB) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(wait):
		t.Fatalf("no stream request within %s", wait)
		return nil
	}
}

func (c *fakeConn) send(frames ...string) {
	for _, fr := range frames {
		c.frames <- fr
	}
}

// drop ends the stream from the server's side and waits until it has.
func (c *fakeConn) drop(t testing.TB) {
	t.Helper()
	close(c.end)
	select {
	case <-c.ended:
	case <-time.After(wait):
		t.Fatalf("the stream did not end within %s", wait)
	}
}

func snapshot(id, flags string) string {
	return fmt.Sprintf("id: %s\nevent: snapshot\ndata: {\"namespace\":\"shop\",\"revision\":1,\"flags\":%s}\n\n", id, compact(flags))
}

func changedEvent(id, changed, removed string) string {
	return fmt.Sprintf("id: %s\nevent: device.feature-flags.changed\ndata: {\"revision\":2,\"changed\":%s,\"removed\":%s}\n\n",
		id, compact(changed), removed)
}

// compact puts JSON on one line, as the evaluator sends it; invalid JSON (for tests
// of bad events) loses its line breaks only.
func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return strings.NewReplacer("\n", "", "\t", "").Replace(s)
	}
	return b.String()
}

// upToDate is the evaluator's answer to a resume with the ID of current values.
func upToDate(id string) string { return "id: " + id + "\n\n" }

// testLogger writes the provider's log to the test's output (shown with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// newTestProvider returns a provider of the fake server with short timings, shut
// down at cleanup.
func newTestProvider(t testing.TB, f *fakeServer, o Options) *Provider {
	t.Helper()
	o.URL = f.srv.URL
	o.Logger = testLogger(t)
	o.MinBackoff = orDefault(o.MinBackoff, 5*time.Millisecond)
	o.MaxBackoff = orDefault(o.MaxBackoff, 50*time.Millisecond)
	o.InitTimeout = orDefault(o.InitTimeout, wait)
	p, err := NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p
}

// initAsync starts Init and returns its result channel.
func initAsync(p *Provider, ec openfeature.EvaluationContext) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- p.Init(ec) }()
	return ch
}

func initResult(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		t.Fatalf("Init did not return within %s", wait)
		return nil
	}
}

// nextEvent returns the provider's next event.
func nextEvent(t testing.TB, p *Provider) openfeature.Event {
	t.Helper()
	select {
	case ev := <-p.EventChannel():
		return ev
	case <-time.After(wait):
		t.Fatalf("no provider event within %s", wait)
		return openfeature.Event{}
	}
}

// expectEvent asserts the provider's next event: its type, and its flag changes.
func expectEvent(t testing.TB, p *Provider, typ openfeature.EventType, changes ...string) openfeature.Event {
	t.Helper()
	ev := nextEvent(t, p)
	if ev.EventType != typ || !slices.Equal(ev.FlagChanges, changes) {
		t.Fatalf("event %s %v (%s), want %s %v", ev.EventType, ev.FlagChanges, ev.Message, typ, changes)
	}
	return ev
}

// noEvent asserts that the provider has no event pending.
func noEvent(t testing.TB, p *Provider) {
	t.Helper()
	select {
	case ev := <-p.EventChannel():
		t.Fatalf("unexpected event %s %v (%s)", ev.EventType, ev.FlagChanges, ev.Message)
	default:
	}
}

// boolOf evaluates a Boolean flag straight on the provider.
func boolOf(p *Provider, key string) openfeature.BoolResolutionDetail {
	return p.BooleanEvaluation(context.Background(), key, false, openfeature.FlattenedContext{})
}

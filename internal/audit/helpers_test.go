/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// testDeadline bounds every wait in the tests. It is a guard against hangs, not a timing
// assertion: the tests wait for events, never for time to pass.
const testDeadline = 30 * time.Second

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// testRecord returns a valid flag record, distinct for each i.
func testRecord(i int) Record {
	return NewRecord(testEpoch.Add(time.Duration(i)*time.Second), Change{
		Action: ActionFlagUpdated,
		Actor:  Actor{Username: "alice@example.com", Groups: []string{"platform"}},
		Object: ObjectRef{
			Namespace:       "billing",
			Name:            fmt.Sprintf("flag-%04d", i),
			UID:             fmt.Sprintf("uid-%04d", i),
			Generation:      int64(i + 1),
			ResourceVersion: fmt.Sprint(1000 + i),
		},
		Before: map[string]json.RawMessage{"enabled": json.RawMessage(`false`)},
		After:  map[string]json.RawMessage{"enabled": json.RawMessage(`true`)},
	})
}

func testRecords(n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = testRecord(i)
	}
	return out
}

func ids(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// eventually polls cond until it holds, failing the test at testDeadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(testDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// receive returns the next value from ch, failing the test at testDeadline.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testDeadline):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// fakeClock is a Clock whose timers fire only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []chan time.Time
	waited  chan time.Duration // every duration passed to After
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: testEpoch, waited: make(chan time.Duration, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.pending = append(c.pending, ch)
	c.mu.Unlock()
	c.waited <- d
	return ch
}

// fire fires every pending timer.
func (c *fakeClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.pending {
		ch <- c.now
	}
	c.pending = nil
}

// receiver is an HTTP audit receiver that parses requests with the CloudEvents SDK.
// respond decides the answer to each request from the records in it; accepted records
// (2xx) are kept in order.
type receiver struct {
	t     *testing.T
	srv   *httptest.Server
	batch bool // expect application/cloudevents-batch+json rather than one structured event

	mu       sync.Mutex
	respond  func(w http.ResponseWriter, batch []Record) int
	got      []Record
	requests int
	headers  []http.Header
}

// newReceiver returns a receiver of structured events.
func newReceiver(t *testing.T, respond func(w http.ResponseWriter, batch []Record) int) *receiver {
	return newModeReceiver(t, false, respond)
}

// newModeReceiver returns a receiver of batches if batch is set, of structured events if not.
func newModeReceiver(t *testing.T, batch bool, respond func(w http.ResponseWriter, batch []Record) int) *receiver {
	rc := &receiver{t: t, respond: respond, batch: batch}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rc.t.Errorf("receiver: method %s, want POST", r.Method)
	}
	batch, err := parseEvents(r, rc.batch)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.headers = append(rc.headers, r.Header.Clone())
	code := rc.respond(w, batch)
	if code >= 200 && code < 300 {
		rc.got = append(rc.got, batch...)
	}
	w.WriteHeader(code)
}

func (rc *receiver) records() []Record {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiver) requestCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

func always(code int) func(http.ResponseWriter, []Record) int {
	return func(http.ResponseWriter, []Record) int { return code }
}

// parseEvents reads the CloudEvents of an HTTP sink's request with the CloudEvents SDK,
// checks the content type and each event's attributes against its record, and returns the
// records.
func parseEvents(r *http.Request, batch bool) ([]Record, error) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	var events []event.Event
	if batch {
		if ct := r.Header.Get("Content-Type"); ct != BatchContentType {
			return nil, fmt.Errorf("Content-Type %q, want %q", ct, BatchContentType)
		}
		es, err := binding.ToEvents(r.Context(), msg, msg.BodyReader)
		if err != nil {
			return nil, fmt.Errorf("parse a batch of events: %w", err)
		}
		events = es
	} else {
		if ct := r.Header.Get("Content-Type"); ct != EventContentType {
			return nil, fmt.Errorf("Content-Type %q, want %q", ct, EventContentType)
		}
		if enc := msg.ReadEncoding(); enc != binding.EncodingStructured {
			return nil, fmt.Errorf("message encoding %v, want structured", enc)
		}
		e, err := binding.ToEvent(r.Context(), msg)
		if err != nil {
			return nil, fmt.Errorf("parse a structured event: %w", err)
		}
		events = []event.Event{*e}
	}
	out := make([]Record, 0, len(events))
	for _, e := range events {
		rec, err := checkEvent(e, DefaultEventSource)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// checkEvent validates e, decodes its record and checks that the attributes match it.
func checkEvent(e event.Event, source string) (Record, error) {
	if err := e.Validate(); err != nil {
		return Record{}, fmt.Errorf("event %q: %w", e.ID(), err)
	}
	var rec Record
	if err := rec.UnmarshalJSON(e.Data()); err != nil {
		return Record{}, fmt.Errorf("event %q data: %w", e.ID(), err)
	}
	line, err := rec.MarshalJSON()
	if err != nil {
		return Record{}, err
	}
	want := map[string]string{
		"specversion":     "1.0",
		"id":              rec.ID,
		"source":          source + "/" + rec.Object.Namespace,
		"type":            "dev.flagops.audit." + string(rec.Action),
		"subject":         rec.Object.Kind + "/" + rec.Object.Namespace + "/" + rec.Object.Name,
		"time":            rec.Time.Format(time.RFC3339Nano),
		"datacontenttype": "application/json",
		"data":            string(line),
	}
	if !bytes.Contains(e.Data(), []byte(`"verified"`)) {
		// A record spooled before actors were verified has no verified field, and is
		// delivered as it was written.
		want["data"] = strings.Replace(want["data"], `,"verified":false`, "", 1)
	}
	got := map[string]string{
		"specversion":     e.SpecVersion(),
		"id":              e.ID(),
		"source":          e.Source(),
		"type":            e.Type(),
		"subject":         e.Subject(),
		"time":            e.Time().UTC().Format(time.RFC3339Nano),
		"datacontenttype": e.DataContentType(),
		"data":            string(e.Data()),
	}
	for k, w := range want {
		if got[k] != w {
			return Record{}, fmt.Errorf("event %q: %s is %q, want %q", e.ID(), k, got[k], w)
		}
	}
	if len(e.Extensions()) != 0 {
		return Record{}, fmt.Errorf("event %q has extensions %v", e.ID(), e.Extensions())
	}
	return rec, nil
}

// assertSameIDs fails unless got has exactly the IDs of want, in order.
func assertSameIDs(t *testing.T, got, want []Record) {
	t.Helper()
	g, w := ids(got), ids(want)
	if !slices.Equal(g, w) {
		t.Fatalf("records differ:\n got %d: %s\nwant %d: %s", len(g), strings.Join(g, ","), len(w), strings.Join(w, ","))
	}
}

// httpOptions returns options for an HTTP sink in a fresh spool root.
func httpOptions(t *testing.T, clock *fakeClock) Options {
	return Options{
		SpoolDir: t.TempDir(),
		Clock:    clock,
		Backoff:  BackoffFunc(func(attempt int) time.Duration { return time.Duration(attempt) * time.Second }),
	}
}

func newHTTPSink(t *testing.T, url string, opts Options) *HTTPSink {
	t.Helper()
	s, err := NewHTTP(url, opts)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(matches)
	return matches
}

func readDeadLetters(t *testing.T, path string) []deadLetterEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read dead-letter file: %v", err)
	}
	var out []deadLetterEntry
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var e deadLetterEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("decode dead letter %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// decodeLines decodes JSON lines (stdout and file sinks): one record per line, every line
// terminated.
func decodeLines(t *testing.T, body []byte) []Record {
	t.Helper()
	if len(body) > 0 && body[len(body)-1] != '\n' {
		t.Errorf("body does not end with a line feed: %q", body)
	}
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxFrameBytes)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("decode line %q: %v", sc.Text(), err)
			continue
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Errorf("scan body: %v", err)
	}
	return out
}

// closeOrFail closes c and fails the test, which goes on, if that fails. For defer and
// t.Cleanup, in place of a bare Close whose error nobody would see.
func closeOrFail(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

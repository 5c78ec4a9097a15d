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
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writeAll(t *testing.T, s Sink, records []Record) {
	t.Helper()
	for _, r := range records {
		if err := s.Write(context.Background(), r); err != nil {
			t.Fatalf("Write(%s): %v", r.Object.Name, err)
		}
	}
}

func counter(t *testing.T, m *metrics, sink, result string) float64 {
	t.Helper()
	return testutil.ToFloat64(m.records.WithLabelValues(sink, result))
}

// TestHTTPOutageLosesNothing: the receiver answers 503 for a while and then recovers; every
// record arrives exactly once, in order, one event per request or in batches.
func TestHTTPOutageLosesNothing(t *testing.T) {
	tests := []struct {
		name  string
		batch bool
		// The first attempt carries the first record, or 1 to 16 records in batch mode
		// (however many were spooled when it started); the three others 1 or 16 each.
		minRetried, maxRetried float64
	}{
		{name: "structured", minRetried: 4, maxRetried: 4},
		{name: "batch", batch: true, minRetried: 49, maxRetried: 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			failures := 0
			rc := newModeReceiver(t, tc.batch, func(http.ResponseWriter, []Record) int {
				if down.Load() {
					failures++
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
			clock := newFakeClock()
			opts := httpOptions(t, clock)
			opts.EventBatch = tc.batch
			opts.BatchMaxRecords = 16
			opts.SegmentBytes = 8 << 10 // several segments
			opts.Registerer = prometheus.NewRegistry()
			s := newHTTPSink(t, rc.srv.URL+"/ingest", opts)

			records := testRecords(200)
			writeAll(t, s, records)

			// Four failed attempts, each followed by the backoff wait of its attempt number.
			for attempt := 1; attempt <= 4; attempt++ {
				if d := receive(t, "a backoff wait", clock.waited); d != time.Duration(attempt)*time.Second {
					t.Fatalf("wait %d is %v, want %ds", attempt, d, attempt)
				}
				if attempt == 4 {
					down.Store(false)
				}
				clock.fire()
			}
			eventually(t, "all records delivered", func() bool { return len(rc.records()) >= len(records) })
			eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })

			assertSameIDs(t, rc.records(), records)
			rc.mu.Lock()
			if failures != 4 {
				t.Errorf("%d failed requests, want 4", failures)
			}
			rc.mu.Unlock()
			m := s.m
			if got := counter(t, m, s.Name(), ResultDelivered); got != 200 {
				t.Errorf("delivered = %v, want 200", got)
			}
			if got := counter(t, m, s.Name(), ResultSpooled); got != 200 {
				t.Errorf("spooled = %v, want 200", got)
			}
			if got := counter(t, m, s.Name(), ResultRetried); got < tc.minRetried || got > tc.maxRetried {
				t.Errorf("retried = %v, want between %v and %v", got, tc.minRetried, tc.maxRetried)
			}
			if got := testutil.ToFloat64(m.depth.WithLabelValues(s.Name())); got != 0 {
				t.Errorf("spool depth = %v, want 0", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if segs := segmentFiles(t, s.SpoolDir()); len(segs) > 1 {
				t.Errorf("delivered segments were kept: %v", segs)
			}
		})
	}
}

// TestHTTPRestartResumesSpool: records spooled while the receiver is down survive Close and
// are delivered, in order and once, by a new sink on the same spool.
func TestHTTPRestartResumesSpool(t *testing.T) {
	var down atomic.Bool
	rc := newReceiver(t, func(http.ResponseWriter, []Record) int {
		if down.Load() {
			return http.StatusBadGateway
		}
		return http.StatusNoContent
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	records := testRecords(50)
	frame, err := records[0].encode()
	if err != nil {
		t.Fatal(err)
	}
	// Ten records per segment, so that the 23 delivered before the restart end in the
	// middle of a segment and the cursor decides where the next sink starts.
	opts.SegmentBytes = int64(10 * (len(frame) + frameOverhead))
	opts.BatchMaxRecords = 7
	url := rc.srv.URL + "/audit"

	first, err := NewHTTP(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, first, records[:23])
	eventually(t, "the first 23 records delivered", func() bool { return len(rc.records()) == 23 })
	down.Store(true)
	writeAll(t, first, records[23:])
	receive(t, "a failed delivery", clock.waited)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n := first.Pending(); n != 27 {
		t.Fatalf("%d records left in the spool, want 27", n)
	}
	if err := first.Write(context.Background(), testRecord(99)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}

	down.Store(false)
	second := newHTTPSink(t, url, opts)
	if second.SpoolDir() != first.SpoolDir() {
		t.Fatalf("spool %s, want %s", second.SpoolDir(), first.SpoolDir())
	}
	eventually(t, "all records delivered", func() bool { return len(rc.records()) >= 50 })
	eventually(t, "the spool to drain", func() bool { return second.Pending() == 0 })
	assertSameIDs(t, rc.records(), records)

	// And a third instance has nothing left to send.
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	third := newHTTPSink(t, url, opts)
	if n := third.Pending(); n != 0 {
		t.Fatalf("third sink found %d records", n)
	}
}

// TestHTTPRestartAfterTornWrite: a crash in the middle of an append leaves a partial line;
// the next sink ignores it and delivers everything before it.
func TestHTTPRestartAfterTornWrite(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rc := newReceiver(t, func(http.ResponseWriter, []Record) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	url := rc.srv.URL
	records := testRecords(10)
	first, err := NewHTTP(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, first, records)
	receive(t, "a failed delivery", clock.waited)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, first.SpoolDir())
	if len(segs) == 0 {
		t.Fatal("no segment files")
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`0badc0de {"id":"torn`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The receiver is still down, so nothing can be delivered before the count: the torn
	// write neither loses a record nor adds one.
	second := newHTTPSink(t, url, opts)
	if n := second.Pending(); n != 10 {
		t.Fatalf("%d pending records, want 10", n)
	}
	receive(t, "a failed delivery by the second sink", clock.waited)
	down.Store(false)
	clock.fire()
	eventually(t, "all records delivered", func() bool { return second.Pending() == 0 })
	assertSameIDs(t, rc.records(), records)
	if _, err := os.Stat(filepath.Join(second.SpoolDir(), deadLetterFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a torn write went to the dead-letter file: %v", err)
	}
}

// TestHTTPPermanentRejection: a 400 for a request isolates the records the receiver refuses,
// moves them to the dead-letter file, and delivers the others in order.
func TestHTTPPermanentRejection(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) { testPermanentRejection(t, batch) })
	}
}

func testPermanentRejection(t *testing.T, batchMode bool) {
	isPoison := func(r Record) bool { return strings.HasSuffix(r.Object.Name, "7") }
	rc := newModeReceiver(t, batchMode, func(_ http.ResponseWriter, batch []Record) int {
		if slices.ContainsFunc(batch, isPoison) {
			return http.StatusBadRequest
		}
		return http.StatusAccepted
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	opts.Registerer = prometheus.NewRegistry()
	opts.EventBatch = batchMode
	opts.BatchMaxRecords = 8
	s := newHTTPSink(t, rc.srv.URL, opts)
	records := testRecords(40)
	writeAll(t, s, records)
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })

	var good, poison []Record
	for _, r := range records {
		if isPoison(r) {
			poison = append(poison, r)
		} else {
			good = append(good, r)
		}
	}
	assertSameIDs(t, rc.records(), good)
	dead := readDeadLetters(t, filepath.Join(s.SpoolDir(), deadLetterFileName))
	if len(dead) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(poison))
	}
	for i, e := range dead {
		var r Record
		if err := r.UnmarshalJSON(e.Record); err != nil {
			t.Fatal(err)
		}
		if r.ID != poison[i].ID || e.Status != http.StatusBadRequest || !strings.Contains(e.Reason, "400") || e.Time == "" {
			t.Errorf("dead letter %d = %+v, want record %s with status 400", i, e, poison[i].ID)
		}
	}
	if got := counter(t, s.m, s.Name(), ResultRejected); got != float64(len(poison)) {
		t.Errorf("rejected = %v, want %d", got, len(poison))
	}
	if got := counter(t, s.m, s.Name(), ResultDelivered); got != float64(len(good)) {
		t.Errorf("delivered = %v, want %d", got, len(good))
	}
	select {
	case d := <-clock.waited:
		t.Errorf("a permanent rejection was retried after %v", d)
	default:
	}
}

// TestHTTPEverythingRejected: a receiver that refuses everything does not block the queue.
func TestHTTPEverythingRejected(t *testing.T) {
	rc := newReceiver(t, always(http.StatusUnprocessableEntity))
	opts := httpOptions(t, newFakeClock())
	opts.BatchMaxRecords = 5
	s := newHTTPSink(t, rc.srv.URL, opts)
	records := testRecords(12)
	writeAll(t, s, records)
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
	dead := readDeadLetters(t, filepath.Join(s.SpoolDir(), deadLetterFileName))
	if len(dead) != len(records) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(records))
	}
	// The receiver sees far fewer requests than a retry loop would make: at most a split
	// per batch plus one request per record.
	if n := rc.requestCount(); n > 3*len(records) {
		t.Errorf("%d requests for %d records", n, len(records))
	}
}

// TestHTTPPayloadTooLargeSplits: in batch mode, 413 for big batches splits them; nothing is dead-lettered.
func TestHTTPPayloadTooLargeSplits(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	tooLarge := 0
	rc := newModeReceiver(t, true, func(_ http.ResponseWriter, batch []Record) int {
		switch {
		case down.Load():
			return http.StatusServiceUnavailable
		case len(batch) > 3:
			tooLarge++
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusOK
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	opts.EventBatch = true
	opts.BatchMaxRecords = 20
	s := newHTTPSink(t, rc.srv.URL, opts)
	// Spool everything while the receiver is down, so that the next batch is a big one.
	records := testRecords(20)
	writeAll(t, s, records)
	receive(t, "a failed delivery", clock.waited)
	down.Store(false)
	clock.fire()
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
	assertSameIDs(t, rc.records(), records)
	if _, err := os.Stat(filepath.Join(s.SpoolDir(), deadLetterFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("records were dead-lettered: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if tooLarge == 0 {
		t.Error("no batch was too large; the split was not exercised")
	}
}

// TestHTTPRetryAfter: the wait after a failure is at least what Retry-After asks, capped.
func TestHTTPRetryAfter(t *testing.T) {
	now := testEpoch
	tests := []struct {
		name, header string
		status       int
		maxRetry     time.Duration
		want         time.Duration
	}{
		{name: "seconds", header: "7", status: http.StatusTooManyRequests, want: 7 * time.Second},
		// HTTP dates have whole seconds; the fake clock's time has a fraction.
		{name: "http date", header: now.Add(90 * time.Second).Format(http.TimeFormat), status: http.StatusServiceUnavailable, want: now.Add(90 * time.Second).Truncate(time.Second).Sub(now)},
		{name: "date in the past", header: now.Add(-time.Hour).Format(http.TimeFormat), status: http.StatusServiceUnavailable, want: 5 * time.Second},
		{name: "capped", header: "100000", status: http.StatusTooManyRequests, maxRetry: time.Minute, want: time.Minute},
		{name: "huge", header: "99999999999999999", status: http.StatusTooManyRequests, want: DefaultMaxRetryAfter},
		{name: "shorter than backoff", header: "1", status: http.StatusTooManyRequests, want: 5 * time.Second},
		{name: "invalid", header: "soon", status: http.StatusTooManyRequests, want: 5 * time.Second},
		{name: "negative", header: "-3", status: http.StatusTooManyRequests, want: 5 * time.Second},
		{name: "timeout status", header: "", status: http.StatusRequestTimeout, want: 5 * time.Second},
		{name: "unauthorized waits for an operator", header: "", status: http.StatusUnauthorized, want: 5 * time.Second},
		{name: "redirect that would drop the body", header: "", status: http.StatusFound, want: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			rc := newReceiver(t, func(w http.ResponseWriter, _ []Record) int {
				if calls.Add(1) == 1 {
					if tc.header != "" {
						w.Header().Set("Retry-After", tc.header)
					}
					if tc.status == http.StatusFound {
						w.Header().Set("Location", "/elsewhere")
					}
					return tc.status
				}
				return http.StatusOK
			})
			clock := newFakeClock()
			opts := httpOptions(t, clock)
			opts.Backoff = BackoffFunc(func(int) time.Duration { return 5 * time.Second })
			opts.MaxRetryAfter = tc.maxRetry
			s := newHTTPSink(t, rc.srv.URL+"/in", opts)
			writeAll(t, s, testRecords(1))
			if got := receive(t, "the retry wait", clock.waited); got != tc.want {
				t.Errorf("waited %v, want %v", got, tc.want)
			}
			if n := len(rc.records()); n != 0 {
				t.Fatalf("%d records delivered before the retry", n)
			}
			clock.fire()
			eventually(t, "the retry to deliver", func() bool { return len(rc.records()) == 1 })
		})
	}
}

// TestHTTPFollowsRedirectsThatKeepThePOST: 307 and 308 are followed with the body.
func TestHTTPFollowsRedirectsThatKeepThePOST(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler(rc.srv.URL+"/new", http.StatusTemporaryRedirect))
	front := httptest.NewServer(mux)
	defer front.Close()
	s := newHTTPSink(t, front.URL+"/old", httpOptions(t, newFakeClock()))
	records := testRecords(3)
	writeAll(t, s, records)
	eventually(t, "delivery through the redirect", func() bool { return s.Pending() == 0 })
	assertSameIDs(t, rc.records(), records)
}

func TestHTTPHeadersAndBearerToken(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	opts.BearerTokenFile = tokenFile
	opts.Header = http.Header{"X-Api-Key": {"k1"}}
	url := strings.Replace(rc.srv.URL, "http://", "http://svc:s3cret@", 1) + "/in?tenant=t1"
	s := newHTTPSink(t, url, opts)
	if strings.Contains(s.Name(), "s3cret") || strings.Contains(s.Name(), "tenant") {
		t.Errorf("Name() %q shows credentials or query", s.Name())
	}

	// An empty token file is a failure to retry, without a request.
	writeAll(t, s, testRecords(1))
	receive(t, "a retry wait for the missing token", clock.waited)
	if n := rc.requestCount(); n != 0 {
		t.Fatalf("%d requests without a token", n)
	}
	if err := os.WriteFile(tokenFile, []byte("tok1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.fire()
	eventually(t, "the first record", func() bool { return len(rc.records()) == 1 })
	if err := os.WriteFile(tokenFile, []byte("tok2"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, testRecords(2)[1:])
	eventually(t, "the second record", func() bool { return len(rc.records()) == 2 })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, want := range []string{"Bearer tok1", "Bearer tok2"} {
		h := rc.headers[i]
		if got := h.Get("Authorization"); got != want {
			t.Errorf("request %d: Authorization %q, want %q", i, got, want)
		}
		if got := h.Get("X-Api-Key"); got != "k1" {
			t.Errorf("request %d: X-Api-Key %q", i, got)
		}
	}
}

func TestHTTPBasicAuthFromURL(t *testing.T) {
	var user, pass atomic.Value
	rc := newReceiver(t, always(http.StatusOK))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		user.Store(u)
		pass.Store(p)
		rc.serve(w, r)
	}))
	defer front.Close()
	s := newHTTPSink(t, strings.Replace(front.URL, "http://", "http://svc:s3cret@", 1), httpOptions(t, newFakeClock()))
	writeAll(t, s, testRecords(1))
	eventually(t, "delivery", func() bool { return len(rc.records()) == 1 })
	if user.Load() != "svc" || pass.Load() != "s3cret" {
		t.Errorf("basic auth %v:%v", user.Load(), pass.Load())
	}
}

// TestHTTPSpoolFull: a full spool refuses records with ErrSpoolFull and keeps what it has.
func TestHTTPSpoolFull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit func(o *Options, frame int64)
	}{
		{name: "records", limit: func(o *Options, _ int64) { o.SpoolMaxRecords = 5 }},
		{name: "bytes", limit: func(o *Options, frame int64) { o.SpoolMaxBytes = 5*frame + frame/2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			rc := newReceiver(t, func(http.ResponseWriter, []Record) int {
				if down.Load() {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
			clock := newFakeClock()
			opts := httpOptions(t, clock)
			opts.Registerer = prometheus.NewRegistry()
			records := testRecords(7)
			payload, err := records[0].encode()
			if err != nil {
				t.Fatal(err)
			}
			tc.limit(&opts, int64(len(payload)+frameOverhead))
			s := newHTTPSink(t, rc.srv.URL, opts)
			writeAll(t, s, records[:5])
			err = s.Write(context.Background(), records[5])
			if !errors.Is(err, ErrSpoolFull) {
				t.Fatalf("Write to a full spool = %v, want ErrSpoolFull", err)
			}
			if !strings.Contains(err.Error(), s.Name()) {
				t.Errorf("error %q does not name the sink", err)
			}
			if got := counter(t, s.m, s.Name(), ResultSpoolFull); got != 1 {
				t.Errorf("spool_full = %v, want 1", got)
			}
			if got := testutil.ToFloat64(s.m.depth.WithLabelValues(s.Name())); got != 5 {
				t.Errorf("spool depth = %v, want 5", got)
			}

			receive(t, "a failed delivery", clock.waited)
			down.Store(false)
			clock.fire()
			eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
			writeAll(t, s, records[5:])
			eventually(t, "all records delivered", func() bool { return len(rc.records()) == 7 })
			assertSameIDs(t, rc.records(), records)
		})
	}
}

// TestHTTPShutdownAbortsAHangingRequest: Shutdown returns when its context ends even if the
// receiver never answers, and the record stays spooled.
func TestHTTPShutdownAbortsAHangingRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer close(release)
	opts := httpOptions(t, newFakeClock())
	s, err := NewHTTP(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, testRecords(1))
	receive(t, "the request", arrived)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.Pending(); n != 1 {
		t.Fatalf("%d records spooled after Shutdown, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestHTTPCloseFlushes: Close delivers what is spooled when the receiver is up.
func TestHTTPCloseFlushes(t *testing.T) {
	gate := make(chan struct{})
	var first atomic.Bool
	rc := newReceiver(t, func(http.ResponseWriter, []Record) int { return http.StatusOK })
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-gate // hold the first request until Close is under way
		}
		rc.serve(w, r)
	}))
	defer front.Close()
	opts := httpOptions(t, newFakeClock())
	opts.BatchMaxRecords = 2
	opts.CloseTimeout = testDeadline
	s, err := NewHTTP(front.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	records := testRecords(9)
	writeAll(t, s, records)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	eventually(t, "Close to refuse writes", func() bool {
		s.spool.mu.Lock()
		defer s.spool.mu.Unlock()
		return s.spool.closed
	})
	close(gate)
	if err := receive(t, "Close", closed); err != nil {
		t.Fatal(err)
	}
	if n := s.Pending(); n != 0 {
		t.Fatalf("%d records left after Close", n)
	}
	assertSameIDs(t, rc.records(), records)
}

func TestHTTPSpoolIsExclusive(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	opts := httpOptions(t, newFakeClock())
	first := newHTTPSink(t, rc.srv.URL, opts)
	if _, err := NewHTTP(rc.srv.URL, opts); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second sink on the spool: %v, want an in-use error", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := NewHTTP(rc.srv.URL, opts)
	if err != nil {
		t.Fatalf("sink after Close: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewHTTPErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, spool, want string
	}{
		{name: "missing spool directory", url: "http://x", spool: filepath.Join(dir, "nope"), want: "does not exist; create it or mount a volume"},
		{name: "spool is a file", url: "http://x", spool: file, want: "is not a directory"},
		{name: "scheme", url: "ftp://x", spool: dir, want: `unsupported scheme "ftp"`},
		{name: "no host", url: "http:///path", spool: dir, want: "no host"},
		{name: "bad url", url: "http://[::1", spool: dir, want: "invalid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewHTTP(tc.url, Options{SpoolDir: tc.spool})
			if err == nil {
				_ = s.Close()
				t.Fatal("NewHTTP succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestHTTPWriteErrors(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	opts := httpOptions(t, newFakeClock())
	opts.Registerer = prometheus.NewRegistry()
	s := newHTTPSink(t, rc.srv.URL, opts)
	bad := testRecord(0)
	bad.Time = time.Time{}
	if err := s.Write(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Write(invalid) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, testRecord(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(canceled) = %v", err)
	}
	huge := testRecord(1)
	huge.After["enabled"] = []byte(`"` + strings.Repeat("x", MaxRecordBytes) + `"`)
	if err := s.Write(context.Background(), huge); !errors.Is(err, ErrRecordTooLarge) {
		t.Errorf("Write(huge) = %v, want ErrRecordTooLarge", err)
	}
	if got := counter(t, s.m, s.Name(), ResultFailed); got != 3 {
		t.Errorf("failed = %v, want 3", got)
	}
}

// TestHTTPNetworkErrorRetries: a receiver that is not listening is retried, not rejected.
func TestHTTPNetworkErrorRetries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	opts.Registerer = prometheus.NewRegistry()
	s := newHTTPSink(t, url, opts)
	writeAll(t, s, testRecords(2))
	receive(t, "a retry wait", clock.waited)
	clock.fire()
	receive(t, "a second retry wait", clock.waited)
	if n := s.Pending(); n != 2 {
		t.Errorf("%d records spooled, want 2", n)
	}
	if got := counter(t, s.m, s.Name(), ResultRetried); got < 2 {
		t.Errorf("retried = %v, want at least 2", got)
	}
	if got := counter(t, s.m, s.Name(), ResultRejected); got != 0 {
		t.Errorf("rejected = %v, want 0", got)
	}
}

func TestSystemClock(t *testing.T) {
	var c Clock = systemClock{}
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Errorf("Now() = %v, before %v", now, before)
	}
	fired := receive(t, "a zero-length timer", c.After(0))
	if fired.Before(before) {
		t.Errorf("timer fired at %v, before %v", fired, before)
	}
}

func TestPermanentStatus(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 302: false, 400: true, 401: false, 403: false, 404: true, 408: false,
		409: true, 413: true, 422: true, 429: false, 499: true, 500: false, 503: false,
	} {
		if got := permanentStatus(code); got != want {
			t.Errorf("permanentStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := ExponentialBackoff{Initial: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0 }}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	b.Rand = func() float64 { return 0.999999 }
	if got := b.Delay(100); got <= 9*time.Second || got > 10*time.Second {
		t.Errorf("Delay(100) with maximal jitter = %v, want just under 10s", got)
	}
	huge := ExponentialBackoff{Initial: time.Second, Max: time.Duration(1<<63 - 1), Rand: func() float64 { return 0 }}
	if got := huge.Delay(200); got <= 0 {
		t.Errorf("Delay(200) with an unbounded maximum = %v, want a positive wait", got)
	}
	var zero ExponentialBackoff
	for attempt := 1; attempt < 4; attempt++ {
		if got := zero.Delay(attempt); got < DefaultBackoffInitial/2 || got > DefaultBackoffInitial {
			t.Errorf("zero backoff Delay(%d) = %v, want within [%v, %v]", attempt, got, DefaultBackoffInitial/2, DefaultBackoffInitial)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := testEpoch.Truncate(time.Second)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 12 ", 12 * time.Second, true},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute, true},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSpoolDirName(t *testing.T) {
	a := spoolDirName("https://audit.example.com/in")
	if !strings.HasPrefix(a, "http-") || len(a) != len("http-")+16 {
		t.Errorf("spool dir name %q", a)
	}
	if a == spoolDirName("https://audit.example.com/other") {
		t.Error("different endpoints share a spool")
	}
	if a != spoolDirName("https://audit.example.com/in") {
		t.Error("spool dir name is not stable")
	}
}

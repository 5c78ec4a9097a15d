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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// TestNewEvent: the attributes of a record's CloudEvent, and its data, which is the
// record's JSON line.
func TestNewEvent(t *testing.T) {
	override := NewRecord(testEpoch, Change{
		Action:  ActionUserOverrideExpired,
		Actor:   Actor{Username: "system:serviceaccount:flagops-system:flagops-manager"},
		Object:  ObjectRef{Namespace: "shop", Name: "pilot-user-42", UID: "u-42", Generation: 2},
		Subject: &Subject{UserID: "user-42"},
		Before:  map[string]json.RawMessage{"beta": json.RawMessage(`true`)},
	})
	tests := []struct {
		name, source                      string
		rec                               Record
		wantSource, wantType, wantSubject string
	}{
		{name: "flag", source: DefaultEventSource, rec: testRecord(3),
			wantSource: "flagops.dev/manager/billing", wantType: "dev.flagops.audit.flag.updated", wantSubject: "FeatureFlag/billing/flag-0003"},
		{name: "override, absolute source with a trailing slash", source: "https://flagops.example.com/prod-eu/", rec: override,
			wantSource: "https://flagops.example.com/prod-eu/shop", wantType: "dev.flagops.audit.user_override.expired", wantSubject: "UserFlagOverride/shop/pilot-user-42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEvent(tc.rec, tc.source)
			if err != nil {
				t.Fatal(err)
			}
			line, err := tc.rec.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			got := []string{e.SpecVersion(), e.ID(), e.Source(), e.Type(), e.Subject(), e.DataContentType(), string(e.Data())}
			want := []string{"1.0", tc.rec.ID, tc.wantSource, tc.wantType, tc.wantSubject, "application/json", string(line)}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("attribute %d = %q, want %q", i, got[i], want[i])
				}
			}
			if !e.Time().Equal(tc.rec.Time) {
				t.Errorf("time %v, want %v", e.Time(), tc.rec.Time)
			}
			// Structured mode: data is the record JSON itself, not base64.
			js, err := e.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(js, append([]byte(`"data":`), line...)) || bytes.Contains(js, []byte("data_base64")) {
				t.Errorf("structured event %s does not carry the record as JSON data", js)
			}
		})
	}
	bad := testRecord(1)
	bad.ID = ""
	if _, err := NewEvent(bad, DefaultEventSource); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("NewEvent(invalid record) = %v, want ErrInvalidRecord", err)
	}
}

func TestCheckEventSource(t *testing.T) {
	tests := []struct {
		source, wantErr string
	}{
		{source: DefaultEventSource},
		{source: "https://flagops.example.com/prod-eu"},
		{source: "/clusters/prod-eu"},
		{source: "", wantErr: "empty source"},
		{source: "  ", wantErr: "empty source"},
		{source: "flagops.dev/x?cluster=a", wantErr: "query or fragment"},
		{source: "flagops.dev/x#a", wantErr: "query or fragment"},
		{source: "http://[::1", wantErr: "not a URI reference"},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			err := CheckEventSource(tc.source)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckEventSource = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), EventSourceFlag) {
				t.Fatalf("CheckEventSource = %v, want an error naming %s with %q", err, EventSourceFlag, tc.wantErr)
			}
			if _, err := NewHTTP("http://127.0.0.1:1", Options{SpoolDir: t.TempDir(), EventSource: tc.source + "?x"}); err == nil {
				t.Error("NewHTTP accepted an invalid event source")
			}
		})
	}
}

// TestHTTPDeliversOldSpoolAsEvents: a spool written by the version that sent JSON lines
// (testdata/spool-v1, five records of testRecords, left by a sink whose receiver was down)
// is delivered by this version as CloudEvents, in order, with the records unchanged.
func TestHTTPDeliversOldSpoolAsEvents(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "spool-v1", segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSuffix(fixture, []byte("\n")), []byte("\n")) {
		_, payload, _ := bytes.Cut(l, []byte(" "))
		lines = append(lines, payload)
	}
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			rc := newModeReceiver(t, batch, always(http.StatusOK))
			opts := httpOptions(t, newFakeClock())
			opts.EventBatch = batch
			spoolSegment(t, opts, rc.srv.URL, fixture)

			s := newHTTPSink(t, rc.srv.URL, opts)
			eventually(t, "the old spool to drain", func() bool { return s.Pending() == 0 })
			got := rc.records()
			assertSameIDs(t, got, testRecords(5))
			for i, r := range got {
				line, err := r.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				// The old version had no actor.verified; the event carries the line as written.
				line = bytes.Replace(line, []byte(`,"verified":false`), nil, 1)
				if !bytes.Equal(line, lines[i]) {
					t.Errorf("record %d is\n%s\nwant the spooled\n%s", i, line, lines[i])
				}
			}
		})
	}
}

// TestHTTPRejectsUndecodableSpooledRecord: a spooled frame whose checksum is right but
// which is not a record cannot become an event; it goes to the dead-letter file without a
// request, and the records after it are delivered.
func TestHTTPRejectsUndecodableSpooledRecord(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	opts := httpOptions(t, newFakeClock())
	good := testRecord(1)
	payload, err := good.encode()
	if err != nil {
		t.Fatal(err)
	}
	var seg []byte
	seg = appendFrame(seg, []byte(`{"id":"x","time":"yesterday"}`))
	seg = appendFrame(seg, payload)
	spoolSegment(t, opts, rc.srv.URL, seg)

	s := newHTTPSink(t, rc.srv.URL, opts)
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
	assertSameIDs(t, rc.records(), []Record{good})
	if n := rc.requestCount(); n != 1 {
		t.Errorf("%d requests, want 1 (the undecodable record is not sent)", n)
	}
	dead := readDeadLetters(t, filepath.Join(s.SpoolDir(), deadLetterFileName))
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "cloudevent") || !strings.Contains(string(dead[0].Record), "yesterday") {
		t.Fatalf("dead letters %+v, want the undecodable record", dead)
	}
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// spoolSegment writes seg as the first segment of the spool that an HTTP sink for
// endpoint will open, as an earlier sink would have left it.
func spoolSegment(t *testing.T, opts Options, endpoint string, seg []byte) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(opts.SpoolDir, spoolDirName(redactURL(u)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, filepath.Join(dir, segmentName(1)), seg)
}

// spoolRecords spools records as one segment, so that the sender reads them in one batch.
func spoolRecords(t *testing.T, opts Options, endpoint string, records []Record) {
	t.Helper()
	var seg []byte
	for _, r := range records {
		p, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		seg = appendFrame(seg, p)
	}
	spoolSegment(t, opts, endpoint, seg)
}

// TestHTTPStructuredFailureInsideABatch: in structured mode a batch goes one event per
// request; when one fails, the events before it are acknowledged at once (they are not
// sent again), and the sender retries from the failed one, so each record arrives once,
// in order.
func TestHTTPStructuredFailureInsideABatch(t *testing.T) {
	records := testRecords(10)
	var failed atomic.Bool
	rc := newReceiver(t, func(_ http.ResponseWriter, batch []Record) int {
		if len(batch) != 1 {
			t.Errorf("structured request with %d records", len(batch))
		}
		if batch[0].ID == records[4].ID && failed.CompareAndSwap(false, true) {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	opts.BatchMaxRecords = 100
	spoolRecords(t, opts, rc.srv.URL, records)
	s := newHTTPSink(t, rc.srv.URL, opts)
	receive(t, "the retry wait", clock.waited)
	if n := s.Pending(); n != 6 {
		t.Fatalf("%d records pending while the fifth is retried, want 6 (the first four acknowledged)", n)
	}
	assertSameIDs(t, rc.records(), records[:4])
	clock.fire()
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
	assertSameIDs(t, rc.records(), records)
	if n := rc.requestCount(); n != 11 {
		t.Errorf("%d requests, want 11 (ten records, one retried)", n)
	}
}

// TestHTTPSinkToCloudEventsClient: a receiver built with the CloudEvents SDK's own client
// (as Knative-style consumers are) gets every record, in order, as events it accepts.
func TestHTTPSinkToCloudEventsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cehttp.New(cehttp.WithListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan event.Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- c.StartReceiver(ctx, func(e event.Event) { got <- e })
	}()
	t.Cleanup(func() {
		cancel()
		if err := receive(t, "the receiver to stop", stopped); err != nil {
			t.Errorf("StartReceiver: %v", err)
		}
	})

	s := newHTTPSink(t, "http://"+ln.Addr().String()+"/", httpOptions(t, newFakeClock()))
	records := testRecords(3)
	writeAll(t, s, records)
	for _, want := range records {
		e := receive(t, "an event", got)
		rec, err := checkEvent(e, DefaultEventSource)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != want.ID {
			t.Fatalf("event for record %s, want %s", rec.ID, want.ID)
		}
	}
	eventually(t, "the spool to drain", func() bool { return s.Pending() == 0 })
}

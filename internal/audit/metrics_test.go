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
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsExposition checks the metrics as a scrape sees them, with sinks of every kind
// sharing one registry.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	var ok atomic.Bool
	rc := newReceiver(t, func(http.ResponseWriter, []Record) int {
		if ok.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	clock := newFakeClock()
	opts := httpOptions(t, clock)
	opts.Registerer = reg
	opts.Stdout = &bytes.Buffer{}
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := ParseAll([]string{"stdout", "file:" + path, rc.srv.URL}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, s)
	records := testRecords(3)
	writeAll(t, s, records)
	writeAll(t, s, records[:1]) // a duplicate, dropped by every sink

	// One failed delivery: the batch's records are counted as retried, all still spooled.
	receive(t, "a failed delivery", clock.waited)
	endpoint := rc.srv.URL
	expected := func(delivered, retried, depth string) string {
		return `
# HELP flagops_audit_records_total Audit records handled by each audit sink, by result.
# TYPE flagops_audit_records_total counter
flagops_audit_records_total{result="corrupt",sink="` + endpoint + `"} 0
flagops_audit_records_total{result="delivered",sink="` + endpoint + `"} ` + delivered + `
flagops_audit_records_total{result="duplicate",sink="` + endpoint + `"} 1
flagops_audit_records_total{result="duplicate",sink="file:` + path + `"} 1
flagops_audit_records_total{result="duplicate",sink="stdout"} 1
flagops_audit_records_total{result="failed",sink="` + endpoint + `"} 0
flagops_audit_records_total{result="failed",sink="file:` + path + `"} 0
flagops_audit_records_total{result="failed",sink="stdout"} 0
flagops_audit_records_total{result="rejected",sink="` + endpoint + `"} 0
flagops_audit_records_total{result="retried",sink="` + endpoint + `"} ` + retried + `
flagops_audit_records_total{result="spool_full",sink="` + endpoint + `"} 0
flagops_audit_records_total{result="spooled",sink="` + endpoint + `"} 3
flagops_audit_records_total{result="written",sink="file:` + path + `"} 3
flagops_audit_records_total{result="written",sink="stdout"} 3
# HELP flagops_audit_spool_depth Audit records waiting in an HTTP audit sink's spool for delivery.
# TYPE flagops_audit_spool_depth gauge
flagops_audit_spool_depth{sink="` + endpoint + `"} ` + depth + `
`
	}
	h := findHTTP(t, s)
	retried := testutil.ToFloat64(h.m.records.WithLabelValues(endpoint, ResultRetried))
	if retried < 1 || retried > 3 {
		t.Fatalf("retried = %v, want 1 to 3", retried)
	}
	retriedText := strconv.FormatFloat(retried, 'f', -1, 64)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected("0", retriedText, "3")), MetricRecordsTotal, MetricSpoolDepth); err != nil {
		t.Fatal(err)
	}
	ok.Store(true)
	clock.fire()
	eventually(t, "delivery", func() bool { return h.Pending() == 0 })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected("3", retriedText, "0")), MetricRecordsTotal, MetricSpoolDepth); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// findHTTP returns the HTTP sink inside what ParseAll returned.
func findHTTP(t *testing.T, s Sink) *HTTPSink {
	t.Helper()
	multi, ok := s.(*multiSink)
	if !ok {
		t.Fatalf("%T is not a multi sink", s)
	}
	for _, inner := range multi.sinks {
		if d, ok := inner.(*dedupSink); ok {
			inner = d.inner
		}
		if h, ok := inner.(*HTTPSink); ok {
			return h
		}
	}
	t.Fatal("no HTTP sink")
	return nil
}

func TestMetricsRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewStream("a", &bytes.Buffer{}, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStream("b", &bytes.Buffer{}, Options{Registerer: reg})
	if err != nil {
		t.Fatalf("second sink on one registry: %v", err)
	}
	writeAll(t, a, testRecords(2))
	writeAll(t, b, testRecords(1))
	if a.m.records != b.m.records {
		t.Error("the sinks do not share the registered collector")
	}
	if n, err := testutil.GatherAndCount(reg, MetricRecordsTotal); err != nil || n != 4 {
		t.Errorf("%d series (%v), want written and failed for each of 2 sinks", n, err)
	}
	if got := testutil.ToFloat64(a.m.records.WithLabelValues("a", ResultWritten)); got != 2 {
		t.Errorf("a written = %v", got)
	}
	if got := testutil.ToFloat64(b.m.records.WithLabelValues("b", ResultWritten)); got != 1 {
		t.Errorf("b written = %v", got)
	}
	w := &chunkWriter{fail: errors.New("closed pipe")}
	c, err := NewStream("c", w, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Write(context.Background(), testRecord(0))
	if got := testutil.ToFloat64(c.m.records.WithLabelValues("c", ResultFailed)); got != 1 {
		t.Errorf("c failed = %v", got)
	}
}

func TestMetricsLabelIsValidUTF8(t *testing.T) {
	reg := prometheus.NewRegistry()
	path := filepath.Join(t.TempDir(), "audit-\xff.log")
	s, err := NewFile(path, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, s)
	writeAll(t, s, testRecords(1))
	if got := testutil.ToFloat64(s.m.records.WithLabelValues(label(s.Name()), ResultWritten)); got != 1 {
		t.Errorf("written = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, MetricRecordsTotal); err != nil || n != 2 {
		t.Errorf("%d series (%v), want 2", n, err)
	}
}

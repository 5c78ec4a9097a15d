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
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	MetricRecordsTotal = "flagops_audit_records_total"
	MetricSpoolDepth   = "flagops_audit_spool_depth"
)

// Values of the result label of flagops_audit_records_total.
const (
	// ResultWritten: a stream or file sink wrote the record.
	ResultWritten = "written"
	// ResultSpooled: an HTTP sink accepted the record into its spool.
	ResultSpooled = "spooled"
	// ResultDelivered: the receiver accepted the record (2xx).
	ResultDelivered = "delivered"
	// ResultRetried: a delivery attempt failed and will be retried (counted per record).
	ResultRetried = "retried"
	// ResultRejected: the receiver rejected the record permanently; it is in the dead-letter file.
	ResultRejected = "rejected"
	// ResultCorrupt: a spool frame could not be read back; its bytes are in the dead-letter file.
	ResultCorrupt = "corrupt"
	// ResultSpoolFull: Write failed with ErrSpoolFull.
	ResultSpoolFull = "spool_full"
	// ResultFailed: Write failed for another reason.
	ResultFailed = "failed"
	// ResultDuplicate: Dedup dropped a record whose ID it had just written.
	ResultDuplicate = "duplicate"
)

// metrics are the package's collectors. All sinks created with one Registerer share them.
type metrics struct {
	records *prometheus.CounterVec
	depth   *prometheus.GaugeVec
}

// newMetrics creates the collectors and registers them with reg, reusing the collectors
// already registered there by an earlier call. A nil reg registers nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRecordsTotal,
			Help: "Audit records handled by each audit sink, by result.",
		}, []string{"sink", "result"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSpoolDepth,
			Help: "Audit records waiting in an HTTP audit sink's spool for delivery.",
		}, []string{"sink"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.records, err = register(reg, m.records); err != nil {
		return nil, err
	}
	if m.depth, err = register(reg, m.depth); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector that reg already has.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register audit metrics: %w", err)
}

// label makes a sink name a valid label value: a file path need not be UTF-8, and
// WithLabelValues panics on a value that is not.
func label(sink string) string { return strings.ToValidUTF8(sink, "\uFFFD") }

func (m *metrics) add(sink, result string, n int) {
	m.records.WithLabelValues(label(sink), result).Add(float64(n))
}

// init makes the series of a sink's results exist at zero, so that rates and alerts work
// before the first event.
func (m *metrics) init(sink string, results ...string) {
	for _, r := range results {
		m.records.WithLabelValues(label(sink), r)
	}
}

func (m *metrics) setDepth(sink string, n int) {
	m.depth.WithLabelValues(label(sink)).Set(float64(n))
}

// outcome counts a direct write to sink as written or failed, and returns err wrapped with
// the sink's name.
func (m *metrics) outcome(sink string, err error) error {
	if err != nil {
		m.add(sink, ResultFailed, 1)
		return sinkError(sink, err)
	}
	m.add(sink, ResultWritten, 1)
	return nil
}

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

package controllers

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestStreamMetrics(t *testing.T) {
	var m StreamMetrics
	m.Subscribers(3)
	if got := testutil.ToFloat64(streamSubscribers); got != 3 {
		t.Errorf("flagops_stream_subscribers = %v, want 3", got)
	}
	before := testutil.ToFloat64(streamEventsTotal.WithLabelValues("changed"))
	m.EventSent("changed")
	m.EventSent("changed")
	if got := testutil.ToFloat64(streamEventsTotal.WithLabelValues("changed")) - before; got != 2 {
		t.Errorf("flagops_stream_events_total{kind=changed} rose by %v, want 2", got)
	}
	overflow := testutil.ToFloat64(streamEventsTotal.WithLabelValues("overflow"))
	m.Overflowed()
	if got := testutil.ToFloat64(streamEventsTotal.WithLabelValues("overflow")) - overflow; got != 1 {
		t.Errorf("overflow events rose by %v, want 1", got)
	}
	m.Propagation(3 * time.Millisecond)
	if n := testutil.CollectAndCount(propagationSeconds); n != 1 {
		t.Errorf("flagops_propagation_seconds has %d series, want 1", n)
	}
}

func TestEvaluationMetrics(t *testing.T) {
	var m StreamMetrics
	split := testutil.ToFloat64(evaluationsTotal.WithLabelValues("SPLIT"))
	static := testutil.ToFloat64(evaluationsTotal.WithLabelValues("STATIC"))
	m.Evaluated("SPLIT")
	m.Evaluated("SPLIT")
	m.Evaluated("STATIC")
	if got := testutil.ToFloat64(evaluationsTotal.WithLabelValues("SPLIT")) - split; got != 2 {
		t.Errorf("flagops_evaluations_total{reason=SPLIT} rose by %v, want 2", got)
	}
	if got := testutil.ToFloat64(evaluationsTotal.WithLabelValues("STATIC")) - static; got != 1 {
		t.Errorf("flagops_evaluations_total{reason=STATIC} rose by %v, want 1", got)
	}
	odd := testutil.ToFloat64(evaluationsTotal.WithLabelValues("Reason(9)"))
	m.Evaluated("Reason(9)")
	if got := testutil.ToFloat64(evaluationsTotal.WithLabelValues("Reason(9)")) - odd; got != 1 {
		t.Errorf("an unknown reason rose by %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(ctrlmetrics.Registry, "flagops_evaluations_total")
	if err != nil {
		t.Fatalf("gathering controller-runtime's registry: %v", err)
	}
	if n < 6 {
		t.Errorf("controller-runtime's registry has %d flagops_evaluations_total series, want at least 6", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { m.Evaluated("DEFAULT") }); allocs != 0 {
		t.Errorf("Evaluated allocates %v times per call, want 0", allocs)
	}
}

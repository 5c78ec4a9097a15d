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

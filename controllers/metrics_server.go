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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

var (
	streamSubscribers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flagops_stream_subscribers",
		Help: "Event stream slots in use (GET /v1/stream and GET /ofrep/v1/sse): open streams and stream requests being validated.",
	})
	streamEventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagops_stream_events_total",
		Help: "Events written to event streams, by kind: snapshot, changed, refetch, heartbeat and overflow (a stream fell behind the store's change history and compared everything with the current state).",
	}, []string{"kind"})
	propagationSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flagops_propagation_seconds",
		Help:    "Delay between the latest store write an event reflects (by the store's clock) and the event being flushed to a subscriber.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	})
	evaluationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagops_evaluations_total",
		Help: "Flag results served by OFREP single and bulk evaluation and by POST /v1/evaluate, by OpenFeature reason.",
	}, []string{"reason"})
	// evaluationCounters holds the counter of every known reason, so that counting one does
	// not resolve label values on the request path.
	evaluationCounters = func() map[string]prometheus.Counter {
		m := map[string]prometheus.Counter{}
		for r := evaluator.ReasonStatic; r <= evaluator.ReasonError; r++ {
			m[r.String()] = evaluationsTotal.WithLabelValues(r.String())
		}
		return m
	}()
)

func init() {
	ctrlmetrics.Registry.MustRegister(streamSubscribers, streamEventsTotal, propagationSeconds, evaluationsTotal)
}

// StreamMetrics exports the evaluator server's stream and evaluation instrumentation to controller-runtime's
// metrics registry. It is safe for concurrent use; pass it as server.Options.Metrics.
type StreamMetrics struct{}

var _ server.Metrics = StreamMetrics{}

// Subscribers sets flagops_stream_subscribers.
func (StreamMetrics) Subscribers(n int) { streamSubscribers.Set(float64(n)) }

// EventSent counts one event of kind in flagops_stream_events_total.
func (StreamMetrics) EventSent(kind string) { streamEventsTotal.WithLabelValues(kind).Inc() }

// Overflowed counts one stream that fell behind the change history as kind "overflow".
func (StreamMetrics) Overflowed() { streamEventsTotal.WithLabelValues("overflow").Inc() }

// Propagation observes d in flagops_propagation_seconds.
func (StreamMetrics) Propagation(d time.Duration) { propagationSeconds.Observe(d.Seconds()) }

// Evaluated counts one flag result of reason in flagops_evaluations_total.
func (StreamMetrics) Evaluated(reason string) {
	if c, ok := evaluationCounters[reason]; ok {
		c.Inc()
		return
	}
	evaluationsTotal.WithLabelValues(reason).Inc()
}

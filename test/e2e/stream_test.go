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

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	featureFlags      = schema.GroupVersionResource{Group: "flagops.dev", Version: "v1alpha1", Resource: "featureflags"}
	userFlagOverrides = schema.GroupVersionResource{Group: "flagops.dev", Version: "v1alpha1", Resource: "userflagoverrides"}
)

// sseEvent is one server-sent event, with the time it was read.
type sseEvent struct {
	ID, Name, Data string
	At             time.Time
}

// changed is the data of a device.feature-flags.changed event.
type changed struct {
	Revision uint64 `json:"revision"`
	Changed  map[string]struct {
		Value json.RawMessage `json:"value"`
	} `json:"changed"`
	Removed []string `json:"removed"`
}

// openStream opens GET /namespaces/ns/v1/stream?userId=user and returns its events as they
// are read. The stream is closed when the spec ends.
func openStream(ns, user string) <-chan sseEvent {
	GinkgoHelper()
	return openStreamURL(fmt.Sprintf("%s/namespaces/%s/v1/stream?userId=%s", evaluatorURL, ns, user))
}

// openStreamURL opens an event stream and returns its events as they are read. The stream is
// closed when the spec ends.
func openStreamURL(url string) <-chan sseEvent {
	GinkgoHelper()
	reqCtx, cancel := context.WithCancel(ctx)
	DeferCleanup(cancel)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	Expect(resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
	events := make(chan sseEvent, 1024)
	go func() {
		defer GinkgoRecover()
		// The stream ends when the spec's cleanup cancels the request, after the spec, so a
		// failed close would have no spec left to fail; its error is ignored.
		defer func() { _ = resp.Body.Close() }()
		defer close(events)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.Name != "" || ev.Data != "" {
					ev.At = time.Now()
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return events
}

// nextChange waits for the next event of events, which must be a changed event, and returns
// the value it carries for key and when it was read.
func nextChange(events <-chan sseEvent, key string) (string, time.Time) {
	GinkgoHelper()
	var ev sseEvent
	Eventually(events).Should(Receive(&ev))
	Expect(ev.Name).To(Equal("device.feature-flags.changed"), "event %+v", ev)
	var data changed
	Expect(json.Unmarshal([]byte(ev.Data), &data)).To(Succeed())
	Expect(data.Changed).To(HaveKey(key), "event %+v", ev)
	return string(data.Changed[key].Value), ev.At
}

func newNamespace() string {
	GinkgoHelper()
	ns, err := kube.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return ns.Name
}

// createNumberFlag creates an enabled Number flag serving value, through client-go.
func createNumberFlag(ns, key string, value int) {
	GinkgoHelper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flagops.dev/v1alpha1",
		"kind":       "FeatureFlag",
		"metadata":   map[string]any{"name": key},
		"spec":       map[string]any{"type": "Number", "enabled": true, "value": int64(value)},
	}}
	_, err := dyn.Resource(featureFlags).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldManager: "e2e"})
	Expect(err).NotTo(HaveOccurred())
}

// setValue patches the flag's value through client-go.
func setValue(ns, key string, value int) {
	GinkgoHelper()
	patch := fmt.Appendf(nil, `{"spec":{"value":%d}}`, value)
	_, err := dyn.Resource(featureFlags).Namespace(ns).Patch(ctx, key, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "e2e"})
	Expect(err).NotTo(HaveOccurred())
}

// waitForStream opens a stream once the evaluator serves the namespace, and checks that its
// first event is a snapshot.
func waitForStream(ns, user string) <-chan sseEvent {
	GinkgoHelper()
	Eventually(func() int {
		resp, err := http.Post(evaluatorURL+"/namespaces/"+ns+"/v1/evaluate", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusOK), "the evaluator does not serve namespace %s", ns)
	events := openStream(ns, user)
	var ev sseEvent
	Eventually(events).Should(Receive(&ev))
	Expect(ev.Name).To(Equal("snapshot"))
	return events
}

// counterValue returns the value of a counter in controller-runtime's registry, summed over
// the series whose labels include label=value.
func counterValue(name, label, value string) float64 {
	GinkgoHelper()
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

var _ = Describe("Writes through client-go reach device streams", func() {
	const key = "e2e.number"

	It("delivers each of 200 flag changes as a changed event", func() {
		ns := newNamespace()
		createNumberFlag(ns, key, 0)
		events := waitForStream(ns, "u1")
		changedBefore := counterValue("flagops_stream_events_total", "kind", "changed")

		const changes = 200
		latencies := make([]time.Duration, 0, changes)
		for i := range changes {
			want := 1 + i%2 // 1, 2, 1, 2, ...
			start := time.Now()
			setValue(ns, key, want)
			got, at := nextChange(events, key)
			Expect(got).To(Equal(fmt.Sprint(want)), "change %d", i)
			latencies = append(latencies, at.Sub(start))
		}
		Expect(events).NotTo(Receive(), "an event beyond the 200 changes")

		slices.Sort(latencies)
		p50, p99 := percentile(latencies, 0.50), percentile(latencies, 0.99)
		report := fmt.Sprintf("client-go write to stream event, %d changes: p50 %v, p99 %v, max %v (targets: p50 <= 100ms, p99 <= 500ms)",
			changes, p50, p99, latencies[len(latencies)-1])
		// The figures are a measurement, not a test: they depend on how busy the machine is,
		// so no bound on them is asserted.
		AddReportEntry("propagation latency", report)
		GinkgoWriter.Println(report)

		// The stream metrics count the events sent; the server counts an event just after
		// the client can read it.
		Eventually(func() float64 {
			return counterValue("flagops_stream_events_total", "kind", "changed") - changedBefore
		}).Should(BeNumerically(">=", changes))
	})

	It("delivers a user override to that user's stream only", func() {
		ns := newNamespace()
		createNumberFlag(ns, key, 1)
		u1 := waitForStream(ns, "u1")
		u2 := waitForStream(ns, "u2")

		ufo := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "flagops.dev/v1alpha1",
			"kind":       "UserFlagOverride",
			"metadata":   map[string]any{"name": "u1-pilot"},
			"spec": map[string]any{
				"userId": "u1",
				"reason": "end-to-end test",
				"flags":  []any{map[string]any{"key": key, "value": int64(42)}},
			},
		}}
		_, err := dyn.Resource(userFlagOverrides).Namespace(ns).Create(ctx, ufo, metav1.CreateOptions{FieldManager: "e2e"})
		Expect(err).NotTo(HaveOccurred())
		got, _ := nextChange(u1, key)
		Expect(got).To(Equal("42"))

		// A flag change after the override: u2's next event is that change, so the override
		// never reached u2; u1 keeps its override value and gets nothing.
		setValue(ns, key, 7)
		got, _ = nextChange(u2, key)
		Expect(got).To(Equal("7"))
		Expect(u1).NotTo(Receive())
	})
})

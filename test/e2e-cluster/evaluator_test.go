//go:build e2e

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

package e2ecluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// httpClient bounds each request from this host, so that a stuck connection fails an
// attempt of an Eventually instead of the whole spec.
var httpClient = &http.Client{Timeout: 20 * time.Second}

// evaluation is one OFREP request the specs make, and the value it must return.
type evaluation struct {
	key  string
	ctx  map[string]string
	want string // the JSON of the value
}

// sampleEvaluations are values that config/samples must produce.
var sampleEvaluations = []evaluation{
	{key: "beta.new_dashboard", ctx: map[string]string{"userId": "user-42"}, want: "true"},                                                                          // user override
	{key: "beta.new_dashboard", ctx: map[string]string{"userId": "user-7"}, want: "false"},                                                                          // flag off, no override
	{key: "billing.enabled", ctx: map[string]string{"userId": "staff-ada"}, want: "true"},                                                                           // allow-list
	{key: "billing.enabled", ctx: map[string]string{"userId": "user-7"}, want: "false"},                                                                             // off
	{key: "billing.enabled", ctx: map[string]string{"userId": "user-42"}, want: "true"},                                                                             // user override
	{key: "checkout.layout", ctx: map[string]string{"userId": "user-7", "role": "user", "deviceId": "tablet-7f3a", "deviceClass": "tablet"}, want: `"single-page"`}, // device override (the flag allows the roles user and admin)
}

func evaluatorIP() string {
	GinkgoHelper()
	var svc corev1.Service
	Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: "flagops-evaluator"}, &svc)).To(Succeed())
	return svc.Spec.ClusterIP
}

// ofrepValue parses an OFREP evaluation answer line "STATUS BODY" and returns its value's JSON.
func ofrepValue(g Gomega, status int, body []byte) string {
	g.Expect(status).To(Equal(http.StatusOK), "body %s", body)
	var r struct {
		Value json.RawMessage `json:"value"`
	}
	g.Expect(json.Unmarshal(body, &r)).To(Succeed(), "body %s", body)
	return string(r.Value)
}

func evalURL(ip, ns, key string) string {
	return fmt.Sprintf("http://%s:8080/namespaces/%s/ofrep/v1/evaluate/flags/%s", ip, ns, key)
}

// evaluate asks the evaluator at ip for key in ns over OFREP, as a device whose token
// carries ctxClaims, and returns the value's JSON.
func evaluate(g Gomega, ip, ns, key string, ctxClaims map[string]string) string {
	req, err := http.NewRequest(http.MethodPost, evalURL(ip, ns, key), strings.NewReader(`{"context":{}}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token(ns, ctxClaims))
	resp, err := httpClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return ofrepValue(g, resp.StatusCode, body)
}

// evaluatorSpecs run in the suite's ordered container, after the install.
func evaluatorSpecs() {
	var ns, ip string

	It("serves the samples' values to this host through the Service", func() {
		ns = newNamespace("e2e-samples-")
		// One apply: the kustomization keeps the flags before the overrides that name them.
		run("kubectl", "apply", "--server-side", "--field-manager=e2e", "-n", ns, "-k", "config/samples")
		ip = evaluatorIP()
		// The evaluator's replicas follow the cluster; wait until the Service answers with the
		// samples' values (from this host, through kube-proxy).
		for _, e := range sampleEvaluations {
			Eventually(func(g Gomega) {
				g.Expect(evaluate(g, ip, ns, e.key, e.ctx)).To(MatchJSON(e.want), "%s for %v", e.key, e.ctx)
			}).Should(Succeed())
		}
	})

	It("answers a client pod through the Service with the samples' values", func() {
		var args []string
		for _, e := range sampleEvaluations {
			args = append(args, evalURL(ip, ns, e.key), token(ns, e.ctx), `{"context":{}}`)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "client",
				Labels: map[string]string{"flagops.dev/evaluator-client": "true"}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "client", Image: clientImage, ImagePullPolicy: corev1.PullNever, Args: args,
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				}},
			},
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		Eventually(func(g Gomega) corev1.PodPhase {
			var p corev1.Pod
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "client"}, &p)).To(Succeed())
			return p.Status.Phase
		}).Should(Equal(corev1.PodSucceeded))
		raw, err := kube.CoreV1().Pods(ns).GetLogs("client", &corev1.PodLogOptions{}).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		Expect(lines).To(HaveLen(len(sampleEvaluations)), "client output:\n%s", raw)
		for i, e := range sampleEvaluations {
			var status int
			code, body, ok := strings.Cut(lines[i], " ")
			Expect(ok).To(BeTrue(), "line %q", lines[i])
			_, err := fmt.Sscan(code, &status)
			Expect(err).NotTo(HaveOccurred())
			Expect(ofrepValue(Default, status, []byte(body))).To(MatchJSON(e.want), "%s for %v", e.key, e.ctx)
		}
	})

	It("streams a change to a user through the Service", func() {
		f := boolFlag(ns, "e2e.latency")
		f.Spec.Type = "Number"
		f.Spec.Enabled = true
		f.Spec.Value = jsonValue(0)
		Expect(k8s.Create(ctx, f)).To(Succeed())

		reqCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, fmt.Sprintf("http://%s:8080/namespaces/%s/v1/stream", ip, ns), nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token(ns, map[string]string{"userId": "user-42"}))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		values := make(chan streamValue, 64)
		go readStream(resp.Body, "e2e.latency", values)

		// The snapshot, or the change that the create made, holds value 0 first.
		Eventually(values).Should(Receive(HaveField("Value", MatchJSON("0"))))
		var took []time.Duration
		for i := 1; i <= 5; i++ {
			start := time.Now()
			patch := fmt.Sprintf(`{"spec":{"value":%d}}`, i)
			Expect(k8s.Patch(ctx, f, rawMerge(patch))).To(Succeed())
			var v streamValue
			Eventually(values).Should(Receive(&v))
			Expect(v.Value).To(MatchJSON(fmt.Sprint(i)))
			took = append(took, v.At.Sub(start))
		}
		slices.Sort(took)
		AddReportEntry("stream: write (API server) to event on the host, through the Service; 5 changes, sorted",
			fmt.Sprint(took))
	})
}

// streamValue is the value of one flag in an event of a stream, and when it arrived.
type streamValue struct {
	Value json.RawMessage
	At    time.Time
}

// readStream reads SSE events from body and sends the value of key whenever an event (the
// snapshot or a change) carries it. It returns when the body ends.
func readStream(body io.Reader, key string, out chan<- streamValue) {
	defer GinkgoRecover()
	r := bufio.NewReader(body)
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			var ev struct {
				Flags   map[string]struct{ Value json.RawMessage } `json:"flags"`
				Changed map[string]struct{ Value json.RawMessage } `json:"changed"`
			}
			if data.Len() > 0 && json.Unmarshal([]byte(data.String()), &ev) == nil {
				if v, ok := ev.Changed[key]; ok {
					out <- streamValue{Value: v.Value, At: time.Now()}
				} else if v, ok := ev.Flags[key]; ok {
					out <- streamValue{Value: v.Value, At: time.Now()}
				}
			}
			data.Reset()
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: "))
		}
	}
}

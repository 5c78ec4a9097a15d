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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// ofrepResult is the part of an OFREP evaluation response the key tests read.
type ofrepResult struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Reason    string          `json:"reason"`
	ErrorCode string          `json:"errorCode"`
}

// post sends body to the evaluator and returns the status and the response body.
func post(path, body string) (int, []byte) {
	GinkgoHelper()
	resp, err := http.Post(evaluatorURL+path, "application/json", strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, raw
}

// ofrepEvaluate evaluates one flag for a user with OFREP's single-flag route.
func ofrepEvaluate(ns, key, user string) (int, ofrepResult) {
	GinkgoHelper()
	code, raw := post(fmt.Sprintf("/namespaces/%s/ofrep/v1/evaluate/flags/%s", ns, key),
		fmt.Sprintf(`{"context":{"targetingKey":%q}}`, user))
	var r ofrepResult
	Expect(json.Unmarshal(raw, &r)).To(Succeed(), "body %s", raw)
	return code, r
}

// create creates an object of flagops.dev/v1alpha1 through client-go.
func create(ns string, obj map[string]any) {
	GinkgoHelper()
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("flagops.dev/v1alpha1")
	gvr := featureFlags
	if u.GetKind() == "UserFlagOverride" {
		gvr = userFlagOverrides
	}
	_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldManager: "e2e"})
	Expect(err).NotTo(HaveOccurred())
}

var _ = Describe("Flag keys as applications write them", func() {
	It("serves beta.new_dashboard and newCheckout from their CRs, with an override, over OFREP and both streams", func() {
		ns := newNamespace()
		// Neither key is a valid object name: spec.key carries it.
		create(ns, map[string]any{"kind": "FeatureFlag", "metadata": map[string]any{"name": "beta.new-dashboard"},
			"spec": map[string]any{"key": "beta.new_dashboard", "type": "Boolean", "enabled": false}})
		create(ns, map[string]any{"kind": "FeatureFlag", "metadata": map[string]any{"name": "new-checkout"},
			"spec": map[string]any{"key": "newCheckout", "type": "String", "enabled": true, "value": "v1", "offValue": "off"}})
		create(ns, map[string]any{"kind": "UserFlagOverride", "metadata": map[string]any{"name": "u1-pilot"},
			"spec": map[string]any{"userId": "u1", "reason": "pilot of the new dashboard and checkout", "flags": []any{
				map[string]any{"key": "beta.new_dashboard", "enabled": true},
				map[string]any{"key": "newCheckout", "value": "pilot"},
			}}})

		By("OFREP evaluates each key, with u1's override and without")
		want := []struct {
			key, user, value string
		}{
			{"beta.new_dashboard", "u1", "true"},
			{"beta.new_dashboard", "u2", "false"},
			{"newCheckout", "u1", `"pilot"`},
			{"newCheckout", "u2", `"v1"`},
		}
		for _, w := range want {
			Eventually(func(g Gomega) {
				code, r := ofrepEvaluate(ns, w.key, w.user)
				g.Expect(code).To(Equal(http.StatusOK), "%s for %s: %+v", w.key, w.user, r)
				g.Expect(r.Key).To(Equal(w.key))
				g.Expect(string(r.Value)).To(Equal(w.value), "%s for %s", w.key, w.user)
			}).Should(Succeed())
		}
		code, r := ofrepEvaluate(ns, "beta.new-dashboard", "u1")
		Expect(code).To(Equal(http.StatusNotFound), "the object name is not a key: %+v", r)
		Expect(r.ErrorCode).To(Equal("FLAG_NOT_FOUND"))

		By("OFREP's bulk evaluation lists both keys and advertises its event stream")
		code, raw := post("/namespaces/"+ns+"/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u2"}}`)
		Expect(code).To(Equal(http.StatusOK), "%s", raw)
		var bulk struct {
			Flags        []ofrepResult `json:"flags"`
			EventStreams []struct {
				Type     string `json:"type"`
				Endpoint struct {
					RequestURI string `json:"requestUri"`
				} `json:"endpoint"`
			} `json:"eventStreams"`
		}
		Expect(json.Unmarshal(raw, &bulk)).To(Succeed())
		keys := map[string]string{}
		for _, f := range bulk.Flags {
			keys[f.Key] = string(f.Value)
		}
		Expect(keys).To(Equal(map[string]string{"beta.new_dashboard": "false", "newCheckout": `"v1"`}))
		Expect(bulk.EventStreams).To(HaveLen(1))
		ofrepStream := openStreamURL(evaluatorURL + bulk.EventStreams[0].Endpoint.RequestURI)

		By("a change of the flag reaches the native stream under its key, and the OFREP stream")
		native := waitForStream(ns, "u2")
		_, err := dyn.Resource(featureFlags).Namespace(ns).Patch(ctx, "new-checkout", types.MergePatchType,
			[]byte(`{"spec":{"value":"v2"}}`), metav1.PatchOptions{FieldManager: "e2e"})
		Expect(err).NotTo(HaveOccurred())
		got, _ := nextChange(native, "newCheckout")
		Expect(got).To(Equal(`"v2"`))
		Eventually(ofrepStream).Should(Receive(WithTransform(func(ev sseEvent) string { return ev.Data },
			ContainSubstring("refetchEvaluation"))))

		By("u1's override of beta.new_dashboard is removed: its stream says so under the key")
		u1 := waitForStream(ns, "u1")
		_, err = dyn.Resource(userFlagOverrides).Namespace(ns).Patch(ctx, "u1-pilot", types.MergePatchType,
			[]byte(`{"spec":{"flags":[{"key":"newCheckout","value":"pilot"}]}}`), metav1.PatchOptions{FieldManager: "e2e"})
		Expect(err).NotTo(HaveOccurred())
		got, _ = nextChange(u1, "beta.new_dashboard")
		Expect(got).To(Equal("false"))
	})
})

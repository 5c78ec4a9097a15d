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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// stringFlag is an enabled String flag named name with key key, serving value.
func stringFlag(ns, name, key, value string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FeatureFlagSpec{Key: key, Type: v1.FlagTypeString, Enabled: true, Value: js(value)},
	}
}

var _ = Describe("Flag keys", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	readyOf := func(g Gomega, f *v1.FeatureFlag) metav1.Condition {
		got := &v1.FeatureFlag{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		return condition(got.Status.Conditions, v1.ConditionReady)
	}
	served := func(user string) any {
		return store.Evaluate(ns, evaluator.Context{UserID: user}, "newCheckout").Value
	}

	It("serves a flag under spec.key, and of two flags with one key the older, until it goes", func() {
		first := stringFlag(ns, "new-checkout", "newCheckout", "first")
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		pilot := userOverride(ns, "u1-pilot", "u1", v1.FlagOverrideEntry{Key: "newCheckout", Value: js("pilot")})
		Expect(k8sClient.Create(ctx, pilot)).To(Succeed())
		Eventually(func() any { return served("u2") }).Should(Equal("first"))
		Eventually(func() any { return served("u1") }).Should(Equal("pilot"))
		Expect(store.Evaluate(ns, evaluator.Context{}, "new-checkout").ErrorCode).To(Equal(evaluator.ErrorFlagNotFound),
			"the object name is not a key")
		Eventually(func(g Gomega) {
			g.Expect(readyOf(g, first).Status).To(Equal(metav1.ConditionTrue))
			got := &v1.FeatureFlag{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(first), got)).To(Succeed())
			g.Expect(got.Status.UserOverrides).To(BeEquivalentTo(1))
		}).Should(Succeed())
		// Metrics name the flag by key.
		Eventually(func() float64 { return testutil.ToFloat64(overridesActive.WithLabelValues("user", "newCheckout")) }).Should(Equal(1.0))
		Eventually(func() float64 {
			return testutil.ToFloat64(overridesTotal.WithLabelValues("user", "newCheckout", "created"))
		}).Should(Equal(1.0))
		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "new-checkout") }).Should(ContainElement(audit.ActionFlagCreated))
		Expect(recordOf(auditSink, ns, audit.ActionFlagCreated).Object.Key).To(Equal("newCheckout"))

		// A second flag with the same key got past the webhook (this suite runs none, as in
		// a race between two creates): the older stays served, the other reports why not.
		// Its name sorts after the first's, so it loses even within the same second.
		second := stringFlag(ns, "new-checkout-2", "newCheckout", "second")
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			ready := readyOf(g, second)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(v1.ReasonDuplicateKey))
			g.Expect(ready.Message).To(ContainSubstring(`the key "newCheckout" is also the key of FeatureFlag ` + ns + "/new-checkout"))
		}).Should(Succeed())
		patchSpec(second, func(f *v1.FeatureFlag) { f.Spec.Value = js("second, edited") })
		Eventually(func(g Gomega) {
			g.Expect(readyOf(g, second).Reason).To(Equal(v1.ReasonDuplicateKey))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "new-checkout-2", v1.EventReasonDuplicateKey)).To(HaveLen(1))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(served("u2")).To(Equal("first"))
			g.Expect(readyOf(g, first).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(eventsFor(g, ns, "new-checkout-2", v1.EventReasonDuplicateKey)).To(HaveLen(1))
		}, "2s").Should(Succeed(), "nothing flaps")

		// The served flag goes: the other one takes its place, with the override.
		Expect(k8sClient.Delete(ctx, first)).To(Succeed())
		Eventually(func() any { return served("u2") }).Should(Equal("second, edited"))
		Expect(served("u1")).To(Equal("pilot"))
		Eventually(func(g Gomega) {
			g.Expect(readyOf(g, second).Status).To(Equal(metav1.ConditionTrue))
			got := &v1.FeatureFlag{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(second), got)).To(Succeed())
			g.Expect(got.Status.UserOverrides).To(BeEquivalentTo(1))
		}).Should(Succeed())

		Expect(k8sClient.Delete(ctx, second)).To(Succeed())
		Eventually(func() evaluator.ErrorCode { return store.Evaluate(ns, evaluator.Context{}, "newCheckout").ErrorCode }).
			Should(Equal(evaluator.ErrorFlagNotFound))
	})
})

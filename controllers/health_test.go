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
	"fmt"
	"maps"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/argocdhealth"
)

// gitOpsHealth is how the GitOps tools read an object: kstatus (Flux's health checks, and
// `flux`/`kubectl`-based waits) and the Argo CD health check of its kind in config/argocd.
type gitOpsHealth struct {
	KStatus  kstatus.Status
	KMessage string
	Argo     argocdhealth.Status
	ArgoMsg  string
}

// healthOf reads the object from the API server as unstructured JSON, as the tools do (a
// typed read would drop fields such as observedGeneration: 0), and computes both.
func healthOf(g Gomega, kind Kind, key client.ObjectKey) gitOpsHealth {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind(string(kind)))
	g.Expect(k8sClient.Get(ctx, key, u)).To(Succeed())
	res, err := kstatus.Compute(u)
	g.Expect(err).NotTo(HaveOccurred())
	script, err := argocdhealth.ReadScript(repoRoot, string(kind))
	g.Expect(err).NotTo(HaveOccurred())
	argo, err := argocdhealth.Check(script, u.Object)
	g.Expect(err).NotTo(HaveOccurred())
	return gitOpsHealth{KStatus: res.Status, KMessage: res.Message, Argo: argo.Status, ArgoMsg: argo.Message}
}

// haveHealth matches a gitOpsHealth: kstatus status k and Argo CD status a, and both
// messages containing msg. kstatus says "Resource is Ready" for every Current object that
// it read as such from Ready=True, rather than from the absence of any condition it knows.
func haveHealth(k kstatus.Status, a argocdhealth.Status, msg string) OmegaMatcher {
	kmsg := ContainSubstring(msg)
	if k == kstatus.CurrentStatus {
		kmsg = Equal("Resource is Ready")
	}
	return And(HaveField("KStatus", k), HaveField("Argo", a),
		HaveField("KMessage", kmsg), HaveField("ArgoMsg", ContainSubstring(msg)))
}

// conditionsOf reads the conditions of an object of kind.
func conditionsOf(g Gomega, kind Kind, key client.ObjectKey) []metav1.Condition {
	obj := kind.NewObject()
	g.Expect(k8sClient.Get(ctx, key, obj)).To(Succeed())
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		return o.Status.Conditions
	default:
		return wrapOverride(obj).status.Conditions
	}
}

// newOverride builds an override of kind for subject.
func newOverride(kind Kind, ns, name, subject string, entries ...v1.FlagOverrideEntry) client.Object {
	if kind == KindDeviceFlagOverride {
		return deviceOverride(ns, name, subject, entries...)
	}
	return userOverride(ns, name, subject, entries...)
}

var _ = Describe("GitOps health", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	noAbnormalConditions := func(g Gomega, kind Kind, key client.ObjectKey) {
		conds := conditionsOf(g, kind, key)
		g.Expect(conds).NotTo(ContainElement(HaveField("Type", v1.ConditionStalled)))
		g.Expect(conds).NotTo(ContainElement(HaveField("Type", v1.ConditionReconciling)))
	}

	Describe("of a FeatureFlag", func() {
		It("is Current and Healthy when it is served", func() {
			f := boolFlag(ns, "beta.dash", true)
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			key := client.ObjectKeyFromObject(f)
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
				g.Expect(healthOf(g, KindFeatureFlag, key).ArgoMsg).To(Equal("serving generation 1"))
				noAbnormalConditions(g, KindFeatureFlag, key)
			}).Should(Succeed())
		})

		It("is Failed and Degraded while its spec does not compile, and Current again once fixed", func() {
			f := &v1.FeatureFlag{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing.limits"},
				Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true,
					Schema: js(map[string]any{"type": "object", "required": []string{"max"}}), Value: js(map[string]any{"min": 1})},
			}
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			key := client.ObjectKeyFromObject(f)
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.FailedStatus, argocdhealth.Degraded, "generation 1 is not served"))
				stalled := condition(conditionsOf(g, KindFeatureFlag, key), v1.ConditionStalled)
				g.Expect(stalled.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(stalled.Reason).To(Equal(v1.ReasonInvalidSpec))
				g.Expect(stalled.ObservedGeneration).To(BeEquivalentTo(1))
			}).Should(Succeed())

			patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(map[string]any{"max": 1}) })
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
				noAbnormalConditions(g, KindFeatureFlag, key)
			}).Should(Succeed())

			// A later generation that does not compile: Failed, although the last valid one is
			// still served.
			patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(map[string]any{"min": 2}) })
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.FailedStatus, argocdhealth.Degraded, "keeps serving generation 2"))
			}).Should(Succeed())
			// One warning per transition into an invalid spec, however often the status is read.
			Eventually(func(g Gomega) {
				g.Expect(eventsFor(g, ns, "billing.limits", v1.EventReasonInvalidSpec)).To(HaveLen(2))
			}).Should(Succeed())
			Consistently(func(g Gomega) {
				g.Expect(eventsFor(g, ns, "billing.limits", v1.EventReasonInvalidSpec)).To(HaveLen(2))
			}).Should(Succeed())
		})

		It("is Failed and Degraded when an older flag has its key, and Current once that flag is gone", func() {
			first := stringFlag(ns, "checkout-a", "newCheckout", "first")
			Expect(k8sClient.Create(ctx, first)).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, client.ObjectKeyFromObject(first)).KStatus).To(Equal(kstatus.CurrentStatus))
			}).Should(Succeed())
			second := stringFlag(ns, "checkout-b", "newCheckout", "second")
			Expect(k8sClient.Create(ctx, second)).To(Succeed())
			key := client.ObjectKeyFromObject(second)
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.FailedStatus, argocdhealth.Degraded, "which is older and served instead"))
				g.Expect(condition(conditionsOf(g, KindFeatureFlag, key), v1.ConditionStalled).Reason).To(Equal(v1.ReasonDuplicateKey))
			}).Should(Succeed())
			Expect(healthOf(Default, KindFeatureFlag, client.ObjectKeyFromObject(first)).KStatus).To(Equal(kstatus.CurrentStatus))

			Expect(k8sClient.Delete(ctx, first)).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
				noAbnormalConditions(g, KindFeatureFlag, key)
			}).Should(Succeed())
		})

		It("is InProgress and Progressing while the manager has not observed its generation", func() {
			iso := "health-generation"
			m := startManager(ctx, managerConfig{isolation: iso})
			f := isolate(boolFlag(ns, "beta.dash", false), iso)
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			key := client.ObjectKeyFromObject(f)
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
			}).Should(Succeed())

			m.stop()
			patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Enabled = true })
			h := healthOf(Default, KindFeatureFlag, key)
			Expect(h.KStatus).To(Equal(kstatus.InProgressStatus))
			Expect(h.KMessage).To(Equal("FeatureFlag generation is 2, but latest observed generation is 1"))
			Expect(h.Argo).To(Equal(argocdhealth.Progressing))
			Expect(h.ArgoMsg).To(Equal("Waiting for the flagops manager to observe generation 2"))

			startManager(ctx, managerConfig{isolation: iso})
			Eventually(func(g Gomega) {
				g.Expect(healthOf(g, KindFeatureFlag, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, "serving generation 2"))
			}).Should(Succeed())
		})
	})

	It("of an AuditCheckpoint is Current: it has no status and nothing waits on it", func() {
		f := boolFlag(ns, "beta.dash", false)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func(g Gomega) {
			ck := checkpointOf(g, f)
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(v1.GroupVersion.WithKind("AuditCheckpoint"))
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&ck), u)).To(Succeed())
			g.Expect(u.Object).NotTo(HaveKey("status"))
			res, err := kstatus.Compute(u)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(kstatus.CurrentStatus))
		}).Should(Succeed())
	})

	It("checks of config/argocd merge into an existing argocd-cm by server-side apply", func() {
		existing := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "argocd-cm"},
			Data: map[string]string{"url": "https://argocd.example.com", "resource.customizations.health.example.com_Widget": "return {status = \"Healthy\"}"}}
		Expect(k8sClient.Create(ctx, existing)).To(Succeed())

		cm, err := argocdhealth.ConfigMap(repoRoot)
		Expect(err).NotTo(HaveOccurred())
		cm.Namespace = ns
		cm.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: obj}),
			client.FieldOwner("flagops-health"))).To(Succeed())

		got := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(existing), got)).To(Succeed())
		want := maps.Clone(existing.Data)
		maps.Copy(want, cm.Data)
		Expect(got.Data).To(Equal(want))
		Expect(got.Data).To(HaveLen(2 + 3))
	})

	DescribeTable("of an object that no manager has observed: InProgress and Progressing",
		func(kind Kind) {
			// No manager watches objects with this isolation label.
			obj := isolate(newOverride(kind, ns, "unwatched", "subject-1", entry("beta.dash", true)), "health-unwatched")
			if kind == KindFeatureFlag {
				obj = isolate(boolFlag(ns, "unwatched", false), "health-unwatched")
			}
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			h := healthOf(Default, kind, client.ObjectKeyFromObject(obj))
			Expect(h.KStatus).To(Equal(kstatus.InProgressStatus))
			Expect(h.KMessage).To(Equal(fmt.Sprintf("%s generation is 1, but latest observed generation is 0", kind)))
			Expect(h.Argo).To(Equal(argocdhealth.Progressing))
			Expect(h.ArgoMsg).To(Equal("Waiting for the flagops manager to observe generation 1"))
		},
		Entry("FeatureFlag", KindFeatureFlag),
		Entry("UserFlagOverride", KindUserFlagOverride),
		Entry("DeviceFlagOverride", KindDeviceFlagOverride),
	)

	for _, kind := range []Kind{KindUserFlagOverride, KindDeviceFlagOverride} {
		Describe("of a "+string(kind), func() {
			It("is Current and Healthy when every entry is served", func() {
				Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
				o := newOverride(kind, ns, "pilot", "subject-1", entry("beta.dash", true))
				Expect(k8sClient.Create(ctx, o)).To(Succeed())
				key := client.ObjectKeyFromObject(o)
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
					g.Expect(healthOf(g, kind, key).ArgoMsg).To(Equal("1 of 1 flags applied"))
					noAbnormalConditions(g, kind, key)
				}).Should(Succeed())
			})

			It("is InProgress and Progressing, with Reconciling=True, while a flag it names does not exist", func() {
				o := newOverride(kind, ns, "early", "subject-1", entry("beta.later", true))
				Expect(k8sClient.Create(ctx, o)).To(Succeed())
				key := client.ObjectKeyFromObject(o)
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.InProgressStatus, argocdhealth.Progressing, "beta.later"))
					rec := condition(conditionsOf(g, kind, key), v1.ConditionReconciling)
					g.Expect(rec.Status).To(Equal(metav1.ConditionTrue))
					g.Expect(rec.Reason).To(Equal(v1.ReasonUnknownFlag))
					g.Expect(conditionsOf(g, kind, key)).NotTo(ContainElement(HaveField("Type", v1.ConditionStalled)))
				}).Should(Succeed())

				Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.later", false))).To(Succeed())
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
					noAbnormalConditions(g, kind, key)
				}).Should(Succeed())
			})

			It("is Failed and Degraded while a value fails its flag's schema", func() {
				Expect(k8sClient.Create(ctx, &v1.FeatureFlag{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing.limits"},
					Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true,
						Schema: js(map[string]any{"type": "object", "required": []string{"max"}}), Value: js(map[string]any{"max": 1})},
				})).To(Succeed())
				o := newOverride(kind, ns, "bad-value", "subject-1", v1.FlagOverrideEntry{Key: "billing.limits", Value: js(map[string]any{"min": 3})})
				Expect(k8sClient.Create(ctx, o)).To(Succeed())
				key := client.ObjectKeyFromObject(o)
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.FailedStatus, argocdhealth.Degraded, "billing.limits"))
					stalled := condition(conditionsOf(g, kind, key), v1.ConditionStalled)
					g.Expect(stalled.Reason).To(Equal(v1.ReasonInvalidValue))
					g.Expect(conditionsOf(g, kind, key)).NotTo(ContainElement(HaveField("Type", v1.ConditionReconciling)))
				}).Should(Succeed())

				patchSpec(o, func(o client.Object) {
					wrapOverride(o).spec.Flags = []v1.FlagOverrideEntry{{Key: "billing.limits", Value: js(map[string]any{"max": 3})}}
				})
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
					noAbnormalConditions(g, kind, key)
				}).Should(Succeed())
			})

			It("is Failed and Degraded when it loses a conflict, while the winner stays Current", func() {
				Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
				older := newOverride(kind, ns, "a-older", "subject-7", entry("beta.dash", true))
				Expect(k8sClient.Create(ctx, older)).To(Succeed())
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, client.ObjectKeyFromObject(older)).KStatus).To(Equal(kstatus.CurrentStatus))
				}).Should(Succeed())
				newer := newOverride(kind, ns, "b-newer", "subject-7", entry("beta.dash", false))
				Expect(k8sClient.Create(ctx, newer)).To(Succeed())
				key := client.ObjectKeyFromObject(newer)
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.FailedStatus, argocdhealth.Degraded, "beta.dash is served from "+ns+"/a-older"))
					conds := conditionsOf(g, kind, key)
					g.Expect(condition(conds, v1.ConditionStalled).Reason).To(Equal(v1.ReasonOverrideConflict))
					g.Expect(condition(conds, v1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
				}).Should(Succeed())
				Expect(healthOf(Default, kind, client.ObjectKeyFromObject(older))).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))

				Expect(k8sClient.Delete(ctx, older)).To(Succeed())
				Eventually(func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
					noAbnormalConditions(g, kind, key)
				}).Should(Succeed())
			})

			It("is Current and Healthy when it has expired and is kept", func() {
				Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
				o := newOverride(kind, ns, "kept", "subject-1", entry("beta.dash", true))
				spec := wrapOverride(o).spec
				spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Minute).Truncate(time.Second)}
				spec.OnExpiry = v1.OnExpiryRetain
				Expect(k8sClient.Create(ctx, o)).To(Succeed())
				key := client.ObjectKeyFromObject(o)
				kept := func(g Gomega) {
					g.Expect(healthOf(g, kind, key)).To(haveHealth(kstatus.CurrentStatus, argocdhealth.Healthy, ""))
					g.Expect(healthOf(g, kind, key).ArgoMsg).To(ContainSubstring("is kept because spec.onExpiry is Retain"))
					conds := conditionsOf(g, kind, key)
					g.Expect(condition(conds, v1.ConditionExpired).Status).To(Equal(metav1.ConditionTrue))
					ready := condition(conds, v1.ConditionReady)
					g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
					g.Expect(ready.Reason).To(Equal(v1.ReasonExpired))
					noAbnormalConditions(g, kind, key)
				}
				Eventually(kept).Should(Succeed())
				Consistently(kept).Should(Succeed())
			})
		})
	}
})

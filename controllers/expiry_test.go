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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// The keys are spelled out here, not taken from the constants, so that the tests pin the
// markers that the GitOps tools really write.
var _ = Describe("Override expiry with GitOps markers", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	user := evaluator.Context{UserID: "user-1"}

	// expiredOverride creates an override that expired a minute ago, marked by mutate.
	expiredOverride := func(mutate func(*v1.UserFlagOverride)) *v1.UserFlagOverride {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		o := userOverride(ns, "marked", "user-1", entry("beta.dash", true))
		o.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Minute).Truncate(time.Second)}
		mutate(o)
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		return o
	}

	DescribeTable("keeps an expired override that carries a marker, and never serves it",
		func(mutate func(*v1.UserFlagOverride), wantMessage string) {
			o := expiredOverride(mutate)
			// kept holds once the expiry is reported, recorded and announced. The event is
			// sent by the recorder asynchronously, so it is awaited like the rest before the
			// state is required to stay.
			kept := func(g Gomega) {
				got := &v1.UserFlagOverride{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
				g.Expect(got.DeletionTimestamp).To(BeNil())
				g.Expect(got.UID).To(Equal(o.UID))
				expired := condition(got.Status.Conditions, v1.ConditionExpired)
				g.Expect(expired.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(expired.Message).To(ContainSubstring(wantMessage))
				// Applied as written (by no longer being served): Ready, and neither Stalled nor
				// Reconciling, so that GitOps tools read it as Current.
				ready := condition(got.Status.Conditions, v1.ConditionReady)
				g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(ready.Reason).To(Equal("Expired"))
				g.Expect(ready.Message).To(ContainSubstring(wantMessage))
				g.Expect(got.Status.Conditions).NotTo(ContainElement(HaveField("Type", "Stalled")))
				g.Expect(got.Status.Conditions).NotTo(ContainElement(HaveField("Type", "Reconciling")))
				g.Expect(actionsOf(auditSink, ns, "marked")).To(Equal([]audit.Action{
					audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
				}))
				evs := eventsFor(g, ns, "marked", v1.EventReasonOverrideExpired)
				g.Expect(evs).To(HaveLen(1))
				g.Expect(evs[0].Note).To(ContainSubstring("is kept because"))
				g.Expect(evs[0].Note).To(ContainSubstring(wantMessage))
				// In the store, but not served.
				st, ok := store.Snapshot().OverrideStatus(evaluator.SubjectUser, ns, "marked")
				g.Expect(ok).To(BeTrue())
				g.Expect(st.Expired).To(BeTrue())
				g.Expect(st.Applied).To(BeEmpty())
				g.Expect(store.Evaluate(ns, user, "beta.dash").Value).To(Equal(false))
			}
			Eventually(kept).Should(Succeed())
			Consistently(kept).Should(Succeed())
		},
		Entry("Argo CD annotation tracking", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"argocd.argoproj.io/tracking-id": "flags:flagops.dev/UserFlagOverride:ns/marked"}
		}, "argocd.argoproj.io/tracking-id"),
		Entry("Argo CD label tracking", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"app.kubernetes.io/instance": "flags"}
		}, "app.kubernetes.io/instance"),
		Entry("Argo CD label tracking, recommended custom key", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"argocd.argoproj.io/instance": "flags"}
		}, "argocd.argoproj.io/instance"),
		Entry("Flux Kustomization label", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"kustomize.toolkit.fluxcd.io/name": "flags"}
		}, "kustomize.toolkit.fluxcd.io/name"),
		Entry("Flux Kustomization key as an annotation", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"kustomize.toolkit.fluxcd.io/name": "flags"}
		}, "kustomize.toolkit.fluxcd.io/name"),
		Entry("Flux HelmRelease label", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"helm.toolkit.fluxcd.io/name": "flags"}
		}, "helm.toolkit.fluxcd.io/name"),
		Entry("Helm release annotation", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"meta.helm.sh/release-name": "flags"}
		}, "meta.helm.sh/release-name"),
		Entry("Helm managed-by label", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
		}, "app.kubernetes.io/managed-by"),
		Entry("spec.onExpiry Retain", func(o *v1.UserFlagOverride) {
			o.Spec.OnExpiry = v1.OnExpiryRetain
		}, "spec.onExpiry is Retain"),
		Entry("flagops.dev/on-expiry: Retain", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"flagops.dev/on-expiry": "Retain"}
		}, "flagops.dev/on-expiry is Retain"),
		Entry("flagops.dev/on-expiry with an invalid value: the safe choice", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"flagops.dev/on-expiry": "Keep"}
		}, `flagops.dev/on-expiry has the invalid value "Keep"`),
	)

	DescribeTable("deletes an expired override that nothing retains",
		func(mutate func(*v1.UserFlagOverride)) {
			o := expiredOverride(mutate)
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), &v1.UserFlagOverride{}))
			}).Should(BeTrue())
			Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "marked") }).Should(Equal([]audit.Action{
				audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
			}))
			Eventually(func() bool {
				_, ok := store.Snapshot().OverrideStatus(evaluator.SubjectUser, ns, "marked")
				return ok
			}).Should(BeFalse())
			// The flag reaches the store through another controller than the override.
			Eventually(func() any { return store.Evaluate(ns, user, "beta.dash").Value }).Should(Equal(false))
		},
		Entry("no marker", func(*v1.UserFlagOverride) {}),
		Entry("a managed-by label that is not Helm", func(o *v1.UserFlagOverride) {
			o.Labels = map[string]string{"app.kubernetes.io/managed-by": "kustomize"}
		}),
		Entry("flagops.dev/on-expiry: Delete beats a GitOps marker", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"flagops.dev/on-expiry": "Delete", "argocd.argoproj.io/tracking-id": "flags:x"}
		}),
		Entry("flagops.dev/on-expiry: Delete beats spec.onExpiry Retain", func(o *v1.UserFlagOverride) {
			o.Annotations = map[string]string{"flagops.dev/on-expiry": "Delete"}
			o.Spec.OnExpiry = v1.OnExpiryRetain
		}),
	)

	It("deletes a retained expired override once flagops.dev/on-expiry: Delete is added", func() {
		o := expiredOverride(func(o *v1.UserFlagOverride) { o.Labels = map[string]string{"app.kubernetes.io/instance": "flags"} })
		Eventually(func(g Gomega) {
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			g.Expect(condition(got.Status.Conditions, v1.ConditionExpired).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		patchSpec(o, func(o *v1.UserFlagOverride) { o.Annotations = map[string]string{"flagops.dev/on-expiry": "Delete"} })
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), &v1.UserFlagOverride{}))
		}).Should(BeTrue())
		// The expiry was recorded once; the deletion that carries it out is not a second change.
		Consistently(func() []audit.Action { return actionsOf(auditSink, ns, "marked") }).Should(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
		}))
	})

	It("serves a kept override again once its expiry moves into the future, and says in advance what expiry will do", func() {
		o := expiredOverride(func(o *v1.UserFlagOverride) { o.Annotations = map[string]string{"flagops.dev/on-expiry": "Keep"} })
		Eventually(func(g Gomega) {
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			g.Expect(condition(got.Status.Conditions, v1.ConditionExpired).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		patchSpec(o, func(o *v1.UserFlagOverride) { o.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(time.Hour)} })
		Eventually(func(g Gomega) {
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			ready := condition(got.Status.Conditions, v1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(v1.ReasonReconciled))
			expired := condition(got.Status.Conditions, v1.ConditionExpired)
			g.Expect(expired.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(expired.Message).To(ContainSubstring(`will then be kept because the annotation flagops.dev/on-expiry has the invalid value "Keep"`))
		}).Should(Succeed())
		Eventually(func() any { return store.Evaluate(ns, user, "beta.dash").Value }).Should(Equal(true))
	})

	It("causes no delete loop when a GitOps tool re-applies or re-creates an expired override", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		o := userOverride(ns, "from-git", "user-1", entry("beta.dash", true))
		o.Labels = map[string]string{"app.kubernetes.io/instance": "flags"}
		// Far enough ahead that the override is served before it expires, however slow the
		// create and the first reconcile.
		o.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(5 * time.Second).Truncate(time.Second)}
		manifest := gitManifest(o)
		key := client.ObjectKeyFromObject(o)

		// gitOpsSync is one sync of the GitOps tool: it applies the manifest from git, which
		// re-creates the object when it is gone and changes nothing when it is there.
		gitOpsSync := func(g Gomega) types.UID {
			g.Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(manifest.DeepCopy()),
				client.FieldOwner("argocd-controller"), client.ForceOwnership)).To(Succeed())
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			return got.UID
		}
		first := gitOpsSync(Default)
		Eventually(func() any { return store.Evaluate(ns, user, "beta.dash").Value }).Should(Equal(true))

		retained := func(uid types.UID) func(g Gomega) {
			return func(g Gomega) {
				g.Expect(gitOpsSync(g)).To(Equal(uid), "the object was deleted and re-created")
				got := &v1.UserFlagOverride{}
				g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
				g.Expect(got.DeletionTimestamp).To(BeNil())
				g.Expect(condition(got.Status.Conditions, v1.ConditionExpired).Status).To(Equal(metav1.ConditionTrue))
				g.Expect(store.Evaluate(ns, user, "beta.dash").Value).To(Equal(false))
			}
		}
		Eventually(retained(first)).Should(Succeed())
		Consistently(retained(first)).WithTimeout(3 * time.Second).Should(Succeed())
		Expect(actionsOf(auditSink, ns, "from-git")).To(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
		}))

		// Someone deletes it; the GitOps tool re-creates it, already expired.
		Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, key, &v1.UserFlagOverride{})) }).Should(BeTrue())
		second := gitOpsSync(Default)
		Expect(second).NotTo(Equal(first))
		Eventually(retained(second)).Should(Succeed())
		Consistently(retained(second)).WithTimeout(3 * time.Second).Should(Succeed())
		Expect(actionsOf(auditSink, ns, "from-git")).To(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired, audit.ActionUserOverrideDeleted,
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
		}))
	})
})

// gitManifest is obj as a GitOps tool applies it from git: no status, no server fields.
func gitManifest(obj client.Object) *unstructured.Unstructured {
	GinkgoHelper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: m}
	gvk, err := k8sClient.GroupVersionKindFor(obj)
	Expect(err).NotTo(HaveOccurred())
	u.SetGroupVersionKind(gvk)
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

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
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
)

// signedCreate stamps obj as the changed-by webhook would for user's create: it learns the
// spec the API server will store (defaults applied) from a dry run, and signs it.
func signedCreate(kind Kind, obj client.Object, user string) {
	GinkgoHelper()
	signedConsoleCreate(kind, obj, user, nil)
}

// signedConsoleCreate is signedCreate for a create made through the console's request req,
// which it writes into the request annotation.
func signedConsoleCreate(kind Kind, obj client.Object, user string, req *audit.Request) {
	GinkgoHelper()
	dry := obj.DeepCopyObject().(client.Object)
	Expect(k8sClient.Create(ctx, dry, client.DryRunAll)).To(Succeed())
	hash, err := SpecHash(dry)
	Expect(err).NotTo(HaveOccurred())
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1.AnnotationChangedBy] = user
	ann[v1.AnnotationChangedByStamp] = testStampKeys.Sign(stamp.ForWrite(string(kind), obj.GetNamespace(), obj.GetName(), "", 1, hash, user).
		WithRequest(req))
	if req != nil {
		ann[v1.AnnotationChangedByRequest] = RequestAnnotation(req)
	}
	obj.SetAnnotations(ann)
}

// unverifiedCount reads flagops_audit_unverified_changes_total for kind.
func unverifiedCount(kind Kind) float64 {
	return testutil.ToFloat64(unverifiedChanges.WithLabelValues(string(kind)))
}

var _ = Describe("Audit actors (webhooks unreachable)", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("marks a forged changed-by unverified, with the field manager as the actor, a metric and a Warning event", func() {
		before := unverifiedCount(KindFeatureFlag)
		f := boolFlag(ns, "beta.forged", true)
		f.Annotations = map[string]string{v1.AnnotationChangedBy: "someone-else"}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())

		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagCreated))
		rec := recordOf(auditSink, ns, audit.ActionFlagCreated)
		Expect(rec.Actor).To(Equal(audit.Actor{Username: testActor, Claimed: "someone-else", Verified: false}))
		// The sink counts a record just after writing it.
		Eventually(func() float64 { return unverifiedCount(KindFeatureFlag) }).Should(BeNumerically(">=", before+1))
		Eventually(func(g Gomega) {
			evs := eventsFor(g, ns, "beta.forged", v1.EventReasonUnverifiedChange)
			g.Expect(evs).To(HaveLen(1))
			g.Expect(evs[0].Type).To(Equal("Warning"))
			g.Expect(evs[0].Note).To(ContainSubstring(`"someone-else"`))
		}).Should(Succeed())
	})

	It("marks a forged deleted-by unverified, with a metric and a Warning event", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", true))).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", entry("beta.dash", true))
		signedCreate(KindUserFlagOverride, o, "alice")
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "pilot") }).Should(ContainElement(audit.ActionUserOverrideCreated))
		Expect(recordOf(auditSink, ns, audit.ActionUserOverrideCreated).Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
			g.Expect(o.Finalizers).To(ContainElement(v1.FinalizerAudit))
		}).Should(Succeed())

		before := unverifiedCount(KindUserFlagOverride)
		base := o.DeepCopy()
		o.Annotations[v1.AnnotationDeletedBy] = "someone-else"
		Expect(k8sClient.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(k8sClient.Delete(ctx, o)).To(Succeed())

		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "pilot") }).Should(ContainElement(audit.ActionUserOverrideDeleted))
		rec := recordOf(auditSink, ns, audit.ActionUserOverrideDeleted)
		Expect(rec.Actor).To(Equal(audit.Actor{Username: testActor, Claimed: "someone-else", Verified: false}))
		// The sink counts a record just after writing it.
		Eventually(func() float64 { return unverifiedCount(KindUserFlagOverride) }).Should(BeNumerically(">=", before+1))
		Eventually(func(g Gomega) {
			evs := eventsFor(g, ns, "pilot", v1.EventReasonUnverifiedChange)
			g.Expect(evs).To(HaveLen(1), "the verified create has no event; the forged delete has one")
			g.Expect(evs[0].Note).To(ContainSubstring(string(audit.ActionUserOverrideDeleted)))
		}).Should(Succeed())
	})

	It("trusts a valid stamp, and not the same stamp left behind by a later spec change", func() {
		f := boolFlag(ns, "beta.stamped", true)
		signedCreate(KindFeatureFlag, f, "alice")
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagCreated))
		Expect(recordOf(auditSink, ns, audit.ActionFlagCreated).Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}))

		// The webhooks are down: the spec changes and the annotations stay as they were.
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), f)).To(Succeed())
			base := f.DeepCopy()
			f.Spec.Enabled = false
			g.Expect(k8sClient.Patch(ctx, f, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))).To(Succeed())
		}).Should(Succeed())
		Expect(f.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedByStamp, Not(BeEmpty())))

		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagUpdated))
		rec := recordOf(auditSink, ns, audit.ActionFlagUpdated)
		Expect(rec.Actor).To(Equal(audit.Actor{Username: testActor, Claimed: "alice", Verified: false}))
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "beta.stamped", v1.EventReasonUnverifiedChange)).To(HaveLen(1))
		}).Should(Succeed())
	})

	It("records the console's request its stamp covers, and none written or changed by hand", func() {
		console := &audit.Request{Route: "POST /flags", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0"}
		// created creates a flag stamped for alice's create through signed (nil: not through
		// the console), with the request annotation then set to written, and returns its record.
		created := func(signed *audit.Request, written string) audit.Record {
			GinkgoHelper()
			ns := newNamespace()
			f := boolFlag(ns, "beta.console", true)
			signedConsoleCreate(KindFeatureFlag, f, "alice", signed)
			f.Annotations[v1.AnnotationChangedByRequest] = written
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagCreated))
			return recordOf(auditSink, ns, audit.ActionFlagCreated)
		}
		rec := created(console, RequestAnnotation(console))
		Expect(rec.Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}))
		Expect(rec.Request).To(Equal(console))

		unverified := audit.Actor{Username: testActor, Claimed: "alice", Verified: false}
		By("a request written next to the valid stamp of a write without one")
		rec = created(nil, RequestAnnotation(console))
		Expect(rec.Actor).To(Equal(unverified))
		Expect(rec.Request).To(BeNil())
		By("the request of a valid stamp changed")
		rec = created(console, `{"route":"POST /flags","sourceIP":"198.51.100.1","userAgent":"Mozilla/5.0"}`)
		Expect(rec.Actor).To(Equal(unverified))
		Expect(rec.Request).To(BeNil())
	})
})

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

package webhook

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

var _ = Describe("The changed-by stamp", func() {
	DescribeTable("names the creator of every kind, and adds the audit finalizer at create",
		func(build func(ns string) client.Object) {
			ns := newNamespace()
			Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.target"))).To(Succeed())
			obj := build(ns)
			Expect(alice.Create(ctx, obj)).To(Succeed())
			Expect(obj.GetAnnotations()).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))
			// The create's response: the webhook added the audit finalizer, not the controllers.
			Expect(obj.GetFinalizers()).To(ConsistOf(v1.FinalizerAudit))
			Eventually(annotation(obj, v1.AnnotationChangedBy)).Should(Equal("alice"))
		},
		Entry("FeatureFlag", func(ns string) client.Object { return boolFlag(ns, "beta.created") }),
		Entry("UserFlagOverride", func(ns string) client.Object {
			return userOverride(ns, "pilot", "user-1", on("beta.target"))
		}),
		Entry("DeviceFlagOverride", func(ns string) client.Object {
			return deviceOverride(ns, "tablet", "device-1", on("beta.target"))
		}),
	)

	It("names whoever last changed the spec, not who last touched the metadata", func() {
		ns := newNamespace()
		flag := boolFlag(ns, "beta.stamped")
		Expect(alice.Create(ctx, flag)).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))

		// The controller adds its audit finalizer: a metadata-only patch by the manager.
		Eventually(func(g Gomega) []string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(flag), flag)).To(Succeed())
			return flag.Finalizers
		}).Should(ContainElement(v1.FinalizerAudit))
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))

		// bob changes the spec.
		base := flag.DeepCopy()
		flag.Spec.Enabled = false
		Expect(bob.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "bob"))

		// carol only adds a label.
		base = flag.DeepCopy()
		flag.Labels = map[string]string{"team": "billing"}
		Expect(carol.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Labels).To(HaveKeyWithValue("team", "billing"))
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "bob"))
		Consistently(annotation(flag, v1.AnnotationChangedBy)).Should(Equal("bob"))
	})

	It("stamps a spec update of an override", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.a"))).To(Succeed())
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.b"))).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", on("beta.a"))
		Expect(alice.Create(ctx, o)).To(Succeed())

		base := o.DeepCopy()
		o.Spec.Flags = append(o.Spec.Flags, on("beta.b"))
		Expect(bob.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(o.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "bob"))
		Eventually(annotation(o, v1.AnnotationChangedBy)).Should(Equal("bob"))
	})

	It("replaces a hand-written stamp on create and on a spec change", func() {
		ns := newNamespace()
		flag := boolFlag(ns, "beta.forged")
		flag.Annotations = map[string]string{v1.AnnotationChangedBy: "mallory"}
		Expect(alice.Create(ctx, flag)).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))

		base := flag.DeepCopy()
		flag.Spec.Description = "changed"
		flag.Annotations[v1.AnnotationChangedBy] = "mallory"
		Expect(bob.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "bob"))
	})

	It("keeps the stamp when a metadata-only update edits or removes it", func() {
		ns := newNamespace()
		flag := boolFlag(ns, "beta.kept")
		flag.Annotations = map[string]string{"team": "billing"}
		Expect(alice.Create(ctx, flag)).To(Succeed())

		base := flag.DeepCopy()
		flag.Annotations[v1.AnnotationChangedBy] = "mallory"
		Expect(carol.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))

		base = flag.DeepCopy()
		delete(flag.Annotations, v1.AnnotationChangedBy)
		Expect(carol.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))
		Expect(flag.Annotations).To(HaveKeyWithValue("team", "billing"))

		// Removing every annotation at once is undone the same way.
		base = flag.DeepCopy()
		flag.Annotations = nil
		Expect(carol.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))
		Expect(flag.Annotations).To(HaveKey(v1.AnnotationChangedByStamp))
		Expect(flag.Annotations).To(HaveLen(2))
	})

	It("stamps dry-run requests without persisting anything", func() {
		ns := newNamespace()
		flag := boolFlag(ns, "beta.dry")
		Expect(carol.Create(ctx, flag, client.DryRunAll)).To(Succeed())
		Expect(flag.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "carol"))
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(flag), &v1.FeatureFlag{})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
		Expect(err).To(HaveOccurred(), "a dry-run create persists nothing")
	})
})

// auditActor waits for the audit record of obj with the given action and returns its actor.
func auditActor(obj client.Object, action audit.Action) audit.Actor {
	GinkgoHelper()
	var actor audit.Actor
	Eventually(func(g Gomega) {
		found := false
		for _, r := range auditLog.Records() {
			if r.Object.Namespace == obj.GetNamespace() && r.Object.Name == obj.GetName() && r.Action == action {
				actor, found = r.Actor, true
			}
		}
		g.Expect(found).To(BeTrue(), "no %s record for %s", action, obj.GetName())
	}).Should(Succeed())
	return actor
}

var _ = Describe("Actor stamps from the real webhooks", func() {
	It("verify in the audit trail at create, update and delete", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.target"))).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		Expect(alice.Create(ctx, o)).To(Succeed())
		Expect(o.Annotations).To(HaveKey(v1.AnnotationChangedByStamp))
		Expect(auditActor(o, audit.ActionUserOverrideCreated)).To(Equal(audit.Actor{Username: "alice", Verified: true}))

		// carol only labels it: the stamp stays valid; bob changes the spec: a new stamp.
		finalized(o)
		base := o.DeepCopy()
		o.Labels = map[string]string{"team": "billing"}
		Expect(carol.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		base = o.DeepCopy()
		o.Spec.Reason = "pilot customer"
		Expect(bob.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(o.Generation).To(BeEquivalentTo(2))
		Expect(auditActor(o, audit.ActionUserOverrideUpdated)).To(Equal(audit.Actor{Username: "bob", Verified: true}))

		Expect(dave.Delete(ctx, o)).To(Succeed())
		Expect(auditActor(o, audit.ActionUserOverrideDeleted)).To(Equal(audit.Actor{Username: "dave", Verified: true}))
	})

	It("verify for an Object flag with a schema (raw JSON in the spec)", func() {
		ns := newNamespace()
		f := limitsFlag(ns, "billing.limits")
		Expect(alice.Create(ctx, f)).To(Succeed())
		Expect(auditActor(f, audit.ActionFlagCreated)).To(Equal(audit.Actor{Username: "alice", Verified: true}))
	})

	It("replace a forged deleted-by and its stamp at deletion", func() {
		ns := newNamespace()
		f := boolFlag(ns, "beta.forged")
		Expect(alice.Create(ctx, f)).To(Succeed())
		finalized(f)
		base := f.DeepCopy()
		f.Annotations[v1.AnnotationDeletedBy] = "dave"
		f.Annotations[v1.AnnotationDeletedByStamp] = "v1.forged"
		Expect(carol.Patch(ctx, f, client.MergeFrom(base))).To(Succeed())
		Expect(dave.Delete(ctx, f)).To(Succeed())
		Expect(auditActor(f, audit.ActionFlagDeleted)).To(Equal(audit.Actor{Username: "dave", Verified: true}))
	})
})

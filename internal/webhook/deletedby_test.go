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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// testFinalizer keeps deleted objects visible until the spec releases them.
const testFinalizer = "test.flagops.dev/hold"

// held creates obj as alice with testFinalizer, and releases it when the spec ends.
func held(obj client.Object) {
	GinkgoHelper()
	controllerutil.AddFinalizer(obj, testFinalizer)
	Expect(alice.Create(ctx, obj)).To(Succeed())
	DeferCleanup(func() {
		Eventually(func(g Gomega) {
			fresh := obj.DeepCopyObject().(client.Object)
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), fresh)
			if apierrors.IsNotFound(err) {
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			base := fresh.DeepCopyObject().(client.Object)
			if controllerutil.RemoveFinalizer(fresh, testFinalizer) {
				g.Expect(k8sClient.Patch(ctx, fresh, client.MergeFrom(base))).To(Succeed())
			}
		}).Should(Succeed())
	})
}

// deleting returns the stored object once its deletion is under way.
func deleting(obj client.Object) client.Object {
	GinkgoHelper()
	fresh := obj.DeepCopyObject().(client.Object)
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), fresh)).To(Succeed())
		g.Expect(fresh.GetDeletionTimestamp()).NotTo(BeNil())
	}).Should(Succeed())
	return fresh
}

var _ = Describe("The deleted-by stamp", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.target"))).To(Succeed())
	})

	DescribeTable("names the user who deleted the object",
		func(build func(ns string) client.Object) {
			obj := build(ns)
			held(obj)
			Expect(dave.Delete(ctx, obj)).To(Succeed())
			got := deleting(obj)
			Expect(got.GetAnnotations()).To(HaveKeyWithValue(v1.AnnotationDeletedBy, "dave"))
			Expect(got.GetAnnotations()).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"),
				"the deletion stamp leaves the changed-by stamp alone")
		},
		Entry("FeatureFlag", func(ns string) client.Object { return boolFlag(ns, "beta.deleted") }),
		Entry("UserFlagOverride", func(ns string) client.Object {
			return userOverride(ns, "pilot", "user-1", on("beta.target"))
		}),
		Entry("DeviceFlagOverride", func(ns string) client.Object {
			return deviceOverride(ns, "tablet", "device-1", on("beta.target"))
		}),
	)

	It("keeps the first deleter when the object is deleted again", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		held(o)
		Expect(dave.Delete(ctx, o)).To(Succeed())
		deleting(o)
		Expect(carol.Delete(ctx, o)).To(Succeed())
		Consistently(annotation(o, v1.AnnotationDeletedBy)).Should(Equal("dave"))
	})

	It("replaces a hand-written stamp", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		o.Annotations = map[string]string{v1.AnnotationDeletedBy: "mallory"}
		held(o)
		Expect(dave.Delete(ctx, o)).To(Succeed())
		Expect(deleting(o).GetAnnotations()).To(HaveKeyWithValue(v1.AnnotationDeletedBy, "dave"))
	})

	It("does not stamp a dry-run deletion", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		held(o)
		Expect(dave.Delete(ctx, o, client.DryRunAll)).To(Succeed())
		Consistently(func(g Gomega) {
			fresh := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), fresh)).To(Succeed())
			g.Expect(fresh.DeletionTimestamp).To(BeNil())
			g.Expect(fresh.Annotations).NotTo(HaveKey(v1.AnnotationDeletedBy))
		}).Should(Succeed())
	})

	It("never blocks a deletion with a resourceVersion precondition", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		held(o)
		Eventually(func(g Gomega) {
			fresh := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), fresh)).To(Succeed())
			g.Expect(dave.Delete(ctx, fresh, client.Preconditions{ResourceVersion: &fresh.ResourceVersion})).To(Succeed())
		}).Should(Succeed())
		Expect(deleting(o).GetAnnotations()).NotTo(HaveKey(v1.AnnotationDeletedBy),
			"the stamp would have changed the resourceVersion and failed the deletion")
	})

	It("deletes an object without finalizers outright", func() {
		// The controllers add their audit finalizer eventually; delete before or after, the
		// deletion completes either way.
		f := boolFlag(ns, "beta.gone")
		Expect(alice.Create(ctx, f)).To(Succeed())
		Expect(dave.Delete(ctx, f)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), &v1.FeatureFlag{}))
		}).Should(BeTrue())
	})
})

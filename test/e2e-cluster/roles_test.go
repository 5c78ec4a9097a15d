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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// as is a client that impersonates user (the admin may impersonate anyone).
func as(user string) client.Client {
	GinkgoHelper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	cl, err := client.New(c, client.Options{Scheme: k8s.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	return cl
}

// bind binds the built-in ClusterRole role to user in ns.
func bind(ns, role, user string) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
}

// roleSpecs run in the suite's ordered container, after the install.
func roleSpecs() {
	var ns string
	const viewer, editor = "e2e-viewer", "e2e-editor"

	BeforeEach(func() {
		if ns == "" {
			ns = newNamespace("e2e-roles-")
			bind(ns, "view", viewer)
			bind(ns, "edit", editor)
			Expect(k8s.Create(ctx, boolFlag(ns, "roles.existing"))).To(Succeed())
		}
	})

	It("lets a user bound only to view read flags and overrides, and not write them", func() {
		view := as(viewer)
		Eventually(func(g Gomega) {
			var flags v1.FeatureFlagList
			g.Expect(view.List(ctx, &flags, client.InNamespace(ns))).To(Succeed())
			g.Expect(flags.Items).To(HaveLen(1))
			g.Expect(view.List(ctx, &v1.UserFlagOverrideList{}, client.InNamespace(ns))).To(Succeed())
			g.Expect(view.List(ctx, &v1.DeviceFlagOverrideList{}, client.InNamespace(ns))).To(Succeed())
		}).Should(Succeed())

		err := view.Create(ctx, boolFlag(ns, "roles.by-viewer"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "create: want Forbidden, got %v", err)
		err = view.Patch(ctx, boolFlag(ns, "roles.existing"), rawMerge(`{"spec":{"enabled":false}}`))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "patch: want Forbidden, got %v", err)
		err = view.Delete(ctx, boolFlag(ns, "roles.existing"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "delete: want Forbidden, got %v", err)
		ufo := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-viewer"},
			Spec: v1.UserFlagOverrideSpec{UserID: "user-1", FlagOverrideSpec: v1.FlagOverrideSpec{Reason: "e2e",
				Flags: []v1.FlagOverrideEntry{{Key: "roles.existing", Enabled: ptrTo(false)}}}}}
		err = view.Create(ctx, ufo)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "create override: want Forbidden, got %v", err)
	})

	It("lets a user bound to edit write them, with the change stamped as theirs", func() {
		edit := as(editor)
		f := boolFlag(ns, "roles.by-editor")
		Eventually(func() error { return edit.Create(ctx, f) }).Should(Succeed())
		Expect(f.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, editor))
		Expect(edit.Patch(ctx, boolFlag(ns, "roles.existing"), rawMerge(`{"spec":{"enabled":false}}`))).To(Succeed())
		ufo := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-editor"},
			Spec: v1.UserFlagOverrideSpec{UserID: "user-1", FlagOverrideSpec: v1.FlagOverrideSpec{Reason: "e2e",
				Flags: []v1.FlagOverrideEntry{{Key: "roles.existing", Enabled: ptrTo(true)}}}}}
		Expect(edit.Create(ctx, ufo)).To(Succeed())
		Expect(edit.Delete(ctx, ufo)).To(Succeed())
	})
}

func ptrTo[T any](v T) *T { return &v }

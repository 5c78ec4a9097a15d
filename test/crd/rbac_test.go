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

package crd

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// userClient returns a client that authenticates as a new envtest user, outside
// system:masters, so that RBAC applies to it.
func userClient(name string) client.Client {
	GinkgoHelper()
	u, err := testEnv.AddUser(envtest.User{Name: name, Groups: []string{"flagops-test-users"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	c, err := client.New(u.Config(), client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// bind grants user the cluster role in namespace ns.
func bind(ns, user, role string) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})).To(Succeed())
}

var _ = Describe("RBAC roles", func() {
	BeforeEach(func() {
		objs, err := testenv.ReadObjects(filepath.Join(repoRoot, "config", "rbac", "user_roles.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, o := range objs {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, o))).To(Succeed())
		}
	})

	It("lets flagops-viewer list overrides but not create, update or delete them", func() {
		ns := newNamespace()
		bind(ns, "viewer-vic", "flagops-viewer")
		viewer := userClient("viewer-vic")

		existing := userOverride("existing", on("beta.dash"))
		existing.Namespace = ns
		Expect(k8sClient.Create(ctx, existing)).To(Succeed())

		Eventually(func(g Gomega) {
			list := &v1.UserFlagOverrideList{}
			g.Expect(viewer.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
		}).Should(Succeed())
		Expect(viewer.List(ctx, &v1.FeatureFlagList{}, client.InNamespace(ns))).To(Succeed())
		Expect(viewer.List(ctx, &v1.DeviceFlagOverrideList{}, client.InNamespace(ns))).To(Succeed())

		created := userOverride("new", on("beta.dash"))
		created.Namespace = ns
		Expect(apierrors.IsForbidden(viewer.Create(ctx, created))).To(BeTrue(), "create must be forbidden")
		dev := deviceOverride("new", on("beta.dash"))
		dev.Namespace = ns
		Expect(apierrors.IsForbidden(viewer.Create(ctx, dev))).To(BeTrue(), "create must be forbidden")
		flag := boolFlag("beta.dash")
		flag.Namespace = ns
		Expect(apierrors.IsForbidden(viewer.Create(ctx, flag))).To(BeTrue(), "create must be forbidden")

		update := existing.DeepCopy()
		update.Spec.Reason = "changed by a viewer"
		Expect(apierrors.IsForbidden(viewer.Update(ctx, update))).To(BeTrue(), "update must be forbidden")
		Expect(apierrors.IsForbidden(viewer.Patch(ctx, update, client.MergeFrom(existing)))).To(BeTrue(), "patch must be forbidden")
		Expect(apierrors.IsForbidden(viewer.Delete(ctx, existing))).To(BeTrue(), "delete must be forbidden")
	})

	It("lets flagops-admin create, update and delete every kind", func() {
		ns := newNamespace()
		bind(ns, "admin-ada", "flagops-admin")
		admin := userClient("admin-ada")

		flag := boolFlag("beta.dash")
		flag.Namespace = ns
		Eventually(func() error { return admin.Create(ctx, flag) }).Should(Succeed())
		o := userOverride("pilot", on("beta.dash"))
		o.Namespace = ns
		Expect(admin.Create(ctx, o)).To(Succeed())
		d := deviceOverride("tablet", on("beta.dash"))
		d.Namespace = ns
		Expect(admin.Create(ctx, d)).To(Succeed())

		base := o.DeepCopy()
		o.Spec.Reason = "changed by an admin"
		Expect(admin.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(admin.Delete(ctx, o)).To(Succeed())
		Expect(admin.Delete(ctx, d)).To(Succeed())
		Expect(admin.Delete(ctx, flag)).To(Succeed())
	})
})

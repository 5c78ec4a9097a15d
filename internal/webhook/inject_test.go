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
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const sidecarImage = "registry.example/flagops:test"

// installSidecarClusterRole creates the ClusterRole of config/rbac/sidecar_role.yaml, which
// the webhook's RoleBindings refer to.
func installSidecarClusterRole() {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "sidecar_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	role := &rbacv1.ClusterRole{}
	Expect(dec.Decode(role)).To(Succeed())
	Expect(role.Kind).To(Equal("ClusterRole"))
	Expect(role.Name).To(Equal(SidecarClusterRoleName))
	role.ResourceVersion = ""
	err = k8sClient.Create(ctx, role)
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// appPodIn is a pod of namespace ns run as the service account sa, with annotations.
func appPodIn(ns, sa string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "app-", Annotations: annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
}

// serviceAccount creates the service account ns/name: pods need theirs to exist.
func serviceAccount(ns, name string) {
	GinkgoHelper()
	err := k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// canList asks the API server's authorizer whether the service account ns/sa may list
// FeatureFlags in namespace in.
func canList(ns, sa, in string) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: in, Verb: "list", Group: "flagops.dev", Resource: "featureflags",
		},
	}}
	Expect(k8sClient.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

func sidecarOf(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == SidecarContainerName {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

func injectedBinding(ns string) (*rbacv1.RoleBinding, error) {
	rb := &rbacv1.RoleBinding{}
	return rb, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: SidecarRoleBindingName}, rb)
}

var _ = Describe("Sidecar injection", func() {
	BeforeEach(installSidecarClusterRole)

	It("injects a native sidecar into an annotated pod, and lets its service account read its namespace's flags and no other's", func() {
		ns, other := newNamespace(), newNamespace()
		serviceAccount(ns, "shop")
		pod := appPodIn(ns, "shop", map[string]string{AnnotationInject: "true"})
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())

		c := sidecarOf(pod)
		Expect(c).NotTo(BeNil(), "init containers: %+v", pod.Spec.InitContainers)
		Expect(pod.Spec.InitContainers[0].Name).To(Equal(SidecarContainerName))
		Expect(*c.RestartPolicy).To(Equal(corev1.ContainerRestartPolicyAlways))
		Expect(c.Image).To(Equal(sidecarImage))
		Expect(c.Args).To(ContainElements("--evaluator-bind-address=127.0.0.1:8080", "--context-token-keys-file=/etc/flagops/keys/jwks.json"))
		Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
		Expect(pod.Spec.Containers).To(HaveLen(1), "the application's containers are left alone")

		rb, err := injectedBinding(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: SidecarClusterRoleName}))
		Expect(rb.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: "shop", Namespace: ns}))
		Expect(rb.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "flagops"))

		Eventually(func() bool { return canList(ns, "shop", ns) }).Should(BeTrue())
		Expect(canList(ns, "shop", other)).To(BeFalse(), "another namespace's flags")
		Expect(canList(ns, "default", ns)).To(BeFalse(), "a service account of no injected pod")
		_, err = injectedBinding(other)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing written in another namespace: %v", err)
	})

	It("leaves pods alone that do not ask for it", func() {
		ns := newNamespace()
		serviceAccount(ns, "default")
		for _, annotations := range []map[string]string{nil, {AnnotationInject: "false"}, {AnnotationInject: "yes"}} {
			pod := appPodIn(ns, "default", annotations)
			Expect(k8sClient.Create(ctx, pod)).To(Succeed())
			Expect(pod.Spec.InitContainers).To(BeEmpty(), "annotations %v", annotations)
			Expect(pod.Spec.Volumes).NotTo(ContainElement(HaveField("Name", sidecarTokenVolume)))
		}
		_, err := injectedBinding(ns)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no binding where nothing was injected: %v", err)
	})

	It("injects every pod of a namespace that opted in, but one that declines", func() {
		ns := newNamespace()
		nsObj := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		nsObj.Labels[LabelInject] = LabelInjectEnabled
		Expect(k8sClient.Update(ctx, nsObj)).To(Succeed())
		serviceAccount(ns, "default")

		Eventually(func(g Gomega) {
			pod := appPodIn(ns, "default", nil)
			g.Expect(k8sClient.Create(ctx, pod, client.DryRunAll)).To(Succeed())
			g.Expect(sidecarOf(pod)).NotTo(BeNil())
		}).Should(Succeed())
		pod := appPodIn(ns, "default", nil)
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Expect(sidecarOf(pod)).NotTo(BeNil())
		// Injected once: the pod webhook does not match namespaces that opted in.
		Expect(pod.Spec.InitContainers).To(HaveLen(1))

		declined := appPodIn(ns, "default", map[string]string{AnnotationInject: "false"})
		Expect(k8sClient.Create(ctx, declined)).To(Succeed())
		Expect(declined.Spec.InitContainers).To(BeEmpty())

		typo := appPodIn(ns, "default", map[string]string{AnnotationInject: "yes"})
		Expect(k8sClient.Create(ctx, typo)).To(MatchError(And(
			ContainSubstring(`admission webhook "minjectnamespace.flagops.dev" denied the request`),
			ContainSubstring(`metadata.annotations[flagops.dev/inject]: "yes" is not "true" or "false"`))))
	})

	It("refuses an annotated pod it cannot serve, naming the annotation or field", func() {
		ns := newNamespace()
		serviceAccount(ns, "default")
		bad := appPodIn(ns, "default", map[string]string{AnnotationInject: "true", AnnotationSidecarPort: "http"})
		Expect(k8sClient.Create(ctx, bad)).To(MatchError(And(
			ContainSubstring(`admission webhook "minjectpod.flagops.dev" denied the request`),
			ContainSubstring(`metadata.annotations[flagops.dev/sidecar-port]: "http" is not a port number`))))
		clash := appPodIn(ns, "default", map[string]string{AnnotationInject: "true"})
		clash.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		Expect(k8sClient.Create(ctx, clash)).To(MatchError(ContainSubstring(`container "app" declares port 8080`)))
		clash.Annotations[AnnotationSidecarPort] = "18080"
		Expect(k8sClient.Create(ctx, clash)).To(Succeed())
		Expect(sidecarOf(clash).Args).To(ContainElement("--evaluator-bind-address=127.0.0.1:18080"))
	})

	It("grants nothing for a dry run", func() {
		ns := newNamespace()
		serviceAccount(ns, "default")
		pod := appPodIn(ns, "default", map[string]string{AnnotationInject: "true"})
		Expect(k8sClient.Create(ctx, pod, client.DryRunAll)).To(Succeed())
		Expect(sidecarOf(pod)).NotTo(BeNil(), "a dry run shows the injected pod")
		_, err := injectedBinding(ns)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run has no side effects: %v", err)
	})

	It("binds every service account of pods created at once, and no one twice", func() {
		ns := newNamespace()
		const n, each = 10, 3
		// A client without client-side rate limits, so that the creations really overlap.
		fast := rest.CopyConfig(cfg)
		fast.QPS, fast.Burst = 1000, 1000
		c, err := client.New(fast, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		var wg sync.WaitGroup
		errs := make([]error, n*each)
		for i := range n {
			sa := fmt.Sprintf("sa-%d", i)
			serviceAccount(ns, sa)
			for j := range each {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[each*i+j] = c.Create(ctx, appPodIn(ns, sa, map[string]string{AnnotationInject: "true"}))
				}()
			}
		}
		wg.Wait()
		for _, err := range errs {
			Expect(err).NotTo(HaveOccurred())
		}
		rb, err := injectedBinding(ns)
		Expect(err).NotTo(HaveOccurred())
		var want []rbacv1.Subject
		for i := range n {
			want = append(want, rbacv1.Subject{Kind: "ServiceAccount", Name: fmt.Sprintf("sa-%d", i), Namespace: ns})
		}
		Expect(rb.Subjects).To(ConsistOf(want))
	})

	It("refuses an injection it cannot grant access for: a RoleBinding of its name that is somebody else's", func() {
		ns := newNamespace()
		serviceAccount(ns, "default")
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: SidecarRoleBindingName},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		})).To(Succeed())
		err := k8sClient.Create(ctx, appPodIn(ns, "default", map[string]string{AnnotationInject: "true"}))
		Expect(err).To(MatchError(ContainSubstring("refers to ClusterRole view, not to the ClusterRole flagops-sidecar; delete or rename it")))
	})

	It("refuses pods that ask for it while the webhook is unreachable, and only those", func() {
		ns := newNamespace()
		serviceAccount(ns, "default")
		mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "flagops-mutating-webhook-configuration"}, mutating)).To(Succeed())
		saved := mutating.DeepCopy()
		unreachable := "https://127.0.0.1:1/unreachable"
		for i := range mutating.Webhooks {
			if mutating.Webhooks[i].Name == "minjectpod.flagops.dev" {
				mutating.Webhooks[i].ClientConfig.URL = &unreachable
			}
		}
		Expect(k8sClient.Update(ctx, mutating)).To(Succeed())
		DeferCleanup(func() {
			Eventually(func() error {
				cur := &admissionregistrationv1.MutatingWebhookConfiguration{}
				if err := k8sClient.Get(ctx, client.ObjectKey{Name: saved.Name}, cur); err != nil {
					return err
				}
				cur.Webhooks = saved.Webhooks
				return k8sClient.Update(ctx, cur)
			}).Should(Succeed())
		})

		Eventually(func() error {
			return k8sClient.Create(ctx, appPodIn(ns, "default", map[string]string{AnnotationInject: "true"}), client.DryRunAll)
		}).Should(MatchError(ContainSubstring(`failed calling webhook "minjectpod.flagops.dev"`)))
		Expect(k8sClient.Create(ctx, appPodIn(ns, "default", map[string]string{AnnotationInject: "true"}))).
			To(MatchError(ContainSubstring(`failed calling webhook "minjectpod.flagops.dev"`)))
		plain := appPodIn(ns, "default", nil)
		Expect(k8sClient.Create(ctx, plain)).To(Succeed(), "a pod that does not ask for the sidecar never waits for the webhook")
		Expect(plain.Spec.InitContainers).To(BeEmpty())
	})
})

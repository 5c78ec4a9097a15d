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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// injectedApp is a Deployment of the suite's client, run as the service account sa, whose
// pods carry annotations. The client evaluates what args say once, at its start, and
// exits on a connection error, so a first run that succeeds shows that the kubelet started
// it only after the sidecar was ready.
func injectedApp(ns, sa string, annotations map[string]string, args []string) *appsv1.Deployment {
	labels := map[string]string{"app": "injected"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "injected"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "app", Image: clientImage, ImagePullPolicy: corev1.PullNever, Args: args,
						Env: []corev1.EnvVar{{Name: "CLIENT_THEN_WAIT", Value: "1"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}

// plainPod is a pod that asks for nothing; it need not run.
func plainPod(ns string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "plain-", Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: clientImage, ImagePullPolicy: corev1.PullNever, Args: []string{"x", "y", "z"}}},
		},
	}
}

// readyPods returns the pods of the injected app whose app container is ready, failing if
// one restarted.
func readyPods(g Gomega, ns string) []corev1.Pod {
	var pods corev1.PodList
	g.Expect(k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "injected"})).To(Succeed())
	var ready []corev1.Pod
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == "app" && s.Ready {
				g.Expect(s.RestartCount).To(BeZero(), "the application started before the sidecar was ready")
				ready = append(ready, p)
			}
		}
	}
	return ready
}

// clientLines returns the client's output in pod p, once it has written n lines: the
// container is ready as soon as it starts, before its requests are answered.
func clientLines(p corev1.Pod, n int) []string {
	GinkgoHelper()
	var lines []string
	Eventually(func(g Gomega) {
		raw, err := kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "app"}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		lines = strings.Split(strings.TrimSpace(string(raw)), "\n")
		g.Expect(lines).To(HaveLen(n), "app output:\n%s", raw)
	}).Should(Succeed())
	return lines
}

// scaleManager sets the manager Deployment's replicas and returns the number it had.
func scaleManager(replicas int32) int32 {
	GinkgoHelper()
	var d appsv1.Deployment
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: system, Name: managerName}, &d)).To(Succeed())
	old := *d.Spec.Replicas
	d.Spec.Replicas = ptr.To(replicas)
	Expect(k8s.Update(ctx, &d)).To(Succeed())
	return old
}

// injectSpec checks sidecar injection the way a platform team uses it: an annotated
// Deployment in an application namespace gets the sidecar, which reads that namespace's
// flags on localhost as the pod's service account, and cannot read another's; an
// unannotated pod is untouched; a namespace can opt in as a whole; and while the webhook is
// unreachable annotated pods are refused, and created once it is back, while other pods are
// never blocked.
func injectSpec() {
	ns, other, args := sidecarFixture("inject")
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}})).To(Succeed())
	app := injectedApp(ns, "shop", map[string]string{"flagops.dev/inject": "true"}, args)
	start := time.Now()
	Expect(k8s.Create(ctx, app)).To(Succeed())

	var pod corev1.Pod
	Eventually(func(g Gomega) {
		ready := readyPods(g, ns)
		g.Expect(ready).To(HaveLen(1))
		pod = ready[0]
	}).Should(Succeed())
	AddReportEntry("injected Deployment: created to application ready", time.Since(start).Round(100*time.Millisecond).String())
	Expect(pod.Spec.InitContainers).NotTo(BeEmpty())
	sidecar := pod.Spec.InitContainers[0]
	Expect(sidecar.Name).To(Equal("flagops"))
	Expect(*sidecar.RestartPolicy).To(Equal(corev1.ContainerRestartPolicyAlways))
	Expect(sidecar.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
	Expect(sidecar.Args).To(ContainElement("--evaluator-bind-address=127.0.0.1:8080"))

	lines := clientLines(pod, 2)
	status, body, _ := strings.Cut(lines[0], " ")
	Expect(status).To(Equal("200"), "its own namespace's flag: %s", lines[0])
	Expect(body).To(ContainSubstring(`"key":"inject.own"`))
	status, _, _ = strings.Cut(lines[1], " ")
	Expect(status).NotTo(Equal("200"), "another namespace's flag through the sidecar: %s", lines[1])
	AddReportEntry("injected sidecar: another namespace's flag", lines[1])

	// The pod's service account reads its namespace's flags, and no other's: the API
	// server's authorizer says so.
	for in, want := range map[string]bool{ns: true, other: false} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":shop",
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: in, Verb: "list", Group: "flagops.dev", Resource: "featureflags"},
		}}
		Expect(k8s.Create(ctx, sar)).To(Succeed())
		Expect(sar.Status.Allowed).To(Equal(want), "may %s:shop list the FeatureFlags of %s?", ns, in)
	}

	By("leaving an unannotated pod untouched")
	plain := plainPod(ns, nil)
	Expect(k8s.Create(ctx, plain)).To(Succeed())
	Expect(plain.Spec.InitContainers).To(BeEmpty())
	Expect(k8s.Delete(ctx, plain)).To(Succeed())

	By("injecting every pod of a namespace that opted in, but one that declines")
	optedIn := newNamespace("e2e-inject-ns-")
	var nsObj corev1.Namespace
	Expect(k8s.Get(ctx, client.ObjectKey{Name: optedIn}, &nsObj)).To(Succeed())
	nsObj.Labels["flagops.dev/inject"] = "enabled"
	Expect(k8s.Update(ctx, &nsObj)).To(Succeed())
	Eventually(func(g Gomega) {
		p := plainPod(optedIn, nil)
		g.Expect(k8s.Create(ctx, p, client.DryRunAll)).To(Succeed())
		g.Expect(p.Spec.InitContainers).To(HaveLen(1))
		g.Expect(p.Spec.InitContainers[0].Name).To(Equal("flagops"))
	}).Should(Succeed())
	declined := plainPod(optedIn, map[string]string{"flagops.dev/inject": "false"})
	Expect(k8s.Create(ctx, declined)).To(Succeed())
	Expect(declined.Spec.InitContainers).To(BeEmpty())
	Expect(k8s.Delete(ctx, declined)).To(Succeed())

	By("refusing annotated pods while no manager serves the webhook, and creating them once one does")
	// No manager at all, rather than a Service without endpoints: the API server keeps its
	// connections to the webhook open, so only stopping the pods cuts them.
	replicas := scaleManager(0)
	restored := false
	DeferCleanup(func() {
		if !restored {
			scaleManager(replicas)
		}
	})
	Eventually(func(g Gomega) { g.Expect(managerPods(g)).To(BeEmpty()) }).Should(Succeed())
	Eventually(func() error {
		return k8s.Create(ctx, plainPod(ns, map[string]string{"flagops.dev/inject": "true"}), client.DryRunAll)
	}).Should(MatchError(ContainSubstring(`failed calling webhook "minjectpod.flagops.dev"`)))
	plain = plainPod(ns, nil)
	Expect(k8s.Create(ctx, plain)).To(Succeed(), "a pod that does not ask for the sidecar never waits for the webhook")
	Expect(plain.Spec.InitContainers).To(BeEmpty())
	Expect(k8s.Delete(ctx, plain)).To(Succeed())

	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(app), app)).To(Succeed())
	app.Spec.Replicas = ptr.To(int32(2))
	Expect(k8s.Update(ctx, app)).To(Succeed())
	// The ReplicaSet cannot create the second pod, and says why.
	Eventually(func(g Gomega) {
		var sets appsv1.ReplicaSetList
		g.Expect(k8s.List(ctx, &sets, client.InNamespace(ns), client.MatchingLabels{"app": "injected"})).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
		g.Expect(sets.Items[0].Status.Conditions).To(ContainElement(And(
			HaveField("Type", appsv1.ReplicaSetReplicaFailure),
			HaveField("Message", ContainSubstring(`failed calling webhook "minjectpod.flagops.dev"`)))))
	}).Should(Succeed())
	var pods corev1.PodList
	Expect(k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "injected"})).To(Succeed())
	Expect(pods.Items).To(HaveLen(1), "no pod started without its sidecar")

	scaleManager(replicas)
	restored = true
	Eventually(readyReplicas(managerName)).Should(BeEquivalentTo(replicas))
	back := time.Now()
	// The ReplicaSet controller retries with its own backoff, which grew while it failed.
	Eventually(func(g Gomega) {
		ready := readyPods(g, ns)
		g.Expect(ready).To(HaveLen(2))
		for _, p := range ready {
			g.Expect(p.Spec.InitContainers).NotTo(BeEmpty())
			g.Expect(p.Spec.InitContainers[0].Name).To(Equal("flagops"))
		}
	}).WithTimeout(6 * time.Minute).Should(Succeed())
	AddReportEntry("refused replica: managers ready to the pod, with its sidecar, ready", time.Since(back).Round(100*time.Millisecond).String())
	Expect(k8s.Delete(ctx, app)).To(Succeed())
}

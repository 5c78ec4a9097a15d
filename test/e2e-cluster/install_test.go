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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

const (
	overlay     = "test/e2e-cluster/overlay"
	leaseName   = "flagops-manager.flagops.dev"
	managerName = "flagops-controller-manager"
)

// released reports whether the helm release is installed.
func released() bool {
	GinkgoHelper()
	_, err := tryRun(helmBin(), "status", release, "--namespace", system)
	return err == nil
}

// installMode is how the suite installs flagops: kubectl (the default), or helm
// (E2E_INSTALL=helm, `make e2e E2E_INSTALL=helm`).
func installMode() string {
	GinkgoHelper()
	switch m := os.Getenv("E2E_INSTALL"); m {
	case "", "kubectl":
		return "kubectl"
	case "helm":
		return m
	default:
		Fail(fmt.Sprintf("E2E_INSTALL=%s: want kubectl or helm", m))
		return ""
	}
}

// helmBin is the helm that make installed (make e2e sets HELM).
func helmBin() string {
	GinkgoHelper()
	h := os.Getenv("HELM")
	Expect(h).NotTo(BeEmpty(), "HELM is not set: run the suite with make e2e, which installs helm into ./bin")
	return h
}

// The helm release, and the chart's values that make it the overlay's install: the image
// that `make image` built (never pulled), a webhook certificate renewed about once a minute,
// the CRDs deleted by helm uninstall (crds.keep=false), and the evaluator's keys from the
// values (the chart makes their Secret).
const release = "flagops"

var helmValues = []string{
	"--set", "image.repository=localhost/flagops", "--set", "image.tag=dev", "--set", "image.pullPolicy=Never",
	"--set", "crds.keep=false",
	"--set-json", `manager.extraArgs=["--webhook-ca-validity=6m","--webhook-cert-validity=6m","--webhook-cert-renew-before=5m","--webhook-cert-check-interval=10s"]`,
}

// install installs flagops as a user would, after creating what it needs first: the
// namespace, the audit stamp key and (with kubectl) the evaluator's token keys. With kubectl
// it applies config/default through the overlay (`kubectl apply --server-side -k`); with
// helm it installs charts/flagops (`helm install`), which makes the keys Secret from the
// values. The manager provisions the webhook certificate itself.
func install() {
	GinkgoHelper()
	mode := installMode()
	// The labels config/default gives the namespace; the chart leaves the namespace to the
	// user.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: system,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "flagops-audit-stamp-key", Namespace: system},
			Data: map[string][]byte{"key": []byte("e2e-stamp-key-0123456789abcdef0123456789abcdef")}},
	}
	if mode == "kubectl" {
		secrets = append(secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "flagops-evaluator-keys", Namespace: system},
			Data: map[string][]byte{"jwks.json": jwks()}})
	}
	for _, s := range secrets {
		Expect(k8s.Create(ctx, s)).To(Succeed(), "secret %s", s.Name)
	}
	if mode == "helm" {
		keys := filepath.Join(GinkgoT().TempDir(), "jwks.json")
		Expect(os.WriteFile(keys, jwks(), 0o600)).To(Succeed())
		run(helmBin(), append([]string{"install", release, "charts/flagops", "--namespace", system,
			"--set-file", "evaluator.keys.jwks=" + keys}, helmValues...)...)
		return
	}
	run("kubectl", "apply", "--server-side", "--field-manager=e2e", "-k", overlay)
}

// readyReplicas is the number of ready replicas of a Deployment in flagops-system.
func readyReplicas(name string) func(g Gomega) int32 {
	return func(g Gomega) int32 {
		var d appsv1.Deployment
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: name}, &d)).To(Succeed())
		return d.Status.ReadyReplicas
	}
}

// leader returns the holder of the manager's leader Lease (a pod name and a suffix), or "".
func leader() string {
	var l coordinationv1.Lease
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: leaseName}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// managerPods lists the manager's pods.
func managerPods(g Gomega) []corev1.Pod {
	var pods corev1.PodList
	g.Expect(k8s.List(ctx, &pods, client.InNamespace(system),
		client.MatchingLabels{"app.kubernetes.io/name": "flagops", "app.kubernetes.io/component": "manager"})).To(Succeed())
	return pods.Items
}

// newNamespace creates a namespace for the specs.
func newNamespace(prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func boolFlag(ns, key string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true},
	}
}

// The specs run in this order, in one ordered container: each needs what the previous made,
// and a failure skips the rest (the next run's BeforeSuite removes what is left).
var _ = Describe("flagops installed in the local cluster", Ordered, func() {
	It("installs (kubectl apply -k, or helm install with E2E_INSTALL=helm): two ready managers, one leader, the webhooks serve", func() {
		start := time.Now()
		install()
		Eventually(readyReplicas(managerName)).Should(BeEquivalentTo(2))
		Eventually(readyReplicas("flagops-evaluator")).Should(BeEquivalentTo(2))
		AddReportEntry("install until both Deployments ready", time.Since(start).Round(time.Second).String())

		Eventually(func(g Gomega) {
			holder := leader()
			g.Expect(holder).NotTo(BeEmpty())
			var names []string
			for _, p := range managerPods(g) {
				names = append(names, p.Name)
			}
			g.Expect(names).To(ContainElement(WithTransform(func(n string) bool {
				return len(holder) > len(n) && holder[:len(n)] == n
			}, BeTrue())), "leader %q is none of the pods %v", holder, names)
		}).Should(Succeed())

		ns := newNamespace("e2e-install-")
		// The CRD cannot check an RE2 pattern; only the validating webhook can.
		bad := boolFlag(ns, "webhook.probe")
		bad.Spec.Rules = []v1.Rule{{Name: "probe", Match: []v1.Condition{{Attribute: "email", Operator: v1.OperatorMatches, Values: []string{"(unclosed"}}}}}
		Eventually(func(g Gomega) {
			err := k8s.Create(ctx, bad.DeepCopy())
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(`admission webhook "vfeatureflag.flagops.dev" denied the request`))
			g.Expect(err.Error()).To(ContainSubstring(`invalid RE2 pattern "(unclosed"`))
		}).Should(Succeed())

		good := boolFlag(ns, "webhook.good")
		Expect(k8s.Create(ctx, good)).To(Succeed())
		Expect(good.Annotations).To(HaveKey(v1.AnnotationChangedBy), "the mutating webhook stamps the writer")
		Eventually(func(g Gomega) {
			var f v1.FeatureFlag
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(good), &f)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(f.Status.Conditions, v1.ConditionReady)).To(BeTrue(), "conditions %+v", f.Status.Conditions)
		}).Should(Succeed())
		// The webhook Service presents a certificate that the caBundle trusts.
		Eventually(func(g Gomega) { servedWebhookCert(g) }).Should(Succeed())
	})

	It("ships defaults kube-score accepts, and a PodDisruptionBudget that allows one disruption", defaultsSpec)
	Describe("the evaluator behind its Service", evaluatorSpecs)
	Describe("the aggregated roles", roleSpecs)
	It("runs kubectl flagops through the real kubectl: a viewer is refused, a set reaches the evaluator and the history, dry runs store nothing", pluginSpec)
	It("reports the samples healthy to kstatus (Flux) and to the Argo CD health checks", healthSpec)
	It("runs the sidecar component next to an application that reads its namespace's flags on localhost, and no other's", sidecarSpec)
	It("injects the sidecar into annotated pods and the pods of opted-in namespaces, fails closed for them only, and grants each only its namespace", injectSpec)
	It("elects a new leader within 30 s when the leader's pod is deleted, and the audit trail has no gap and no duplicate", failoverSpec)
	// The namespace controller deletes the flags' AuditCheckpoints while the flags wait for
	// the audit finalizer, and nothing can be created in a terminating namespace: the leader
	// must still record the deletions and release the flags (it once failed for ever here).
	It("deletes a namespace that holds flags (the audit finalizers are released)", func() {
		ns := newNamespace("e2e-nsdelete-")
		Expect(k8s.Create(ctx, boolFlag(ns, "nsdelete.flag"))).To(Succeed())
		Eventually(func(g Gomega) []string {
			var f v1.FeatureFlag
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nsdelete.flag"}, &f)).To(Succeed())
			return f.Finalizers
		}).Should(ContainElement(v1.FinalizerAudit))
		Expect(k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{}))
		}).Should(BeTrue(), "namespace %s stays Terminating", ns)
	})
	It("renews the webhook CA and certificate it made itself, and the webhooks keep serving", webhookCertSpec)
	It("reports what the pods used, each under its memory limit", usageSpec)
	It("uninstalls (kubectl delete -k, or helm uninstall), leaving no finalizer stuck and nothing behind", func() {
		start := time.Now()
		uninstall()
		AddReportEntry("uninstall", time.Since(start).Round(time.Second).String())
	})
})

// rawMerge is a JSON merge patch.
func rawMerge(patch string) client.Patch {
	return client.RawPatch(types.MergePatchType, []byte(patch))
}

// jsonValue is v as a flag value.
func jsonValue(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return &apiextensionsv1.JSON{Raw: raw}
}

// suiteNamespaces are the namespaces the specs made.
func suiteNamespaces(g Gomega) []corev1.Namespace {
	var all corev1.NamespaceList
	g.Expect(k8s.List(ctx, &all)).To(Succeed())
	var out []corev1.Namespace
	for _, n := range all.Items {
		if strings.HasPrefix(n.Name, "e2e-") {
			out = append(out, n)
		}
	}
	return out
}

// uninstall deletes the suite's flags and overrides while the manager still runs (it records
// each deletion and releases its finalizer), then the suite's namespaces, then everything
// config/default made with `kubectl delete -k`, and checks that nothing is left: no object
// of the suite, no flagops CRD, nothing labelled app.kubernetes.io/part-of=flagops.
//
// The objects go before their namespaces, so that every deletion is recorded with its
// checkpoint ("deletes a namespace that holds flags" checks the other way).
func uninstall() {
	GinkgoHelper()
	for _, n := range suiteNamespaces(Default) {
		for _, obj := range []client.Object{&v1.DeviceFlagOverride{}, &v1.UserFlagOverride{}, &v1.FeatureFlag{}} {
			Expect(k8s.DeleteAllOf(ctx, obj, client.InNamespace(n.Name))).To(Succeed())
		}
	}
	Eventually(func(g Gomega) []string {
		var left []string
		for _, n := range suiteNamespaces(g) {
			for _, list := range []client.ObjectList{&v1.DeviceFlagOverrideList{}, &v1.UserFlagOverrideList{}, &v1.FeatureFlagList{}} {
				g.Expect(k8s.List(ctx, list, client.InNamespace(n.Name))).To(Succeed())
				g.Expect(meta.EachListItem(list, func(o runtime.Object) error {
					m := o.(client.Object)
					left = append(left, fmt.Sprintf("%s/%s (finalizers %v)", m.GetNamespace(), m.GetName(), m.GetFinalizers()))
					return nil
				})).To(Succeed())
			}
		}
		return left
	}).Should(BeEmpty(), "a finalizer is stuck")
	for _, n := range suiteNamespaces(Default) {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, &n))).To(Succeed())
	}
	Eventually(suiteNamespaces).Should(BeEmpty())

	if installMode() == "helm" && released() {
		// helm uninstall removes what the release made; the namespace is not the release's.
		run(helmBin(), "uninstall", release, "--namespace", system, "--wait", "--timeout=5m")
		run("kubectl", "delete", "namespace", system, "--ignore-not-found", "--wait", "--timeout=5m")
	} else {
		// With kubectl, or what a failed run left with either (config/default's objects by
		// name, the release's record with the namespace).
		run("kubectl", "delete", "-k", overlay, "--ignore-not-found", "--wait", "--timeout=5m")
	}
	var crds apiextensionsv1.CustomResourceDefinitionList
	Expect(k8s.List(ctx, &crds)).To(Succeed())
	for _, c := range crds.Items {
		Expect(c.Spec.Group).NotTo(Equal("flagops.dev"), "CRD %s is left", c.Name)
	}
	Eventually(func() bool {
		err := k8s.Get(ctx, types.NamespacedName{Name: system}, &corev1.Namespace{})
		return apierrors.IsNotFound(err)
	}).Should(BeTrue(), "namespace %s is left", system)
	partOf := client.MatchingLabels{"app.kubernetes.io/part-of": "flagops"}
	for _, list := range []client.ObjectList{
		&rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{},
		&admissionv1.MutatingWebhookConfigurationList{}, &admissionv1.ValidatingWebhookConfigurationList{},
		&admissionv1.ValidatingAdmissionPolicyList{}, &admissionv1.ValidatingAdmissionPolicyBindingList{},
	} {
		Expect(k8s.List(ctx, list, partOf)).To(Succeed())
		Expect(meta.LenList(list)).To(BeZero(), "left behind: %T", list)
	}
}

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

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startAPIServer starts a test control plane without CRDs and returns a client and a
// kubeconfig file for it, of a user in system:masters.
func startAPIServer(t *testing.T) (client.Client, string) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, rest.CopyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return c, path
}

// TestHelmInstallUpgradeUninstall runs helm install, upgrade and uninstall of the chart
// against a real API server (envtest: no pods run, so nothing waits for them). It checks what
// docs/deploy.md#helm says of them:
//   - an upgrade leaves alone what the manager writes into the chart's objects: the webhook
//     certificate Secret's data and the webhook configurations' caBundle;
//   - helm uninstall keeps the CRDs and the admission policies (crds.keep, the default), and
//     a new install of the same release in the same namespace takes them back;
//   - after an upgrade with crds.keep=false, helm uninstall removes them too.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	c, kubeconfig := startAPIServer(t)
	ctx := context.Background()
	const ns = "feature-flags"
	helmOK := func(args ...string) string {
		t.Helper()
		out, stderr, err := helm(t, append(args, "--kubeconfig", kubeconfig)...)
		if err != nil {
			t.Fatalf("helm %v: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	install := []string{"install", "flagops", chartDir, "--namespace", ns, "--create-namespace",
		"--set-json", `evaluator.keys.jwks={"keys":[]}`}
	// The notes name the Secret still to create, and not the one the values made.
	notes := helmOK(install...)
	if !strings.Contains(notes, "kubectl -n feature-flags create secret generic flagops-audit-stamp-key") ||
		strings.Contains(notes, "flagops-evaluator-keys") {
		t.Errorf("helm install printed:\n%s", notes)
	}

	var keys corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flagops-evaluator-keys"}, &keys); err != nil {
		t.Fatalf("the keys Secret: %v", err)
	}
	// What the manager does at its start (internal/certs): it fills the Secret in and writes
	// the CA into the webhook configurations, with updates of its own.
	var cert corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flagops-webhook-server-cert"}, &cert); err != nil {
		t.Fatal(err)
	}
	cert.Data = map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key"), "ca.crt": []byte("ca")}
	if err := c.Update(ctx, &cert, client.FieldOwner("flagops-webhook-certs")); err != nil {
		t.Fatal(err)
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKey{Name: "flagops-validating-webhook-configuration"}, &vwc); err != nil {
		t.Fatal(err)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig.CABundle = []byte("ca")
		if ns := vwc.Webhooks[i].ClientConfig.Service.Namespace; ns != "feature-flags" {
			t.Errorf("webhook %s calls a Service in %q", vwc.Webhooks[i].Name, ns)
		}
	}
	if err := c.Update(ctx, &vwc, client.FieldOwner("flagops-webhook-certs")); err != nil {
		t.Fatal(err)
	}

	helmOK("upgrade", "flagops", chartDir, "--namespace", ns, "--reuse-values", "--set", "manager.replicas=3")
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: manager}, &d); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("after the upgrade the manager has %d replicas, want 3", *d.Spec.Replicas)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flagops-webhook-server-cert"}, &cert); err != nil {
		t.Fatal(err)
	}
	if string(cert.Data["tls.crt"]) != "cert" || string(cert.Data["ca.crt"]) != "ca" {
		t.Errorf("the upgrade changed the certificate Secret's data: %v", cert.Data)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "flagops-validating-webhook-configuration"}, &vwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range vwc.Webhooks {
		if string(w.ClientConfig.CABundle) != "ca" {
			t.Errorf("the upgrade changed the caBundle of %s to %q", w.Name, w.ClientConfig.CABundle)
		}
	}

	crds := func() int {
		t.Helper()
		var list apiextensionsv1.CustomResourceDefinitionList
		if err := c.List(ctx, &list); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, crd := range list.Items {
			if crd.Spec.Group == "flagops.dev" && crd.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}
	gone := func(obj client.Object, name string) {
		t.Helper()
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after helm uninstall: %v", obj, name, err)
		}
	}

	helmOK("uninstall", "flagops", "--namespace", ns)
	if n := crds(); n != 4 {
		t.Errorf("helm uninstall with crds.keep=true left %d flagops CRDs, want 4", n)
	}
	var policy admissionv1.ValidatingAdmissionPolicy
	if err := c.Get(ctx, client.ObjectKey{Name: "featureflag-values.flagops.dev"}, &policy); err != nil {
		t.Errorf("helm uninstall with crds.keep=true removed the admission policy: %v", err)
	}
	gone(&appsv1.Deployment{}, manager)
	gone(&rbacv1.ClusterRole{}, "flagops-manager-role")

	helmOK(install...)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: manager}, &d); err != nil {
		t.Errorf("after a new install over the kept CRDs: %v", err)
	}

	helmOK("upgrade", "flagops", chartDir, "--namespace", ns, "--reuse-values", "--set", "crds.keep=false")
	helmOK("uninstall", "flagops", "--namespace", ns, "--wait")
	if n := crds(); n != 0 {
		t.Errorf("helm uninstall with crds.keep=false left %d flagops CRDs", n)
	}
	gone(&admissionv1.ValidatingAdmissionPolicy{}, "featureflag-values.flagops.dev")
	gone(&corev1.Secret{}, "flagops-evaluator-keys")
}

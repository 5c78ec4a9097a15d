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
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flagopsv1alpha1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// evaluatorIdentity is the ServiceAccount of config/evaluator.
const evaluatorIdentity = "system:serviceaccount:flagops-system:flagops-evaluator"

// TestEvaluatorOnEnvtest runs `flagops evaluator` as the ServiceAccount of config/evaluator,
// with only the RBAC shipped there (the YAML files themselves), and checks that it serves
// the flags of every namespace (or of --namespaces only), follows later writes, and that
// its identity may not write flags or overrides, nor read Secrets.
func TestEvaluatorOnEnvtest(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	root := filepath.Join("..", "..")
	cfg, admin := startEnvtest(t, g)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, ns := range []string{"flagops-system", "shop", "billing"} {
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	for _, ns := range []string{"shop", "billing"} {
		g.Expect(admin.Create(ctx, &flagopsv1alpha1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ns + ".enabled"},
			Spec:       flagopsv1alpha1.FeatureFlagSpec{Type: "Boolean", Enabled: true},
		})).To(Succeed())
	}
	entries := []flagopsv1alpha1.FlagOverrideEntry{{Key: "shop.enabled", Enabled: ptr.To(false)}}
	g.Expect(admin.Create(ctx, &flagopsv1alpha1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "user-1"},
		Spec:       flagopsv1alpha1.UserFlagOverrideSpec{UserID: "u1", FlagOverrideSpec: flagopsv1alpha1.FlagOverrideSpec{Flags: entries}},
	})).To(Succeed())
	g.Expect(admin.Create(ctx, &flagopsv1alpha1.DeviceFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "device-1"},
		Spec:       flagopsv1alpha1.DeviceFlagOverrideSpec{DeviceID: "d1", FlagOverrideSpec: flagopsv1alpha1.FlagOverrideSpec{Flags: entries}},
	})).To(Succeed())
	g.Expect(admin.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flagops-system", Name: "flagops-evaluator-keys"},
		StringData: map[string]string{"jwks.json": `{"keys":[]}`},
	})).To(Succeed())

	// The ServiceAccount and RBAC of config/evaluator, as shipped.
	files, err := testenv.YAMLFiles(filepath.Join(root, "config", "evaluator"))
	g.Expect(err).NotTo(HaveOccurred())
	objs, err := testenv.ReadObjects(files...)
	g.Expect(err).NotTo(HaveOccurred())
	var kinds []string
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			kinds = append(kinds, o.GetKind())
			g.Expect(admin.Create(ctx, o)).To(Succeed())
		}
	}
	g.Expect(kinds).To(ConsistOf("ServiceAccount", "ClusterRole", "ClusterRoleBinding"))

	evalCfg := rest.CopyConfig(cfg)
	evalCfg.Impersonate = rest.ImpersonationConfig{
		UserName: evaluatorIdentity,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:flagops-system", "system:authenticated"},
	}

	// start runs an evaluator with args and returns a function that calls it.
	start := func(args ...string) func(method, path string) func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		g.Expect(err).NotTo(HaveOccurred())
		o, err := parseEvaluatorFlags(append([]string{"--evaluator-bind-address=" + ln.Addr().String(), "--health-probe-bind-address=0", "--insecure-no-auth"}, args...), io.Discard, io.Discard)
		g.Expect(err).NotTo(HaveOccurred())
		mgr, err := newServingManager(evalCfg, o.serving(), ln)
		g.Expect(err).NotTo(HaveOccurred())
		startManager(t, g, ctx, mgr)
		base := "http://" + ln.Addr().String()
		// The returned function returns "<status> <body>" of a request.
		return func(method, path string) func() string {
			return func() string {
				req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(`{"context":{"userId":"u2"}}`))
				if err != nil {
					return err.Error()
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err.Error()
				}
				defer closeOrFail(t, resp.Body)
				b, _ := io.ReadAll(resp.Body)
				return fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
		}
	}

	all := start()
	g.Eventually(all(http.MethodGet, "/readyz")).Should(HavePrefix("200 "))
	g.Expect(all(http.MethodGet, "/healthz")()).To(HavePrefix("200 "))
	g.Expect(all(http.MethodPost, "/namespaces/shop/v1/evaluate")()).To(And(HavePrefix("200 "), ContainSubstring(`"shop.enabled"`)))
	g.Expect(all(http.MethodPost, "/namespaces/billing/v1/evaluate")()).To(And(HavePrefix("200 "), ContainSubstring(`"billing.enabled"`)))
	g.Expect(all(http.MethodPost, "/v1/evaluate")()).To(And(HavePrefix("404 "), ContainSubstring("NAMESPACE_NOT_FOUND")), "the unprefixed routes serve namespace default, which has no flags")

	only := start("--namespaces=shop")
	g.Eventually(only(http.MethodGet, "/readyz")).Should(HavePrefix("200 "))
	g.Expect(only(http.MethodPost, "/v1/evaluate")()).To(And(HavePrefix("200 "), ContainSubstring(`"shop.enabled"`)), "the one namespace of --namespaces is the default")
	g.Expect(only(http.MethodPost, "/namespaces/billing/v1/evaluate")()).To(And(HavePrefix("404 "), ContainSubstring("NAMESPACE_NOT_FOUND")))

	// A later write reaches the evaluators.
	g.Expect(admin.Create(ctx, &flagopsv1alpha1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "billing.new"},
		Spec:       flagopsv1alpha1.FeatureFlagSpec{Type: "Boolean", Enabled: true},
	})).To(Succeed())
	g.Eventually(all(http.MethodPost, "/namespaces/billing/v1/evaluate")).Should(ContainSubstring(`"billing.new"`))

	// Overrides reach the serving modes from their watch, without a cache: a creation, a
	// change, and a deletion that waits on a finalizer, in both evaluators (the requests
	// evaluate for user u2).
	u2 := &flagopsv1alpha1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "user-2", Finalizers: []string{"example.com/hold"}},
		Spec:       flagopsv1alpha1.UserFlagOverrideSpec{UserID: "u2", FlagOverrideSpec: flagopsv1alpha1.FlagOverrideSpec{Flags: entries}},
	}
	g.Expect(admin.Create(ctx, u2)).To(Succeed())
	servedBy := func(value string) string {
		return `"shop.enabled":\{"value":` + value + `[^}]*"source":"user-override:shop/user-2"`
	}
	evaluators := map[string]func(method, path string) func() string{"all": all, "shop": only}
	for name, ev := range evaluators {
		g.Eventually(ev(http.MethodPost, "/namespaces/shop/v1/evaluate")).Should(MatchRegexp(servedBy("false")), "evaluator %s after the creation", name)
	}
	u2.Spec.Flags = []flagopsv1alpha1.FlagOverrideEntry{{Key: "shop.enabled", Enabled: ptr.To(true)}}
	g.Expect(admin.Update(ctx, u2)).To(Succeed())
	for name, ev := range evaluators {
		g.Eventually(ev(http.MethodPost, "/namespaces/shop/v1/evaluate")).Should(MatchRegexp(servedBy("true")), "evaluator %s after the change", name)
	}
	g.Expect(admin.Delete(ctx, u2)).To(Succeed())
	for name, ev := range evaluators {
		g.Eventually(ev(http.MethodPost, "/namespaces/shop/v1/evaluate")).ShouldNot(ContainSubstring("user-override:shop/user-2"), "evaluator %s while the override is being deleted", name)
	}
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(u2), u2)).To(Succeed(), "the finalizer holds the override")
	u2.Finalizers = nil
	g.Expect(admin.Update(ctx, u2)).To(Succeed())

	// What the evaluator's identity may not do.
	ev, err := client.New(evalCfg, client.Options{Scheme: newScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.List(ctx, &flagopsv1alpha1.FeatureFlagList{})).To(Succeed(), "it may read flags")
	existing := map[string]client.Object{
		"FeatureFlag":        &flagopsv1alpha1.FeatureFlag{},
		"UserFlagOverride":   &flagopsv1alpha1.UserFlagOverride{},
		"DeviceFlagOverride": &flagopsv1alpha1.DeviceFlagOverride{},
	}
	names := map[string]string{"FeatureFlag": "shop.enabled", "UserFlagOverride": "user-1", "DeviceFlagOverride": "device-1"}
	for kind, obj := range existing {
		g.Expect(admin.Get(ctx, types.NamespacedName{Namespace: "shop", Name: names[kind]}, obj)).To(Succeed())
	}
	fresh := func(kind string) client.Object {
		o := existing[kind].DeepCopyObject().(client.Object)
		o.SetName(names[kind] + "-new")
		o.SetResourceVersion("")
		o.SetUID("")
		return o
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"evaluator":"was-here"}}}`))
	type attempt struct {
		name string
		do   func() error
	}
	var attempts []attempt
	for _, kind := range []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"} {
		obj := existing[kind]
		attempts = append(attempts,
			attempt{"create a " + kind, func() error { return ev.Create(ctx, fresh(kind)) }},
			attempt{"update a " + kind, func() error { return ev.Update(ctx, obj.DeepCopyObject().(client.Object)) }},
			attempt{"patch a " + kind, func() error { return ev.Patch(ctx, obj.DeepCopyObject().(client.Object), patch) }},
			attempt{"patch the status of a " + kind, func() error {
				return ev.Status().Patch(ctx, obj.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, []byte(`{"status":{}}`)))
			}},
			attempt{"delete a " + kind, func() error { return ev.Delete(ctx, obj.DeepCopyObject().(client.Object)) }},
		)
	}
	attempts = append(attempts,
		attempt{"read the keys Secret", func() error {
			return ev.Get(ctx, types.NamespacedName{Namespace: "flagops-system", Name: "flagops-evaluator-keys"}, &corev1.Secret{})
		}},
		attempt{"list Secrets", func() error { return ev.List(ctx, &corev1.SecretList{}) }},
	)
	for _, a := range attempts {
		err := a.do()
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s as %s: got %v, want Forbidden", a.name, evaluatorIdentity, err)
	}
	// Nothing changed: the flag is still served, unlabelled.
	g.Expect(admin.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "shop.enabled"}, existing["FeatureFlag"])).To(Succeed())
	g.Expect(existing["FeatureFlag"].GetLabels()).NotTo(HaveKey("evaluator"))
}

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	flagopsv1alpha1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// controller-runtime's global logger takes only the first logger set. Set it before any test
// runs a command, which would point it at the test's unsynchronized stderr buffer: the
// manager of TestSidecarOnEnvtest logs through it from many goroutines.
func init() { ctrl.SetLogger(logr.Discard()) }

// TestSidecarOnEnvtest runs the sidecar's manager as the ServiceAccount of config/sidecar,
// with only the Role granted there, and checks that it serves its own namespace's flags,
// on the unprefixed routes, and no other namespace's.
func TestSidecarOnEnvtest(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(20 * time.Second)
	g.SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	root := filepath.Join("..", "..")
	cfg, admin := startEnvtest(t, g)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, ns := range []string{"shop", "billing"} {
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(admin.Create(ctx, &flagopsv1alpha1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ns + ".enabled"},
			Spec:       flagopsv1alpha1.FeatureFlagSpec{Type: "Boolean", Enabled: true},
		})).To(Succeed())
	}
	// config/sidecar in namespace shop.
	files, err := testenv.YAMLFiles(filepath.Join(root, "config", "sidecar"))
	g.Expect(err).NotTo(HaveOccurred())
	var rbac []string
	for _, f := range files {
		if filepath.Base(f) != "deployment_patch.yaml" {
			rbac = append(rbac, f)
		}
	}
	objs, err := testenv.ReadObjects(rbac...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(3))
	for _, o := range objs {
		o.SetNamespace("shop")
		if subjects, ok := o.Object["subjects"].([]any); ok {
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = "shop"
			}
		}
		g.Expect(admin.Create(ctx, o)).To(Succeed())
	}

	sidecarCfg := rest.CopyConfig(cfg)
	sidecarCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:shop:flagops-sidecar"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	o, err := parseSidecarFlags([]string{"--evaluator-bind-address=" + ln.Addr().String(), "--insecure-no-auth"},
		sidecarEnv{getenv: envMap{"POD_NAMESPACE": "shop"}.get, readFile: os.ReadFile}, io.Discard, io.Discard)
	g.Expect(err).NotTo(HaveOccurred())
	mgr, err := newSidecarManager(sidecarCfg, o, ln)
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, g, ctx, mgr)

	base := "http://" + ln.Addr().String()
	// call returns "<status> <body>" of a request.
	call := func(method, path string) func() string {
		return func() string {
			req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader("{}"))
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
	g.Eventually(call(http.MethodGet, "/readyz")).Should(HavePrefix("200 "))
	g.Expect(call(http.MethodPost, "/v1/evaluate")()).To(And(HavePrefix("200 "), ContainSubstring(`"shop.enabled"`)))
	g.Expect(call(http.MethodPost, "/namespaces/shop/v1/evaluate")()).To(And(HavePrefix("200 "), Not(ContainSubstring("billing"))))
	g.Expect(call(http.MethodPost, "/namespaces/billing/v1/evaluate")()).To(And(HavePrefix("404 "), ContainSubstring("NAMESPACE_NOT_FOUND")))

	// A later write reaches the sidecar.
	g.Expect(admin.Create(ctx, &flagopsv1alpha1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop.new"},
		Spec:       flagopsv1alpha1.FeatureFlagSpec{Type: "Boolean", Enabled: true},
	})).To(Succeed())
	g.Eventually(call(http.MethodPost, "/v1/evaluate")).Should(And(HavePrefix("200 "), ContainSubstring(`"shop.new"`)))
}

type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

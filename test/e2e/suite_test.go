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

// Package e2e tests flagops end to end on a real kube-apiserver and etcd (envtest): writes
// made through client-go reach the controllers, the evaluator store and, through the
// evaluator's HTTP server, the devices' event streams.
package e2e

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/test/testenv"
)

var (
	ctx      context.Context
	repoRoot = filepath.Join("..", "..")

	// dyn and kube are the client-go clients the specs write with.
	dyn  dynamic.Interface
	kube kubernetes.Interface
	// evaluatorURL is the base URL of the evaluator's HTTP server.
	evaluatorURL string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1.AddToScheme(scheme)).To(Succeed())

	testEnv := testenv.New(repoRoot)
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(testenv.InstallPolicies(ctx, c, repoRoot)).To(Succeed())
	testenv.WaitForPolicies(ctx, c)

	dyn, err = dynamic.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	kube, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())

	// The manager as `flagops manager` runs it, without webhooks (envtest has no route to them).
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: controllers.StripForCache},
	})
	Expect(err).NotTo(HaveOccurred())
	store := evaluator.NewStore()
	syncer, err := controllers.Setup(ctx, mgr, controllers.Options{
		Store: store,
		Audit: audit.NewMemory(),
		Self:  audit.Actor{Username: "system:serviceaccount:flagops-system:flagops-controller-manager"},
	})
	Expect(err).NotTo(HaveOccurred())

	srv := httptest.NewServer(server.New(store, server.Options{
		DefaultNamespace: "default",
		Metrics:          controllers.StreamMetrics{},
	}))
	DeferCleanup(srv.Close)
	evaluatorURL = srv.URL

	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	DeferCleanup(func() {
		stop()
		Eventually(done).Should(BeClosed())
	})
	Eventually(syncer.Synced).Should(BeTrue())
})

func init() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(10 * time.Millisecond)
}

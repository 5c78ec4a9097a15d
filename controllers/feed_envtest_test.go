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

package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

var _ = Describe("The serving sync", func() {
	It("feeds the overrides of its namespace to the store from their watch, without a cache of them", func() {
		ns, other := newNamespace(), newNamespace()
		for _, n := range []string{ns, other} {
			Expect(k8sClient.Create(ctx, boolFlag(n, "x", true))).To(Succeed())
		}
		Expect(k8sClient.Create(ctx, userOverride(ns, "before", "alice", entry("x", false)))).To(Succeed())
		Expect(k8sClient.Create(ctx, userOverride(other, "before", "alice", entry("x", false)))).To(Succeed())

		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}, DefaultTransform: ServingTransform},
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		store := evaluator.NewStore()
		s, err := SetupServingSync(mgr, store, []string{ns})
		Expect(err).NotTo(HaveOccurred())
		mgrCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(mgrCtx)).To(Succeed())
		}()
		DeferCleanup(func() {
			cancel()
			Eventually(done).Should(BeClosed(), goroutines)
		})
		Eventually(s.Synced).Should(BeTrue())

		served := func(n, user string) func() any {
			return func() any { return store.Evaluate(n, evaluator.Context{UserID: user}, "x").Value }
		}
		Expect(served(ns, "alice")()).To(Equal(false), "an override that existed at the start")
		Expect(served(other, "alice")()).To(BeNil(), "another namespace is not fed")

		bob := userOverride(ns, "bob", "bob", entry("x", false))
		dev := deviceOverride(ns, "dev", "phone-1", entry("x", false))
		Expect(k8sClient.Create(ctx, bob)).To(Succeed())
		Expect(k8sClient.Create(ctx, dev)).To(Succeed())
		Eventually(served(ns, "bob")).Should(Equal(false), "a creation")
		Eventually(func() any {
			return store.Evaluate(ns, evaluator.Context{DeviceID: "phone-1", DeviceClass: "phone"}, "x").Value
		}).Should(Equal(false), "a device override's creation")

		before := bob.DeepCopy()
		bob.Spec.Flags = []v1.FlagOverrideEntry{entry("x", true)}
		Expect(k8sClient.Patch(ctx, bob, client.MergeFrom(before))).To(Succeed())
		Eventually(served(ns, "bob")).Should(Equal(true), "a change")

		Expect(k8sClient.Delete(ctx, bob)).To(Succeed())
		Expect(k8sClient.Delete(ctx, dev)).To(Succeed())
		Eventually(func() bool {
			return store.Evaluate(ns, evaluator.Context{UserID: "bob"}, "x").Source != evaluator.SourceUserOverride+ns+"/bob"
		}).Should(BeTrue(), "a deletion")
		Eventually(func() any {
			return store.Evaluate(ns, evaluator.Context{DeviceID: "phone-1", DeviceClass: "phone"}, "x").Value
		}).Should(Equal(true), "a device override's deletion")
	})
})

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
	"fmt"
	"maps"
	"slices"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
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

		var cached recordingCache
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}, DefaultTransform: ServingTransform},
			NewCache:               cached.newCache,
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		store := evaluator.NewStore()
		s, err := SetupServingSync(mgr, store, []string{ns})
		Expect(err).NotTo(HaveOccurred())
		runManager(ctx, mgr)
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
		Expect(cached.types()).To(ContainElement("*v1alpha1.FeatureFlag"), "the flags go through the cache")
		Expect(cached.types()).NotTo(ContainElements(ContainSubstring("Override")), "nothing asks the cache for overrides")
	})
})

// recordingCache records the types of the objects that anything asks a manager's cache
// for (an informer, a read or a list).
type recordingCache struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *recordingCache) newCache(cfg *rest.Config, o cache.Options) (cache.Cache, error) {
	c, err := cache.New(cfg, o)
	return &recordingCacheOf{Cache: c, r: r}, err
}

func (r *recordingCache) note(obj any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[fmt.Sprintf("%T", obj)] = true
}

func (r *recordingCache) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.seen))
}

type recordingCacheOf struct {
	cache.Cache
	r *recordingCache
}

func (c *recordingCacheOf) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	c.r.note(obj)
	return c.Cache.GetInformer(ctx, obj, opts...)
}

func (c *recordingCacheOf) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.r.note(obj)
	return c.Cache.Get(ctx, key, obj, opts...)
}

func (c *recordingCacheOf) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.r.note(list)
	return c.Cache.List(ctx, list, opts...)
}

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
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

var _ = Describe("Bulk import", func() {
	// A bulk import waited on one override's API round trips at a time (hack/scale,
	// docs/capacity.md): the override controller must write several at once.
	It("adds the audit finalizers of several overrides at once", func() {
		ns, iso := newNamespace(), "bulk-import"
		const together, overrides = 4, 8
		var inFlight, most atomic.Int32
		// Each finalizer patch of this spec's overrides waits (up to 10 s) until `together`
		// of them are in flight, and records the most seen at once.
		holdPatches := interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*v1.UserFlagOverride); ok && obj.GetLabels()[isolationLabel] == iso {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for cur := most.Load(); n > cur && !most.CompareAndSwap(cur, n); cur = most.Load() {
				}
				deadline := time.Now().Add(10 * time.Second)
				for inFlight.Load() < together && most.Load() < together && time.Now().Before(deadline) {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
			return c.Patch(ctx, obj, patch, opts...)
		}}
		startManager(ctx, managerConfig{isolation: iso, newClient: func(cfg *rest.Config, o client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, o)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, holdPatches), nil
		}})

		Expect(k8sClient.Create(ctx, isolate(boolFlag(ns, "bulk.flag", false), iso))).To(Succeed())
		for i := range overrides {
			o := isolate(userOverride(ns, fmt.Sprintf("o%d", i), fmt.Sprintf("user-%d", i), entry("bulk.flag", true)), iso)
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			var list v1.UserFlagOverrideList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(overrides))
			for _, o := range list.Items {
				g.Expect(o.Finalizers).To(ContainElement(v1.FinalizerAudit), o.Name)
			}
		}).WithTimeout(time.Minute).Should(Succeed())
		Expect(most.Load()).To(BeNumerically(">=", together), "finalizer patches in flight at once")
	})
})

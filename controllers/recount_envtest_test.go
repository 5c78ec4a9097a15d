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
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

var _ = Describe("Override counts", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	counts := func(name string) func(g Gomega) [2]int32 {
		return func(g Gomega) [2]int32 {
			f := &v1.FeatureFlag{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, f)).To(Succeed())
			return [2]int32{f.Status.UserOverrides, f.Status.DeviceOverrides}
		}
	}

	// inParallel runs fn(i) for i in [0, n) on 8 goroutines.
	inParallel := func(n int, fn func(i int)) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := range next {
					fn(i)
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
	}

	It("converge after many overrides are created and deleted at once", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "bulk", false))).To(Succeed())
		Eventually(counts("bulk")).Should(Equal([2]int32{0, 0}))

		const users, devices = 120, 40
		inParallel(users+devices, func(i int) {
			if i < users {
				Expect(k8sClient.Create(ctx, userOverride(ns, fmt.Sprintf("u-%03d", i), fmt.Sprintf("user-%03d", i), entry("bulk", true)))).To(Succeed())
				return
			}
			Expect(k8sClient.Create(ctx, deviceOverride(ns, fmt.Sprintf("d-%03d", i), fmt.Sprintf("device-%03d", i), entry("bulk", true)))).To(Succeed())
		})
		// Not counted: a disabled override, and one whose entry names another flag.
		disabled := userOverride(ns, "disabled", "user-x", entry("bulk", true))
		disabled.Spec.Enabled = ptr.To(false)
		Expect(k8sClient.Create(ctx, disabled)).To(Succeed())
		Expect(k8sClient.Create(ctx, userOverride(ns, "other", "user-y", entry("missing", true)))).To(Succeed())
		Eventually(counts("bulk")).Should(Equal([2]int32{users, devices}))

		inParallel(users/2, func(i int) {
			Expect(k8sClient.Delete(ctx, userOverride(ns, fmt.Sprintf("u-%03d", 2*i), "", entry("bulk", true)))).To(Succeed())
		})
		Expect(k8sClient.Delete(ctx, deviceOverride(ns, fmt.Sprintf("d-%03d", users), "", entry("bulk", true)))).To(Succeed())
		Eventually(counts("bulk")).Should(Equal([2]int32{users / 2, devices - 1}))

		// The counts come from the store, ahead of the override controller, which audits and
		// reports on each of these overrides in turn. Wait until it is done, so that the specs
		// after this one do not queue behind it on a busy machine; this spec takes the time.
		Eventually(func(g Gomega) {
			userList, deviceList := &v1.UserFlagOverrideList{}, &v1.DeviceFlagOverrideList{}
			g.Expect(k8sClient.List(ctx, userList, client.InNamespace(ns))).To(Succeed())
			g.Expect(k8sClient.List(ctx, deviceList, client.InNamespace(ns))).To(Succeed())
			g.Expect(userList.Items).To(HaveLen(users/2+2), "the deleted overrides are finalized")
			g.Expect(deviceList.Items).To(HaveLen(devices - 1))
			for _, o := range userList.Items {
				g.Expect(o.Status.ObservedGeneration).To(Equal(o.Generation), "user override %s", o.Name)
			}
			for _, o := range deviceList.Items {
				g.Expect(o.Status.ObservedGeneration).To(Equal(o.Generation), "device override %s", o.Name)
			}
		}).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	It("move when an override changes flag, and when a conflict ends", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "from", false))).To(Succeed())
		Expect(k8sClient.Create(ctx, boolFlag(ns, "to", false))).To(Succeed())
		first := userOverride(ns, "a-first", "user-1", entry("from", true))
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		Eventually(counts("from")).Should(Equal([2]int32{1, 0}))
		// A second override of the same subject and flag loses the conflict: still one.
		second := userOverride(ns, "b-second", "user-1", entry("from", false))
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(second), got)).To(Succeed())
			g.Expect(condition(got.Status.Conditions, v1.ConditionConflict).Reason).To(Equal(v1.ReasonOverrideConflict))
		}).Should(Succeed())
		Expect(counts("from")(Default)).To(Equal([2]int32{1, 0}))

		// The winner moves to the other flag: the loser now decides "from", and "to" counts one.
		patchSpec(first, func(o *v1.UserFlagOverride) { o.Spec.Flags = []v1.FlagOverrideEntry{entry("to", true)} })
		Eventually(counts("to")).Should(Equal([2]int32{1, 0}))
		Eventually(func(g Gomega) {
			got := &v1.UserFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(second), got)).To(Succeed())
			g.Expect(got.Status.AppliedKeys).To(Equal([]string{"from"}))
			g.Expect(condition(got.Status.Conditions, v1.ConditionConflict).Reason).To(Equal(v1.ReasonNoConflict))
		}).Should(Succeed())
		Expect(counts("from")(Default)).To(Equal([2]int32{1, 0}))
		Expect(k8sClient.Delete(ctx, second)).To(Succeed())
		Eventually(counts("from")).Should(Equal([2]int32{0, 0}))
	})
})

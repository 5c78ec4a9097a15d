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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flagops/flagops/evaluator"
)

var _ = Describe("The initial sync", func() {
	It("applies the objects that exist at the start in one commit, and the sync controllers do not sync them again", func() {
		ns := newNamespace()
		iso := "initial-" + ns
		const n = 40
		Expect(k8sClient.Create(ctx, isolate(boolFlag(ns, "x", true), iso))).To(Succeed())
		for i := range n {
			Expect(k8sClient.Create(ctx, isolate(userOverride(ns, fmt.Sprintf("u%d", i), fmt.Sprintf("user-%d", i), entry("x", false)), iso))).To(Succeed())
			Expect(k8sClient.Create(ctx, isolate(deviceOverride(ns, fmt.Sprintf("d%d", i), fmt.Sprintf("dev-%d", i), entry("x", false)), iso))).To(Succeed())
		}

		m := startManager(ctx, managerConfig{isolation: iso})
		Expect(m.store.Evaluate(ns, evaluator.Context{UserID: "user-7"}, "x").Value).To(Equal(false))
		_, ok := m.syncer.SyncedGeneration(KindDeviceFlagOverride, types.NamespacedName{Namespace: ns, Name: "d7"})
		Expect(ok).To(BeTrue(), "a device override of the initial list in the store")
		rev := m.store.Snapshot().Revision()

		// One object of each kind created after the start: each sync controller handles its
		// events in order, so once the store has them, the initial list's events (and the
		// lifecycle controllers' finalizer and status writes so far) have been handled.
		markers := map[Kind]client.Object{
			KindFeatureFlag:        isolate(boolFlag(ns, "marker", true), iso),
			KindUserFlagOverride:   isolate(userOverride(ns, "marker", "user-m", entry("x", true)), iso),
			KindDeviceFlagOverride: isolate(deviceOverride(ns, "marker", "dev-m", entry("x", true)), iso),
		}
		for kind, obj := range markers {
			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), "%s marker", kind)
		}
		Eventually(func(g Gomega) {
			for kind, obj := range markers {
				_, ok := m.syncer.SyncedGeneration(kind, client.ObjectKeyFromObject(obj))
				g.Expect(ok).To(BeTrue(), "%s marker in the store", kind)
			}
		}).Should(Succeed())

		// Without the predicate, each of the 2n+1 objects of the initial list was synced again
		// (and each status write committed again to the store).
		Expect(m.syncer.Syncs()).To(BeNumerically("<=", 2*len(markers)),
			"Sync calls for %d objects at the start and %d markers", 2*n+1, len(markers))
		Expect(m.store.Snapshot().Revision()-rev).To(Equal(uint64(len(markers))),
			"store commits after the initial sync: one per marker")
	})
})

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
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// isolate labels obj for the managers of one spec.
func isolate[T client.Object](obj T, isolation string) T {
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[isolationLabel] = isolation
	obj.SetLabels(l)
	return obj
}

// ids lists the IDs of records, and fails if any appears twice.
func uniqueIDs(g Gomega, recs []audit.Record) []string {
	var ids []string
	for _, r := range recs {
		g.Expect(ids).NotTo(ContainElement(r.ID), "audit record %s (%s) appears twice", r.ID, r.Action)
		ids = append(ids, r.ID)
	}
	return ids
}

func isElected(m *testManager) bool {
	select {
	case <-m.elected:
		return true
	default:
		return false
	}
}

var _ = Describe("Restart", func() {
	It("audits exactly the changes made while the manager was down, once each", func() {
		ns, iso := newNamespace(), "restart"
		sink := audit.NewMemory()
		m1 := startManager(ctx, managerConfig{isolation: iso, sink: sink})

		flag := isolate(boolFlag(ns, "beta.dash", false), iso)
		Expect(k8sClient.Create(ctx, flag)).To(Succeed())
		o1 := isolate(userOverride(ns, "o1", "user-1", entry("beta.dash", true)), iso)
		Expect(k8sClient.Create(ctx, o1)).To(Succeed())
		Eventually(func(g Gomega) {
			for _, obj := range []client.Object{&v1.UserFlagOverride{}, &v1.FeatureFlag{}} {
				key := client.ObjectKeyFromObject(o1)
				if _, ok := obj.(*v1.FeatureFlag); ok {
					key = client.ObjectKeyFromObject(flag)
				}
				g.Expect(k8sClient.Get(ctx, key, obj)).To(Succeed())
				g.Expect(obj.GetFinalizers()).To(ContainElement(v1.FinalizerAudit))
				ck := checkpointOf(g, obj)
				g.Expect(ck.Spec.Generation).To(Equal(obj.GetGeneration()))
				g.Expect(ck.Spec.Pending).To(BeEmpty())
			}
			g.Expect(actionsIn(sink, ns)).To(ConsistOf(audit.ActionFlagCreated, audit.ActionUserOverrideCreated))
		}).Should(Succeed())
		m1.stop()

		// While the manager is down: update o1, delete the flag, create o2, and create o3 with
		// the audit finalizer, as the changed-by webhook does, and delete it.
		patchSpec(o1, func(o *v1.UserFlagOverride) { o.Spec.Flags = []v1.FlagOverrideEntry{entry("beta.dash", false)} })
		Expect(k8sClient.Delete(ctx, flag)).To(Succeed())
		o2 := isolate(userOverride(ns, "o2", "user-2", entry("beta.dash", true)), iso)
		Expect(k8sClient.Create(ctx, o2)).To(Succeed())
		o3 := isolate(userOverride(ns, "o3", "user-3", entry("beta.dash", true)), iso)
		o3.Finalizers = []string{v1.FinalizerAudit}
		Expect(k8sClient.Create(ctx, o3)).To(Succeed())
		Expect(k8sClient.Delete(ctx, o3)).To(Succeed())
		Expect(actionsIn(sink, ns)).To(HaveLen(2))

		startManager(ctx, managerConfig{isolation: iso, sink: sink})
		want := []audit.Action{audit.ActionFlagCreated, audit.ActionUserOverrideCreated,
			audit.ActionUserOverrideUpdated, audit.ActionFlagDeleted, audit.ActionUserOverrideCreated,
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideDeleted}
		Eventually(func() []audit.Action { return actionsIn(sink, ns) }).Should(ConsistOf(want))
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(o3), &v1.UserFlagOverride{}) }).Should(Satisfy(apierrors.IsNotFound))
		Consistently(func(g Gomega) {
			recs := recordsIn(sink, ns)
			g.Expect(recs).To(HaveLen(len(want)))
			uniqueIDs(g, recs)
		}).Should(Succeed())

		// The update's before-values come from what was audited before the restart.
		for _, r := range recordsIn(sink, ns) {
			if r.Action == audit.ActionUserOverrideUpdated {
				Expect(r.Before).To(HaveKeyWithValue("beta.dash", MatchJSON(`{"enabled":true}`)))
				Expect(r.After).To(HaveKeyWithValue("beta.dash", MatchJSON(`{"enabled":false}`)))
			}
		}
	})
})

var _ = Describe("Leader election", func() {
	It("serves identical evaluations on both replicas, audits on the leader only, and hands over expiry", func() {
		ns, iso := newNamespace(), "leader"
		lease := "flagops-test-" + ns
		sinkA, sinkB := audit.NewMemory(), audit.NewMemory()
		a := startManager(ctx, managerConfig{isolation: iso, sink: sinkA, leaderElection: lease})
		b := startManager(ctx, managerConfig{isolation: iso, sink: sinkB, leaderElection: lease})
		Eventually(func() bool { return isElected(a) || isElected(b) }).Should(BeTrue())
		leader, follower := a, b
		if isElected(b) {
			leader, follower = b, a
		}
		// The Lease's renewals reach the leader's fence; the follower never held it.
		Eventually(leader.leaseHeld).Should(BeTrue())
		Expect(follower.leaseHeld()).To(BeFalse())

		Expect(k8sClient.Create(ctx, isolate(boolFlag(ns, "beta.dash", false), iso))).To(Succeed())
		Expect(k8sClient.Create(ctx, isolate(userOverride(ns, "pilot", "user-1", entry("beta.dash", true)), iso))).To(Succeed())
		ctxs := []evaluator.Context{{UserID: "user-1"}, {UserID: "user-2"}}
		Eventually(func(g Gomega) {
			for _, c := range ctxs {
				ra, rb := a.store.Evaluate(ns, c, "beta.dash"), b.store.Evaluate(ns, c, "beta.dash")
				g.Expect(ra.ErrorCode).To(BeZero())
				g.Expect(ra).To(Equal(rb))
			}
			g.Expect(a.store.Evaluate(ns, ctxs[0], "beta.dash").Value).To(Equal(true))
		}).Should(Succeed())

		Eventually(func() []audit.Action { return actionsIn(leader.audit, ns) }).
			Should(ConsistOf(audit.ActionFlagCreated, audit.ActionUserOverrideCreated))
		Consistently(func() int { return len(recordsIn(follower.audit, ns)) }).Should(BeZero())

		// An expiry that falls due during the failover is recorded once, by the new leader. It
		// is far enough ahead that a slow leader still records the creation before it.
		short := isolate(userOverride(ns, "short", "user-3", entry("beta.dash", true)), iso)
		short.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(5 * time.Second)}
		Expect(k8sClient.Create(ctx, short)).To(Succeed())
		Eventually(func() []audit.Action { return actionsIn(leader.audit, ns) }).Should(HaveLen(3))
		// The leader clears the pending record from the checkpoint just after writing it; a
		// graceful stop lets that finish, but wait for it so that the spec tests the expiry.
		settled(short)
		leader.stop()
		Eventually(func() bool { return isElected(follower) }).Should(BeTrue())

		Eventually(func() []audit.Action { return actionsIn(follower.audit, ns) }).
			Should(ContainElement(audit.ActionUserOverrideExpired))
		Consistently(func(g Gomega) {
			all := append(recordsIn(sinkA, ns), recordsIn(sinkB, ns)...)
			expired := slices.DeleteFunc(slices.Clone(all), func(r audit.Record) bool { return r.Action != audit.ActionUserOverrideExpired })
			g.Expect(expired).To(HaveLen(1))
			uniqueIDs(g, all)
		}).Should(Succeed())
	})
})

var _ = Describe("Propagation", func() {
	It("reaches the store after every API write, and measures how fast over 200 updates", func() {
		ns := newNamespace()
		f := &v1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "perf.limit"},
			Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(0)},
		}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func() any { return store.Evaluate(ns, evaluator.Context{}, "perf.limit").Value }).Should(Equal(0.0))

		const n = 200
		latencies := make([]time.Duration, 0, n)
		for i := 1; i <= n; i++ {
			base := f.DeepCopy()
			f.Spec.Value = js(i)
			// Timed from before the request: the watch event often reaches the store before the
			// write's response does.
			written := time.Now()
			Expect(k8sClient.Patch(ctx, f, client.MergeFrom(base))).To(Succeed())
			want := float64(i)
			Eventually(func() any { return store.Evaluate(ns, evaluator.Context{}, "perf.limit").Value }).
				WithPolling(time.Millisecond).Should(Equal(want))
			latencies = append(latencies, time.Since(written))
		}
		slices.Sort(latencies)
		p50, p99 := latencies[n/2], latencies[n*99/100]
		AddReportEntry("propagation API write -> store", fmt.Sprintf("p50=%v p99=%v max=%v over %d updates", p50, p99, latencies[n-1], n))
		GinkgoWriter.Printf("propagation API write -> store: p50=%v p99=%v max=%v over %d updates\n", p50, p99, latencies[n-1], n)
		// The assertion is the Eventually above: each change reaches the store, within the
		// suite's generous timeout. The figures include the write itself and are a
		// measurement, not a test: they depend on how busy the machine is (a 1.8 s outlier
		// was seen while another build used both cores), so no bound on them is asserted.
	})
})

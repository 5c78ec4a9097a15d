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

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// isolationLabel keeps the objects of a spec that runs its own manager away from the
// suite's manager.
const isolationLabel = "flagops.test/isolation"

// isolated returns the cache selectors of a manager that sees only the objects labelled
// with iso, or, for "", only the unlabelled ones.
func isolated(iso string) map[client.Object]cache.ByObject {
	req, err := labels.NewRequirement(isolationLabel, selection.DoesNotExist, nil)
	if iso != "" {
		req, err = labels.NewRequirement(isolationLabel, selection.Equals, []string{iso})
	}
	if err != nil {
		panic(err)
	}
	out := map[client.Object]cache.ByObject{}
	for _, k := range controllers.Kinds {
		out[k.NewObject()] = cache.ByObject{Label: labels.NewSelector().Add(*req)}
	}
	return out
}

// startControllers runs the flagops controllers alone (the suite's manager serves the
// webhooks) for the objects labelled with iso, writing to sink. It returns the function
// that stops them and waits until they have.
func startControllers(iso string, sink audit.Sink) (stop func()) {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: controllers.StripForCache, ByObject: isolated(iso)},
		Controller:             config.Controller{SkipNameValidation: ptrTo(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	_, err = controllers.Setup(ctx, mgr, controllers.Options{
		Store:     evaluator.NewStore(),
		Audit:     sink,
		Self:      audit.Actor{Username: "system:serviceaccount:flagops-system:flagops-controller-manager"},
		StampKeys: stampKeys,
	})
	Expect(err).NotTo(HaveOccurred())
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			Eventually(done).WithTimeout(time.Minute).Should(BeClosed())
		}
	}
	DeferCleanup(stop)
	return stop
}

func numberFlag(ns, name string, value int) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(value)},
	}
}

// setValue sets the value of the flag named by key to value, as c, with one merge patch,
// and returns the generation that the write made.
func setValue(c client.Client, key client.ObjectKey, value int) int64 {
	GinkgoHelper()
	f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"value":%d}}`, value))
	Expect(c.Patch(ctx, f, patch)).To(Succeed())
	return f.Generation
}

// recordsOf returns the records about the object with uid, in the order written.
func recordsOf(sink *audit.Memory, uid string) []audit.Record {
	var out []audit.Record
	for _, r := range sink.Records() {
		if r.Object.UID == uid {
			out = append(out, r)
		}
	}
	return out
}

// span returns the generations a created or updated record covers.
func span(r audit.Record) (from, to int64) {
	if r.Coalesced != nil {
		return r.Coalesced.FromGeneration, r.Coalesced.ToGeneration
	}
	return r.Object.Generation, r.Object.Generation
}

var _ = Describe("The audit trail", func() {
	It("records two edits made 10 ms apart by two people as two records, each with its own actor, before and after", func() {
		// Thirty flags, each edited by alice and 10 ms later by bob, all at once: a burst
		// that a reconcile queue folds into one change per flag.
		ns := newNamespace()
		flags := make([]*v1.FeatureFlag, 30)
		for i := range flags {
			flags[i] = numberFlag(ns, fmt.Sprintf("limits.max%d", i), 1)
			Expect(carol.Create(ctx, flags[i])).To(Succeed())
		}
		for _, f := range flags {
			Eventually(func() []audit.Record { return recordsOf(auditLog, string(f.UID)) }).Should(HaveLen(1))
		}

		first, second := make([]int64, len(flags)), make([]int64, len(flags))
		var wg sync.WaitGroup
		for i, f := range flags {
			wg.Go(func() {
				defer GinkgoRecover()
				first[i] = setValue(alice, client.ObjectKeyFromObject(f), 2)
				tick := time.NewTimer(10 * time.Millisecond)
				<-tick.C
				second[i] = setValue(bob, client.ObjectKeyFromObject(f), 3)
			})
		}
		wg.Wait()

		for i, f := range flags {
			Expect(second[i]).To(Equal(first[i] + 1))
			var recs []audit.Record
			Eventually(func() []audit.Record { recs = recordsOf(auditLog, string(f.UID)); return recs }).Should(HaveLen(3), "flag %d", i)
			Expect(recs[1].Action).To(Equal(audit.ActionFlagUpdated))
			Expect(recs[1].Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}), "flag %d", i)
			Expect(recs[1].Object.Generation).To(Equal(first[i]))
			Expect(recs[1].Before).To(HaveKeyWithValue("value", MatchJSON(`1`)))
			Expect(recs[1].After).To(HaveKeyWithValue("value", MatchJSON(`2`)))
			Expect(recs[2].Action).To(Equal(audit.ActionFlagUpdated))
			Expect(recs[2].Actor).To(Equal(audit.Actor{Username: "bob", Verified: true}), "flag %d", i)
			Expect(recs[2].Object.Generation).To(Equal(second[i]))
			Expect(recs[2].Before).To(HaveKeyWithValue("value", MatchJSON(`2`)))
			Expect(recs[2].After).To(HaveKeyWithValue("value", MatchJSON(`3`)))
		}
		Consistently(func(g Gomega) {
			for _, f := range flags {
				g.Expect(recordsOf(auditLog, string(f.UID))).To(HaveLen(3))
			}
		}).Should(Succeed())
	})

	It("covers every generation exactly once across 1,000 edits by 3 people while the manager is killed and restarted at random points", func() {
		const (
			objects = 10
			rounds  = 5
			edits   = 200 // per round
		)
		seed := uint64(GinkgoRandomSeed())
		rng := rand.New(rand.NewPCG(seed, 9))
		By(fmt.Sprintf("seed %d", seed))
		ns := newNamespace()
		iso := "trail-" + ns
		sink := audit.NewMemory()
		people := map[string]client.Client{"alice": alice, "bob": bob, "carol": carol}
		names := []string{"alice", "bob", "carol"}

		stop := startControllers(iso, sink)
		// byGen[i][g] is who wrote generation g of object i; values[i] its value now.
		byGen := make([]map[int64]string, objects)
		values := make([]int, objects)
		flags := make([]*v1.FeatureFlag, objects)
		for i := range flags {
			flags[i] = numberFlag(ns, fmt.Sprintf("chaos.f%d", i), 0)
			flags[i].Labels = map[string]string{isolationLabel: iso}
			Expect(alice.Create(ctx, flags[i])).To(Succeed())
			byGen[i] = map[int64]string{1: "alice"}
		}
		n := 0
		for round := range rounds {
			kill := rng.IntN(edits)
			for e := range edits {
				if e == kill {
					stop()
				}
				i, who := rng.IntN(objects), names[rng.IntN(len(names))]
				n++
				values[i] = n
				byGen[i][setValue(people[who], client.ObjectKeyFromObject(flags[i]), n)] = who
			}
			if round < rounds-1 {
				stop = startControllers(iso, sink)
			}
		}
		// The last two objects are deleted while the manager is down: held by the finalizer
		// the manager added, and recorded when it is back.
		deleted := map[string]bool{}
		for _, f := range flags[objects-2:] {
			Eventually(func(g Gomega) {
				got := &v1.FeatureFlag{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
				g.Expect(got.Finalizers).To(ContainElement(v1.FinalizerAudit))
			}).Should(Succeed())
			Expect(dave.Delete(ctx, f)).To(Succeed())
			deleted[string(f.UID)] = true
		}
		startControllers(iso, sink)

		// Wait until every generation of every object is covered.
		lastGen := func(i int) int64 { return slices.Max(slices.Collect(maps.Keys(byGen[i]))) }
		Eventually(func(g Gomega) {
			for i, f := range flags {
				var top int64
				for _, r := range recordsOf(sink, string(f.UID)) {
					if _, to := span(r); r.Action != audit.ActionFlagDeleted && to > top {
						top = to
					}
				}
				g.Expect(top).To(Equal(lastGen(i)), "object %d", i)
				if deleted[string(f.UID)] {
					g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), &v1.FeatureFlag{})).NotTo(Succeed())
				}
			}
		}).WithTimeout(2 * time.Minute).Should(Succeed())
		Consistently(sink.Len).WithTimeout(2 * time.Second).Should(Equal(sink.Len()))

		ids := map[string]bool{}
		exact, coalesced := 0, 0
		for _, r := range sink.Records() {
			Expect(ids).NotTo(HaveKey(r.ID), "record %s was written twice", r.ID)
			ids[r.ID] = true
		}
		for i, f := range flags {
			recs := recordsOf(sink, string(f.UID))
			next := int64(1)
			var prev json.RawMessage
			for j, r := range recs {
				if r.Action == audit.ActionFlagDeleted {
					Expect(deleted).To(HaveKey(string(f.UID)))
					Expect(j).To(Equal(len(recs)-1), "the deletion is the last record of object %d", i)
					Expect(r.Actor).To(And(HaveField("Username", "dave"), HaveField("Verified", true)))
					continue
				}
				from, to := span(r)
				Expect(from).To(Equal(next), "object %d: record %d starts at %d, the next generation to cover is %d", i, j, from, next)
				next = to + 1
				if j == 0 {
					Expect(r.Action).To(Equal(audit.ActionFlagCreated))
				} else {
					Expect(r.Action).To(Equal(audit.ActionFlagUpdated))
					Expect(r.Before["value"]).To(MatchJSON(prev), "object %d: record %d starts where the one before ended", i, j)
				}
				prev = r.After["value"]
				if r.Coalesced == nil {
					exact++
					Expect(r.Actor).To(And(HaveField("Username", byGen[i][to]), HaveField("Verified", true)), "object %d generation %d", i, to)
				} else {
					coalesced++
					Expect(r.Actor.Username).To(Equal(audit.Unknown.Username))
					Expect(r.Coalesced.Actors).NotTo(BeEmpty())
					Expect(r.Coalesced.Actors[0]).To(And(HaveField("Username", byGen[i][to]), HaveField("Verified", true)))
				}
			}
			Expect(next).To(Equal(lastGen(i)+1), "object %d is covered up to its last generation", i)
			Expect(prev).To(MatchJSON(fmt.Sprint(values[i])), "object %d ends at its value", i)
			if deleted[string(f.UID)] {
				Expect(recs[len(recs)-1].Action).To(Equal(audit.ActionFlagDeleted))
			}
		}
		By(fmt.Sprintf("%d edits: %d records of one version, %d coalesced", n, exact, coalesced))
		Expect(exact).To(BeNumerically(">", 0))
		Expect(coalesced).To(BeNumerically(">", 0))
	})
})

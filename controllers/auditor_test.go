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
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

// setEnabled sets spec.enabled of f as the field manager owner.
func setEnabled(f *v1.FeatureFlag, enabled bool, owner string) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), f)).To(Succeed())
	base := f.DeepCopy()
	f.Spec.Enabled = enabled
	Expect(k8sClient.Patch(ctx, f, client.MergeFrom(base), client.FieldOwner(owner))).To(Succeed())
}

// fenceCase is what a paused leader's LeaseFence tells it (see the spec "records nothing
// again when it resumes after its successor finished the object").
type fenceCase int

const (
	// noFence: the Auditor has no LeaseHeld.
	noFence fenceCase = iota
	// pausedPastLease: LeaseHeld answers false.
	pausedPastLease
	// staleCache: LeaseHeld answers true, but the version is older than the checkpoints.
	staleCache
)

func nothingHeld(*v1.FeatureFlag) map[types.UID]*checkpoint { return map[types.UID]*checkpoint{} }

// countingReader counts the Gets it passes on.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// settled waits until the checkpoint of obj holds its generation with nothing pending.
func settled(obj client.Object) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		g.Expect(obj.GetFinalizers()).To(ContainElement(v1.FinalizerAudit))
		ck := checkpointOf(g, obj)
		g.Expect(ck.Spec.Generation).To(Equal(obj.GetGeneration()))
		g.Expect(ck.Spec.Pending).To(BeEmpty())
	}).Should(Succeed())
}

// coalescedWhileNoLeader creates a flag (off) under a manager of isolation iso, stops the
// manager, lets each writer in turn flip the flag (on, off, on, ...), starts a manager again
// and returns the flag and the update record that the created one is followed by.
func coalescedWhileNoLeader(iso string, writers ...string) (*v1.FeatureFlag, audit.Record) {
	GinkgoHelper()
	ns := newNamespace()
	sink := audit.NewMemory()
	m := startManager(ctx, managerConfig{isolation: iso, sink: sink})
	f := isolate(boolFlag(ns, "beta.dash", false), iso)
	Expect(k8sClient.Create(ctx, f, client.FieldOwner("creator"))).To(Succeed())
	settled(f)
	m.stop()

	for i, w := range writers {
		setEnabled(f, i%2 == 0, w)
	}
	startManager(ctx, managerConfig{isolation: iso, sink: sink})

	Eventually(func() []audit.Action { return actionsIn(sink, ns) }).Should(Equal([]audit.Action{audit.ActionFlagCreated, audit.ActionFlagUpdated}))
	return f, recordOf(sink, ns, audit.ActionFlagUpdated)
}

var _ = Describe("The Auditor", func() {
	It("records the changes made while no leader watched as one coalesced record that names who is known", func() {
		f, rec := coalescedWhileNoLeader("coalesce", "tool-a", "tool-b", "tool-c")
		Expect(f.Generation).To(BeEquivalentTo(4))
		Expect(rec.Coalesced).NotTo(BeNil())
		Expect(rec.Coalesced.FromGeneration).To(BeEquivalentTo(2))
		Expect(rec.Coalesced.ToGeneration).To(BeEquivalentTo(4))
		Expect(rec.Object.Generation).To(BeEquivalentTo(4))
		Expect(rec.Actor).To(Equal(audit.Unknown))
		// The last writer first, as a hint (no webhook stamped it). managedFields may name
		// others that still own spec fields, never the creator, who wrote before the record.
		Expect(rec.Coalesced.Actors[0]).To(Equal(audit.Actor{Username: "tool-c"}))
		for _, a := range rec.Coalesced.Actors {
			Expect(a.Username).To(BeElementOf("tool-a", "tool-b", "tool-c"))
		}
		Expect(rec.Before).To(HaveKeyWithValue("enabled", MatchJSON(`false`)))
		Expect(rec.After).To(HaveKeyWithValue("enabled", MatchJSON(`true`)))
		Expect(rec.ID).NotTo(Equal(audit.NewID(string(f.UID), 4, audit.ActionFlagUpdated, "")))
	})

	It("covers changes made while no leader watched with a coalesced record even when they cancel out", func() {
		// Found by hack/soak: a flag turned on and off again while the watch relisted left
		// generations that no record covered.
		f, rec := coalescedWhileNoLeader("coalesce-net-zero", "tool-a", "tool-b")
		Expect(f.Generation).To(BeEquivalentTo(3))
		Expect(rec.Coalesced).NotTo(BeNil())
		Expect(rec.Coalesced.FromGeneration).To(BeEquivalentTo(2))
		Expect(rec.Coalesced.ToGeneration).To(BeEquivalentTo(3))
		Expect(rec.Actor).To(Equal(audit.Unknown))
		Expect(rec.ChangedKeys).To(BeEmpty())
		Expect(rec.Validate()).To(Succeed())
	})

	// A leader paused (SIGSTOP) past its lease resumes with a version it had queued, of an
	// object that its successor has meanwhile recorded, deleted and dropped the checkpoint
	// of; held says what the paused leader holds of it. Found by hack/soak: the paused
	// leader recorded the generations a second time. fence says what its LeaseFence tells
	// it: the object is read whenever the fence cannot rule the successor out.
	DescribeTable("records nothing again when it resumes after its successor finished the object",
		func(held func(f *v1.FeatureFlag) map[types.UID]*checkpoint, fence fenceCase) {
			ns := newNamespace()
			f := isolate(boolFlag(ns, "beta.dash", false), "no-manager")
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			sink := audit.NewMemory()
			a := &Auditor{Client: k8sClient, Reader: k8sClient, Sink: sink, Actors: Actors{APIReader: k8sClient},
				log: GinkgoLogr, events: newChangeEvents(nil, k8sClient, DedupWindow), queued: map[types.UID][]auditVersion{},
				ckpts: held(f)}
			if fence != noFence {
				a.LeaseHeld = func() bool { return fence == staleCache }
				// The paused leader loaded its checkpoints before the version it queued.
				a.loadedRV = f.ResourceVersion
			}
			setEnabled(f, true, "tool-a")
			queued := f.DeepCopy()
			Expect(k8sClient.Delete(ctx, f)).To(Succeed())
			if fence == staleCache {
				// A leader that took over after all this, with the deletion not yet in its
				// cache: its checkpoints were loaded after the version it has.
				list := &v1.AuditCheckpointList{}
				Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
				a.loadedRV = list.ResourceVersion
			}

			Expect(a.audit(ctx, auditVersion{kind: KindFeatureFlag, obj: queued})).To(MatchError(errAuditedElsewhere))
			Expect(recordsIn(sink, ns)).To(BeEmpty())
			cks := &v1.AuditCheckpointList{}
			Expect(k8sClient.List(ctx, cks, client.InNamespace(ns))).To(Succeed())
			Expect(cks.Items).To(BeEmpty())
		},
		// Its update of the checkpoint answered NotFound, and it created it again.
		Entry("with the checkpoint of generation 1 in memory", func(f *v1.FeatureFlag) map[types.UID]*checkpoint {
			return map[types.UID]*checkpoint{f.UID: {namespace: f.Namespace,
				resourceVersion: f.ResourceVersion, generation: 1, values: packedValues(flagValues(f))}}
		}, noFence),
		// It had not audited the object yet: it created the first checkpoint, and recorded
		// the versions under new IDs (a coalesced creation).
		Entry("with nothing of it in memory", nothingHeld, noFence),
		Entry("with nothing of it in memory, its fence telling it that it lost the Lease", nothingHeld, pausedPastLease),
		Entry("with nothing of it in memory, holding the Lease, but with a version older than its checkpoints", nothingHeld, staleCache),
	)

	DescribeTable("reads a new object before its first checkpoint unless the fence rules other leaders out",
		func(held bool, wantReads int) {
			ns := newNamespace()
			reads := &countingReader{Reader: k8sClient}
			list := &v1.AuditCheckpointList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			sink := audit.NewMemory()
			a := &Auditor{Client: k8sClient, Reader: reads, Sink: sink, Actors: Actors{APIReader: k8sClient},
				log: GinkgoLogr, events: newChangeEvents(nil, k8sClient, DedupWindow), queued: map[types.UID][]auditVersion{},
				ckpts: map[types.UID]*checkpoint{}, loadedRV: list.ResourceVersion, LeaseHeld: func() bool { return held }}
			f := isolate(boolFlag(ns, "beta.dash", false), "no-manager")
			Expect(k8sClient.Create(ctx, f)).To(Succeed())

			Expect(a.audit(ctx, auditVersion{kind: KindFeatureFlag, obj: f.DeepCopy()})).To(Succeed())
			Expect(actionsIn(sink, ns)).To(Equal([]audit.Action{audit.ActionFlagCreated}))
			Expect(reads.gets.Load()).To(BeEquivalentTo(wantReads))
			ck := checkpointOf(Default, f)
			Expect(ck.Spec.Generation).To(BeEquivalentTo(1))
			Expect(ck.Spec.Pending).To(BeEmpty())
		},
		Entry("holding the Lease: no read", true, 0),
		Entry("not certain to hold it: one read", false, 1),
	)

	It("holds its work until Hold is closed, and then records every version made meanwhile", func() {
		const iso = "auditor-hold"
		ns := newNamespace()
		informers, err := cache.New(cfg, cache.Options{Scheme: scheme,
			DefaultLabelSelector: labels.SelectorFromSet(labels.Set{isolationLabel: iso})})
		Expect(err).NotTo(HaveOccurred())
		cctx, cancel := context.WithCancel(ctx)
		DeferCleanup(cancel)
		go func() {
			defer GinkgoRecover()
			Expect(informers.Start(cctx)).To(Succeed())
		}()
		sink := audit.NewMemory()
		hold := make(chan struct{})
		a := &Auditor{Client: k8sClient, Reader: k8sClient, Informers: informers, Sink: sink,
			Actors: Actors{APIReader: k8sClient}, Hold: hold}
		stopped := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(stopped)
			Expect(a.Start(cctx)).To(Succeed())
		}()
		DeferCleanup(func() { cancel(); Eventually(stopped).Should(BeClosed()) })
		queued := func(uid types.UID) int {
			a.mu.Lock()
			defer a.mu.Unlock()
			return len(a.queued[uid])
		}

		f := isolate(boolFlag(ns, "beta.dash", false), iso)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(queued).WithArguments(f.UID).Should(Equal(1), "the creation is queued")
		setEnabled(f, true, "tool-a")
		setEnabled(f, false, "tool-b")
		Eventually(queued).WithArguments(f.UID).Should(Equal(3), "each update is queued")
		Consistently(func() []audit.Record { return recordsIn(sink, ns) }).Should(BeEmpty(), "nothing is recorded while held")
		Expect(a.Audited(f.UID, 1)).To(BeFalse())

		close(hold)
		Eventually(func() []audit.Action { return actionsIn(sink, ns) }).Should(Equal(
			[]audit.Action{audit.ActionFlagCreated, audit.ActionFlagUpdated, audit.ActionFlagUpdated}))
		for _, r := range recordsIn(sink, ns) {
			Expect(r.Coalesced).To(BeNil(), "generation %d has a record of its own", r.Object.Generation)
		}
		Eventually(func() bool { return a.Audited(f.UID, 3) }).Should(BeTrue())
	})

	It("sends the records that a stopped leader left pending, with the same IDs, once", func() {
		ns, iso := newNamespace(), "pending"
		f := isolate(boolFlag(ns, "beta.dash", true), iso)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		// What a leader stores just before it sends the created record.
		rec := audit.NewRecord(time.Now(), audit.Change{Action: audit.ActionFlagCreated, Actor: audit.Actor{Username: "alice"},
			Object: objectRef(KindFeatureFlag, f), After: flagValues(f)})
		ck := &checkpoint{namespace: ns, generation: 1, values: packedValues(flagValues(f)),
			pending: []audit.Record{rec}, auditedAt: time.Now()}
		obj, err := ck.encode(KindFeatureFlag, f)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())

		sink := audit.NewMemory()
		startManager(ctx, managerConfig{isolation: iso, sink: sink})
		settled(f)
		Eventually(func() []audit.Record { return recordsIn(sink, ns) }).Should(HaveLen(1))
		Consistently(func() []audit.Record { return recordsIn(sink, ns) }).Should(HaveLen(1))
		got := recordsIn(sink, ns)[0]
		Expect(got.ID).To(Equal(rec.ID))
		Expect(got.Actor.Username).To(Equal("alice"))
		Expect(got.ChangedKeys).To(Equal(rec.ChangedKeys))
		Expect(got.After).To(Equal(rec.After))
	})

	It("starts from the status.audited that an earlier version left, and removes it", func() {
		ns, iso := newNamespace(), "migrate"
		f := isolate(boolFlag(ns, "beta.dash", false), iso)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		values := map[string]apiextensionsv1.JSON{}
		for k, v := range flagValues(f) {
			values[k] = apiextensionsv1.JSON{Raw: v}
		}
		base := f.DeepCopy()
		f.Status.Audited = &v1.AuditState{Generation: 1, Values: values}
		Expect(k8sClient.Status().Patch(ctx, f, client.MergeFrom(base))).To(Succeed())
		other := isolate(boolFlag(ns, "beta.other", false), iso)
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		base = other.DeepCopy()
		other.Status.Audited = &v1.AuditState{Generation: 1, Values: values}
		Expect(k8sClient.Status().Patch(ctx, other, client.MergeFrom(base))).To(Succeed())
		setEnabled(other, true, "tool-a")

		sink := audit.NewMemory()
		startManager(ctx, managerConfig{isolation: iso, sink: sink})
		settled(f)
		settled(other)
		// status.audited is removed just after the checkpoint is written.
		for _, obj := range []*v1.FeatureFlag{f, other} {
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
				g.Expect(obj.Status.Audited).To(BeNil())
			}).Should(Succeed())
		}
		// Only the change since: nothing for f, and other's update from what status held.
		Eventually(func() []audit.Action { return actionsIn(sink, ns) }).Should(Equal([]audit.Action{audit.ActionFlagUpdated}))
		rec := recordOf(sink, ns, audit.ActionFlagUpdated)
		Expect(rec.Object.Name).To(Equal("beta.other"))
		Expect(rec.Coalesced).To(BeNil())
		Expect(rec.Before).To(HaveKeyWithValue("enabled", MatchJSON(`false`)))
	})

	It("reads a checkpoint again when something else moved it, and still records the change once", func() {
		ns := newNamespace()
		f := boolFlag(ns, "beta.dash", false)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		settled(f)
		// A previous leader's late write, as far as this leader can tell.
		Eventually(func(g Gomega) {
			ck := checkpointOf(g, f)
			ck.Labels = map[string]string{"touched": "yes"}
			g.Expect(k8sClient.Update(ctx, &ck)).To(Succeed())
		}).Should(Succeed())
		setEnabled(f, true, "tool-a")
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(Equal([]audit.Action{audit.ActionFlagCreated, audit.ActionFlagUpdated}))
		settled(f)
		Consistently(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(HaveLen(2))
	})

	It("records the deletion of an override whose audit finalizer someone removed", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", entry("beta.dash", true))
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		settled(o)
		base := o.DeepCopy()
		controllerutil.RemoveFinalizer(o, v1.FinalizerAudit)
		Expect(k8sClient.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "pilot") }).Should(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideDeleted,
		}))
		Eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: checkpointName(KindUserFlagOverride, o.UID)}, &v1.AuditCheckpoint{})
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
		rec := recordOf(auditSink, ns, audit.ActionUserOverrideDeleted)
		Expect(rec.Before).To(HaveKeyWithValue("beta.dash", MatchJSON(`{"enabled":true}`)))
	})

	It("records the deletions when the whole namespace is deleted, and lets the flags go", func() {
		// The namespace controller deletes everything in a namespace being deleted, the
		// AuditCheckpoints first (they have no finalizer), and nothing can be created there
		// any more. envtest runs no namespace controller, so the test does its part.
		ns := newNamespace()
		f := boolFlag(ns, "beta.dash", false)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", entry("beta.dash", true))
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		settled(f)
		settled(o)
		Expect(k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(k8sClient.DeleteAllOf(ctx, &v1.AuditCheckpoint{}, client.InNamespace(ns))).To(Succeed())
		Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		Expect(k8sClient.Delete(ctx, f)).To(Succeed())
		for _, obj := range []client.Object{f, o} {
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object)))
			}).Should(BeTrue(), "%s keeps its audit finalizer", obj.GetName())
		}
		Expect(actionsOf(auditSink, ns, "beta.dash")).To(Equal([]audit.Action{audit.ActionFlagCreated, audit.ActionFlagDeleted}))
		Expect(actionsOf(auditSink, ns, "pilot")).To(Equal([]audit.Action{audit.ActionUserOverrideCreated, audit.ActionUserOverrideDeleted}))
	})
})

// hexIDs returns n IDs of prefix followed by width random hex digits.
func hexIDs(rng *rand.Rand, n int, prefix string, width int) []string {
	out := make([]string, n)
	for i := range out {
		b := []byte(prefix)
		for range width {
			b = append(b, "0123456789abcdef"[rng.IntN(16)])
		}
		out[i] = string(b)
	}
	return out
}

var _ = Describe("A flag near the object size limit", func() {
	It("reconciles and audits its creation and a change of a whole allow-list", func() {
		ns := newNamespace()
		rng := rand.New(rand.NewPCG(7, 7))
		f := &v1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog.big"},
			Spec: v1.FeatureFlagSpec{
				Type: v1.FlagTypeObject, Enabled: true,
				AllowList: &v1.AllowList{Users: hexIDs(rng, 1000, "user-", 120), Orgs: hexIDs(rng, 1000, "org-", 120)},
				Value:     js(map[string]any{"items": hexIDs(rng, 10500, "item-", 64)}),
			},
		}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		stored, err := json.Marshal(f)
		Expect(err).NotTo(HaveOccurred())
		// The API server's limit for one object is 1.5 MiB, managedFields included.
		Expect(len(stored)).To(BeNumerically(">", 1_200_000))
		Expect(len(stored)).To(BeNumerically("<", 1_572_864))
		By(fmt.Sprintf("the flag is %d bytes as stored", len(stored)))

		got := &v1.FeatureFlag{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
			g.Expect(condition(got.Status.Conditions, v1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		}).WithTimeout(time.Minute).Should(Succeed())
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).WithTimeout(time.Minute).Should(Equal([]audit.Action{audit.ActionFlagCreated}))
		settled(f)

		users := hexIDs(rng, 1000, "user-", 120)
		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.AllowList.Users = users })
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).WithTimeout(time.Minute).
			Should(Equal([]audit.Action{audit.ActionFlagCreated, audit.ActionFlagUpdated}))
		rec := recordOf(auditSink, ns, audit.ActionFlagUpdated)
		Expect(rec.ChangedKeys).To(Equal([]string{"allowList"}))
		var before, after v1.AllowList
		Expect(json.Unmarshal(rec.Before["allowList"], &before)).To(Succeed())
		Expect(json.Unmarshal(rec.After["allowList"], &after)).To(Succeed())
		Expect(after.Users).To(Equal(users))
		Expect(before.Users).NotTo(Equal(users))
		settled(f)
		ck := checkpointOf(Default, f)
		size, err := json.Marshal(ck)
		Expect(err).NotTo(HaveOccurred())
		By(fmt.Sprintf("its audit checkpoint is %d bytes", len(size)))
	})
})

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
	"encoding/json"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

var _ = AfterSuite(func() {
	// FLAGOPS_AUDIT_DUMP names a file that receives every audit record of the suite's main
	// manager, one JSON line each: example records for the documentation.
	if path := os.Getenv("FLAGOPS_AUDIT_DUMP"); path != "" {
		var out []byte
		for _, r := range auditSink.Records() {
			line, err := json.Marshal(r)
			Expect(err).NotTo(HaveOccurred())
			out = append(append(out, line...), '\n')
		}
		Expect(os.WriteFile(path, out, 0o600)).To(Succeed())
	}
})

// recordsIn returns the audit records of sink about objects of namespace ns, in order.
func recordsIn(sink *audit.Memory, ns string) []audit.Record {
	var out []audit.Record
	for _, r := range sink.Records() {
		if r.Object.Namespace == ns {
			out = append(out, r)
		}
	}
	return out
}

// actionsOf lists the actions of the records about the object ns/name, in order.
func actionsOf(sink *audit.Memory, ns, name string) []audit.Action {
	var out []audit.Action
	for _, r := range recordsIn(sink, ns) {
		if r.Object.Name == name {
			out = append(out, r.Action)
		}
	}
	return out
}

// recordOf returns the last audit record about ns with the given action.
func recordOf(sink *audit.Memory, ns string, action audit.Action) audit.Record {
	GinkgoHelper()
	var out *audit.Record
	for _, r := range recordsIn(sink, ns) {
		if r.Action == action {
			out = &r
		}
	}
	Expect(out).NotTo(BeNil(), "no %s record in %s", action, ns)
	return *out
}

// actionsIn lists the actions of the records about ns, in order.
func actionsIn(sink *audit.Memory, ns string) []audit.Action {
	var out []audit.Action
	for _, r := range recordsIn(sink, ns) {
		out = append(out, r.Action)
	}
	return out
}

// eventsFor lists the events recorded about the named object in ns with the given reason.
func eventsFor(g Gomega, ns, name, reason string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// checkpointOf reads the AuditCheckpoint of obj.
func checkpointOf(g Gomega, obj client.Object) v1.AuditCheckpoint {
	kind := KindFeatureFlag
	switch obj.(type) {
	case *v1.UserFlagOverride:
		kind = KindUserFlagOverride
	case *v1.DeviceFlagOverride:
		kind = KindDeviceFlagOverride
	}
	ck := v1.AuditCheckpoint{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: checkpointName(kind, obj.GetUID())}, &ck)).To(Succeed())
	return ck
}

func condition(conds []metav1.Condition, t string) metav1.Condition {
	if c := apimeta.FindStatusCondition(conds, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

var _ = Describe("Override lifecycle", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("audits create, update and delete with before and after values, and reports status", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		o := userOverride(ns, "pilot", "user-42", entry("beta.dash", true))
		o.Spec.Reason = "pilot customer"
		Expect(k8sClient.Create(ctx, o)).To(Succeed())

		got := &v1.UserFlagOverride{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			g.Expect(got.Finalizers).To(ContainElement(v1.FinalizerAudit))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.AppliedKeys).To(Equal([]string{"beta.dash"}))
			g.Expect(got.Status.FlagCount).To(BeEquivalentTo(1))
			g.Expect(condition(got.Status.Conditions, v1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(condition(got.Status.Conditions, v1.ConditionConflict).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(condition(got.Status.Conditions, v1.ConditionExpired).Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionUserOverrideCreated))

		rec := recordOf(auditSink, ns, audit.ActionUserOverrideCreated)
		Expect(rec.Actor.Username).To(Equal(testActor))
		Expect(rec.Subject).To(Equal(&audit.Subject{UserID: "user-42"}))
		Expect(rec.Object).To(matchObject(got))
		Expect(rec.ChangedKeys).To(ConsistOf("beta.dash", auditKeyEnabled, auditKeyReason, auditKeyOnExpiry))
		Expect(rec.Before["beta.dash"]).To(MatchJSON(`null`))
		Expect(rec.After["beta.dash"]).To(MatchJSON(`{"enabled":true}`))
		Expect(rec.After[auditKeyReason]).To(MatchJSON(`"pilot customer"`))

		patchSpec(o, func(o *v1.UserFlagOverride) {
			o.Spec.Flags = []v1.FlagOverrideEntry{entry("beta.dash", false), entry("beta.other", true)}
		})
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionUserOverrideUpdated))
		rec = recordOf(auditSink, ns, audit.ActionUserOverrideUpdated)
		Expect(rec.ChangedKeys).To(Equal([]string{"beta.dash", "beta.other"}))
		Expect(rec.Before).To(HaveKeyWithValue("beta.dash", MatchJSON(`{"enabled":true}`)))
		Expect(rec.After).To(HaveKeyWithValue("beta.dash", MatchJSON(`{"enabled":false}`)))
		Expect(rec.Before).To(HaveKeyWithValue("beta.other", MatchJSON(`null`)))

		Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), &v1.UserFlagOverride{}))
		}).Should(BeTrue())
		// The flag's and the override's records come from different controllers, so only the
		// order of each object's own records is fixed.
		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "pilot") }).Should(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideUpdated, audit.ActionUserOverrideDeleted,
		}))
		// The flag's record comes from the flag controller, which nothing above waited for.
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ConsistOf(audit.ActionFlagCreated,
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideUpdated, audit.ActionUserOverrideDeleted))
		rec = recordOf(auditSink, ns, audit.ActionUserOverrideDeleted)
		Expect(rec.After).To(HaveKeyWithValue("beta.dash", MatchJSON(`null`)))
		Expect(rec.Before).To(HaveKeyWithValue("beta.other", MatchJSON(`{"enabled":true}`)))
		Consistently(func() int { return len(recordsIn(auditSink, ns)) }).Should(Equal(4))
	})

	It("lists unknown flags and invalid values, with one warning each, until they are fixed", func() {
		schema := map[string]any{"type": "object", "required": []string{"max"}}
		flag := &v1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing.limits"},
			Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true, Schema: js(schema), Value: js(map[string]any{"max": 1})},
		}
		Expect(k8sClient.Create(ctx, flag)).To(Succeed())
		o := userOverride(ns, "mixed", "user-1",
			v1.FlagOverrideEntry{Key: "billing.limits", Value: js(map[string]any{"min": 3})},
			entry("beta.missing", true))
		Expect(k8sClient.Create(ctx, o)).To(Succeed())

		got := &v1.UserFlagOverride{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			g.Expect(got.Status.AppliedKeys).To(BeEmpty())
			g.Expect(got.Status.InvalidKeys).To(HaveLen(2))
			g.Expect(got.Status.InvalidKeys[0].Key).To(Equal("beta.missing"))
			g.Expect(got.Status.InvalidKeys[0].Message).To(Equal("unknown flag"))
			g.Expect(got.Status.InvalidKeys[1].Key).To(Equal("billing.limits"))
			g.Expect(got.Status.InvalidKeys[1].Message).To(ContainSubstring("max"))
			ready := condition(got.Status.Conditions, v1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(v1.ReasonPartiallyApplied))
			g.Expect(ready.Message).To(ContainSubstring("beta.missing: unknown flag"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "mixed", v1.EventReasonUnknownFlag)).To(HaveLen(1))
			g.Expect(eventsFor(g, ns, "mixed", v1.EventReasonInvalidValue)).To(HaveLen(1))
		}).Should(Succeed())
		// The invalid value is never served.
		Expect(store.Evaluate(ns, evaluator.Context{UserID: "user-1"}, "billing.limits").Value).To(Equal(map[string]any{"max": 1.0}))

		// Creating the missing flag makes its entry valid, without touching the override.
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.missing", false))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			g.Expect(got.Status.AppliedKeys).To(Equal([]string{"beta.missing"}))
			g.Expect(got.Status.InvalidKeys).To(HaveLen(1))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "mixed", v1.EventReasonUnknownFlag)).To(HaveLen(1))
			g.Expect(eventsFor(g, ns, "mixed", v1.EventReasonInvalidValue)).To(HaveLen(1))
		}).Should(Succeed())
	})

	It("reports a conflict on the losing override, naming the winner", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		older := userOverride(ns, "a-older", "user-7", entry("beta.dash", true))
		Expect(k8sClient.Create(ctx, older)).To(Succeed())
		Eventually(func() string {
			return store.Evaluate(ns, evaluator.Context{UserID: "user-7"}, "beta.dash").Source
		}).Should(Equal("user-override:" + ns + "/a-older"))
		newer := userOverride(ns, "b-newer", "user-7", entry("beta.dash", false))
		Expect(k8sClient.Create(ctx, newer)).To(Succeed())

		got := &v1.UserFlagOverride{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(newer), got)).To(Succeed())
			c := condition(got.Status.Conditions, v1.ConditionConflict)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Message).To(ContainSubstring("beta.dash is served from " + ns + "/a-older"))
			g.Expect(got.Status.AppliedKeys).To(BeEmpty())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			evs := eventsFor(g, ns, "b-newer", v1.EventReasonOverrideConflict)
			g.Expect(evs).To(HaveLen(1))
			g.Expect(evs[0].Note).To(ContainSubstring(ns + "/a-older"))
		}).Should(Succeed())
		Expect(store.Evaluate(ns, evaluator.Context{UserID: "user-7"}, "beta.dash").Value).To(Equal(true))

		// The winner goes away: the conflict ends and the other override takes over.
		Expect(k8sClient.Delete(ctx, older)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(newer), got)).To(Succeed())
			g.Expect(condition(got.Status.Conditions, v1.ConditionConflict).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(got.Status.AppliedKeys).To(Equal([]string{"beta.dash"}))
		}).Should(Succeed())
		Expect(store.Evaluate(ns, evaluator.Context{UserID: "user-7"}, "beta.dash").Value).To(Equal(false))
	})

	It("expires an override on time, records it once, and deletes it", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		// Far enough ahead that the override is served before it expires, however slow the
		// create and the first reconcile.
		expires := time.Now().Add(5 * time.Second)
		o := userOverride(ns, "short", "user-1", entry("beta.dash", true))
		o.Spec.ExpiresAt = &metav1.Time{Time: expires}
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		u := evaluator.Context{UserID: "user-1"}
		Eventually(func() any { return store.Evaluate(ns, u, "beta.dash").Value }).Should(Equal(true))

		Eventually(func() any { return store.Evaluate(ns, u, "beta.dash").Value }).Should(Equal(false))
		Expect(time.Now()).To(BeTemporally(">=", expires.Truncate(time.Second)))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), &v1.UserFlagOverride{}))
		}).Should(BeTrue())

		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "short") }).Should(Equal([]audit.Action{
			audit.ActionUserOverrideCreated, audit.ActionUserOverrideExpired,
		}))
		// The recorder sends events asynchronously: wait for the one event before requiring
		// that no second one follows.
		once := func(g Gomega) {
			g.Expect(actionsIn(auditSink, ns)).To(HaveLen(3))
			g.Expect(eventsFor(g, ns, "short", v1.EventReasonOverrideExpired)).To(HaveLen(1))
		}
		Eventually(once).Should(Succeed())
		Consistently(once).Should(Succeed())
		exp := recordOf(auditSink, ns, audit.ActionUserOverrideExpired)
		Expect(exp.Actor).To(Equal(managerActor))
		Expect(exp.Time).To(BeTemporally("==", o.Spec.ExpiresAt.Time))
		Expect(exp.After).To(HaveKeyWithValue("beta.dash", MatchJSON(`null`)))
	})

	It("audits a device override's whole life with the device as subject, and counts it in metrics", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "metrics.device-life", false))).To(Succeed())
		o := deviceOverride(ns, "tablet", "tablet-9", entry("metrics.device-life", true))
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionDeviceOverrideCreated))
		Eventually(func() float64 {
			return testutil.ToFloat64(overridesActive.WithLabelValues("device", "metrics.device-life"))
		}).Should(BeNumerically(">=", 1))

		// Each change is counted just after its record is written.
		countOf := func(verb string) func() float64 {
			return func() float64 {
				return testutil.ToFloat64(overridesTotal.WithLabelValues("device", "metrics.device-life", verb))
			}
		}
		Eventually(countOf("created")).Should(BeNumerically(">=", 1))
		patchSpec(o, func(o *v1.DeviceFlagOverride) {
			o.Spec.Flags = []v1.FlagOverrideEntry{{Key: "metrics.device-life", Enabled: ptr.To(false)}}
			o.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(time.Second)}
			o.Spec.OnExpiry = v1.OnExpiryRetain
		})
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionDeviceOverrideExpired))
		Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		Eventually(func() []audit.Action { return actionsOf(auditSink, ns, "tablet") }).Should(Equal([]audit.Action{
			audit.ActionDeviceOverrideCreated, audit.ActionDeviceOverrideUpdated,
			audit.ActionDeviceOverrideExpired, audit.ActionDeviceOverrideDeleted,
		}))
		for _, r := range recordsIn(auditSink, ns) {
			if r.Object.Name != "tablet" {
				continue
			}
			Expect(r.Subject).To(Equal(&audit.Subject{DeviceID: "tablet-9"}))
			Expect(r.Object.Kind).To(Equal("DeviceFlagOverride"))
		}
		Eventually(countOf("updated")).Should(BeNumerically(">=", 1))
		Eventually(countOf("deleted")).Should(BeNumerically(">=", 1))
		Eventually(func() float64 {
			return testutil.ToFloat64(overridesActive.WithLabelValues("device", "metrics.device-life"))
		}).Should(BeNumerically("<", 1))
		Expect(testutil.ToFloat64(storeRevision)).To(BeNumerically(">", 0))
		Expect(testutil.CollectAndCount(storeApplySeconds)).To(Equal(1))
	})
})

var _ = Describe("Flag lifecycle", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("counts active overrides and audits create, update and delete", func() {
		f := boolFlag(ns, "beta.dash", false)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Expect(k8sClient.Create(ctx, userOverride(ns, "u1", "user-1", entry("beta.dash", true)))).To(Succeed())
		Expect(k8sClient.Create(ctx, userOverride(ns, "u2", "user-2", entry("beta.dash", true)))).To(Succeed())
		disabled := userOverride(ns, "u3", "user-3", entry("beta.dash", true))
		disabled.Spec.Enabled = ptr.To(false)
		Expect(k8sClient.Create(ctx, disabled)).To(Succeed())
		Expect(k8sClient.Create(ctx, deviceOverride(ns, "d1", "phone-1", entry("beta.dash", true)))).To(Succeed())

		got := &v1.FeatureFlag{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
			g.Expect(got.Finalizers).To(ContainElement(v1.FinalizerAudit))
			g.Expect(got.Status.UserOverrides).To(BeEquivalentTo(2))
			g.Expect(got.Status.DeviceOverrides).To(BeEquivalentTo(1))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(condition(got.Status.Conditions, v1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Enabled = true })
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagUpdated))
		var upd audit.Record
		for _, r := range recordsIn(auditSink, ns) {
			if r.Action == audit.ActionFlagUpdated {
				upd = r
			}
		}
		Expect(upd.ChangedKeys).To(Equal([]string{"enabled"}))
		Expect(upd.Before).To(HaveKeyWithValue("enabled", MatchJSON(`false`)))
		Expect(upd.After).To(HaveKeyWithValue("enabled", MatchJSON(`true`)))
		Expect(upd.Actor.Username).To(Equal(testActor))

		Expect(k8sClient.Delete(ctx, f)).To(Succeed())
		Eventually(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(ContainElement(audit.ActionFlagDeleted))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), &v1.FeatureFlag{}))
		}).Should(BeTrue())
	})

	It("reports an invalid spec and keeps serving the last valid version", func() {
		f := &v1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing.limits"},
			Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true,
				Schema: js(map[string]any{"type": "object", "required": []string{"max"}}), Value: js(map[string]any{"max": 1})},
		}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func() int64 {
			got := &v1.FeatureFlag{}
			_ = k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)
			return got.Status.ObservedGeneration
		}).Should(Equal(int64(1)))

		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(map[string]any{"min": 1}) })
		got := &v1.FeatureFlag{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
			ready := condition(got.Status.Conditions, v1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(v1.ReasonInvalidSpec))
			g.Expect(ready.Message).To(ContainSubstring("generation 2 is not served"))
			g.Expect(ready.Message).To(ContainSubstring("spec.value"))
			g.Expect(ready.Message).To(ContainSubstring("keeps serving generation 1"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "billing.limits", v1.EventReasonInvalidSpec)).To(HaveLen(1))
		}).Should(Succeed())
		Expect(store.Evaluate(ns, evaluator.Context{}, "billing.limits").Value).To(Equal(map[string]any{"max": 1.0}))
	})

	It("records each schedule step once, when it takes effect", func() {
		// Far enough ahead that the status shows the step as next before it takes effect.
		at := metav1.NewTime(time.Now().Add(5 * time.Second).Truncate(time.Second).Add(time.Second))
		f := boolFlag(ns, "beta.scheduled", false)
		f.Spec.Rollout = &v1.Rollout{Percentage: 0}
		f.Spec.Schedule = []v1.ScheduleStep{
			{At: at, Enabled: ptr.To(true), RolloutPercentage: ptr.To[int32](25)},
			{At: metav1.NewTime(at.Add(time.Hour)), RolloutPercentage: ptr.To[int32](50)},
		}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		got := &v1.FeatureFlag{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
			g.Expect(got.Status.NextScheduleAt).NotTo(BeNil())
			g.Expect(got.Status.NextScheduleAt.Time).To(BeTemporally("==", at.Time))
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
			g.Expect(got.Status.LastScheduleApplied).NotTo(BeNil())
			g.Expect(got.Status.LastScheduleApplied.Time).To(BeTemporally("==", at.Time))
			g.Expect(got.Status.NextScheduleAt.Time).To(BeTemporally("==", at.Add(time.Hour)))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, ns, "beta.scheduled", v1.EventReasonScheduleApplied)).To(HaveLen(1))
		}).Should(Succeed())
		Consistently(func() []audit.Action { return actionsIn(auditSink, ns) }).Should(Equal([]audit.Action{
			audit.ActionFlagCreated, audit.ActionFlagScheduleApplied,
		}))
		rec := recordOf(auditSink, ns, audit.ActionFlagScheduleApplied)
		Expect(rec.Actor).To(Equal(managerActor))
		Expect(rec.ChangedKeys).To(Equal([]string{"enabled", "rollout.percentage"}))
		Expect(rec.Before).To(HaveKeyWithValue("rollout.percentage", MatchJSON(`0`)))
		Expect(rec.After).To(HaveKeyWithValue("rollout.percentage", MatchJSON(`25`)))
	})
})

// matchObject matches an audit ObjectRef against the object it names.
func matchObject(obj client.Object) OmegaMatcher {
	return And(
		HaveField("Namespace", obj.GetNamespace()),
		HaveField("Name", obj.GetName()),
		HaveField("UID", string(obj.GetUID())),
	)
}

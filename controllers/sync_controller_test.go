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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// js wraps v as a JSON flag value. It is used outside Ginkgo too, so it panics rather than
// asserting; json.Marshal only fails for values no test passes.
func js(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &apiextensionsv1.JSON{Raw: raw}
}

func boolFlag(ns, name string, enabled bool) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: enabled},
	}
}

func userOverride(ns, name, user string, entries ...v1.FlagOverrideEntry) *v1.UserFlagOverride {
	return &v1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.UserFlagOverrideSpec{UserID: user, FlagOverrideSpec: v1.FlagOverrideSpec{Flags: entries}},
	}
}

func deviceOverride(ns, name, device string, entries ...v1.FlagOverrideEntry) *v1.DeviceFlagOverride {
	return &v1.DeviceFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.DeviceFlagOverrideSpec{DeviceID: device, FlagOverrideSpec: v1.FlagOverrideSpec{Flags: entries}},
	}
}

func entry(key string, enabled bool) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptr.To(enabled)}
}

// eval evaluates key in ns against st's current snapshot.
func eval(st *evaluator.Store, ns string, c evaluator.Context, key string) evaluator.Result {
	return st.Evaluate(ns, c, key)
}

// patchSpec applies mutate to a fresh copy of obj and patches it.
func patchSpec[T client.Object](obj T, mutate func(T)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	base := obj.DeepCopyObject().(T)
	mutate(obj)
	Expect(k8sClient.Patch(ctx, obj, client.MergeFrom(base))).To(Succeed())
}

var _ = Describe("Sync controllers", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("feeds flag creates, updates and deletes into the store", func() {
		f := boolFlag(ns, "billing.enabled", false)
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func() evaluator.Result {
			return eval(store, ns, evaluator.Context{UserID: "u"}, "billing.enabled")
		}).Should(And(
			HaveField("Value", false),
			HaveField("Source", evaluator.SourceKillSwitch),
		))

		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Enabled = true })
		Eventually(func() any {
			return eval(store, ns, evaluator.Context{UserID: "u"}, "billing.enabled").Value
		}).Should(Equal(true))

		Expect(k8sClient.Delete(ctx, f)).To(Succeed())
		Eventually(func() evaluator.ErrorCode {
			return eval(store, ns, evaluator.Context{UserID: "u"}, "billing.enabled").ErrorCode
		}).Should(Equal(evaluator.ErrorFlagNotFound))
	})

	It("feeds user and device overrides into the store, device first", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dash", false))).To(Succeed())
		uo := userOverride(ns, "pilot", "user-42", entry("beta.dash", true))
		Expect(k8sClient.Create(ctx, uo)).To(Succeed())
		// The same name for both kinds: they are different objects.
		do := deviceOverride(ns, "pilot", "tablet-1", entry("beta.dash", false))
		Expect(k8sClient.Create(ctx, do)).To(Succeed())

		user := evaluator.Context{UserID: "user-42"}
		onTablet := evaluator.Context{UserID: "user-42", DeviceID: "tablet-1", DeviceClass: "tablet"}
		Eventually(func() string { return eval(store, ns, user, "beta.dash").Source }).
			Should(Equal("user-override:" + ns + "/pilot"))
		Eventually(func() string { return eval(store, ns, onTablet, "beta.dash").Source }).
			Should(Equal("device-override:" + ns + "/pilot"))
		Expect(eval(store, ns, onTablet, "beta.dash").Value).To(Equal(false))

		patchSpec(uo, func(o *v1.UserFlagOverride) { o.Spec.Enabled = ptr.To(false) })
		Eventually(func() string { return eval(store, ns, user, "beta.dash").Source }).
			Should(Equal(evaluator.SourceKillSwitch))

		Expect(k8sClient.Delete(ctx, do)).To(Succeed())
		Eventually(func() string { return eval(store, ns, onTablet, "beta.dash").Source }).
			Should(Equal(evaluator.SourceKillSwitch))
		// The user override object of the same name is untouched by the device delete.
		_, ok := store.Snapshot().OverrideStatus(evaluator.SubjectUser, ns, "pilot")
		Expect(ok).To(BeTrue())
	})

	It("keeps serving the last valid version of a flag whose new spec fails its schema", func() {
		f := &v1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing.limits"},
			Spec: v1.FeatureFlagSpec{
				Type: v1.FlagTypeObject, Enabled: true,
				Schema: js(map[string]any{"type": "object", "required": []string{"max"}}),
				Value:  js(map[string]any{"max": 1}),
			},
		}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		Eventually(func() any { return eval(store, ns, evaluator.Context{}, "billing.limits").Value }).
			Should(Equal(map[string]any{"max": 1.0}))
		valid := f.Generation

		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(map[string]any{"min": 1}) })
		nn := client.ObjectKeyFromObject(f)
		Eventually(func() FlagState { st, _ := syncer.FlagState(nn); return st }).Should(And(
			HaveField("Generation", valid+1),
			HaveField("Err", MatchError(ContainSubstring("spec.value"))),
			HaveField("ServingGeneration", valid),
		))
		Consistently(func() any { return eval(store, ns, evaluator.Context{}, "billing.limits").Value }).
			Should(Equal(map[string]any{"max": 1.0}))

		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(map[string]any{"max": 2}) })
		Eventually(func() any { return eval(store, ns, evaluator.Context{}, "billing.limits").Value }).
			Should(Equal(map[string]any{"max": 2.0}))
		st, _ := syncer.FlagState(nn)
		Expect(st.Err).NotTo(HaveOccurred())
		Expect(st.ServingGeneration).To(Equal(valid + 2))
	})

	It("stops applying an override exactly at expiry and ticks the store then", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.expiring", false))).To(Succeed())
		// Far enough ahead that the override is served before it expires, however slow the
		// create.
		expires := time.Now().Add(5 * time.Second).Truncate(time.Second).Add(time.Second)
		o := userOverride(ns, "short", "user-1", entry("beta.expiring", true))
		o.Spec.ExpiresAt = &metav1.Time{Time: expires}
		// Retained, so that the store keeps the object to report as expired: by default the
		// controller deletes it at expiry, and under load that deletion could reach the store
		// before this spec reads the status.
		o.Spec.OnExpiry = v1.OnExpiryRetain
		Expect(k8sClient.Create(ctx, o)).To(Succeed())

		u := evaluator.Context{UserID: "user-1"}
		Eventually(func() any { return eval(store, ns, u, "beta.expiring").Value }).Should(Equal(true))
		revBefore := store.Snapshot().Revision()
		Eventually(func() any { return eval(store, ns, u, "beta.expiring").Value }).Should(Equal(false))
		Expect(time.Now()).To(BeTemporally(">=", expires))
		// The clock driver publishes a revision as of the expiry, with no API write.
		Eventually(func() uint64 { return store.Snapshot().Revision() }).Should(BeNumerically(">", revBefore))
		Eventually(func() bool {
			st, _ := store.Snapshot().OverrideStatus(evaluator.SubjectUser, ns, "short")
			return st.Expired
		}).Should(BeTrue())
		// Still there, so the status above was the store's verdict, not a leftover.
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o) }, "1s").Should(Succeed())
	})

	It("serves everything that existed before it started, as soon as it is ready", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "pre.existing", true))).To(Succeed())
		Expect(k8sClient.Create(ctx, userOverride(ns, "pre", "user-9", entry("pre.existing", false)))).To(Succeed())
		// Wait until the running manager has it, so the API server certainly does.
		Eventually(func() string {
			return eval(store, ns, evaluator.Context{UserID: "user-9"}, "pre.existing").Source
		}).Should(Equal("user-override:" + ns + "/pre"))

		m := startManager(ctx, managerConfig{})
		defer m.stop()
		fresh := m.store
		Expect(m.syncer.ReadyCheck(nil)).To(Succeed())
		// No Eventually: the initial sync has applied it before the syncer reports ready.
		r := eval(fresh, ns, evaluator.Context{UserID: "user-9"}, "pre.existing")
		Expect(r.Source).To(Equal("user-override:" + ns + "/pre"))
		Expect(r.Value).To(Equal(false))
	})
})

var _ = Describe("Syncer readiness", func() {
	It("is not ready before the initial sync", func() {
		s := NewSyncer(k8sClient, evaluator.NewStore())
		Expect(s.ReadyCheck(nil)).To(MatchError(ContainSubstring("initial sync")))
		Expect(s.InitialSync(ctx)).To(Succeed())
		Expect(s.ReadyCheck(nil)).To(Succeed())
	})
})

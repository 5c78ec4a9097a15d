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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// expectInvalid asserts that err is the webhook's Invalid error and contains every part.
func expectInvalid(err error, webhookName string, parts ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got: %v", err)
	Expect(err.Error()).To(ContainSubstring(`admission webhook "` + webhookName + `" denied the request`))
	for _, p := range parts {
		Expect(err.Error()).To(ContainSubstring(p))
	}
}

var _ = Describe("FeatureFlag validation", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("rejects an invalid JSON Schema", func() {
		f := limitsFlag(ns, "billing.limits")
		f.Spec.Schema = js(map[string]any{"type": "object", "properties": map[string]any{"maxStudents": map[string]any{"type": "bogus"}}})
		expectInvalid(alice.Create(ctx, f), "vfeatureflag.flagops.dev",
			`FeatureFlag.flagops.dev "billing.limits" is invalid`, "spec.schema: Invalid value:")
	})

	It("rejects values that fail the schema, naming each field", func() {
		f := limitsFlag(ns, "billing.limits")
		f.Spec.Value = js(map[string]any{"maxStudents": 500})
		f.Spec.OffValue = js(map[string]any{"maxStudents": 0})
		f.Spec.Rules = []v1.Rule{{
			Name:  "edu",
			Match: []v1.Condition{{Attribute: "orgType", Operator: v1.OperatorIn, Values: []string{"edu"}}},
			Value: js(map[string]any{"maxStudents": 50, "extra": true}),
		}}
		expectInvalid(alice.Create(ctx, f), "vfeatureflag.flagops.dev",
			`spec.value: Invalid value: {"maxStudents":500}: does not match schema`,
			`spec.offValue: Invalid value: {"maxStudents":0}: does not match schema`,
			`spec.rules[0].value: Invalid value: {"extra":true,"maxStudents":50}: does not match schema`)
	})

	It("rejects an invalid RE2 pattern, which the CRD cannot check", func() {
		f := stringFlag(ns, "checkout.layout", "sidebar")
		f.Spec.Rules = []v1.Rule{{
			Name:  "staff",
			Match: []v1.Condition{{Attribute: "email", Operator: v1.OperatorMatches, Values: []string{`.*@flagops\.dev$`, `(unclosed`}}},
		}}
		expectInvalid(alice.Create(ctx, f), "vfeatureflag.flagops.dev",
			`spec.rules[0].match[0].values[1]: Invalid value: "(unclosed": invalid RE2 pattern "(unclosed"`)
	})

	It("rejects a schedule value that fails the schema", func() {
		f := limitsFlag(ns, "billing.limits")
		f.Spec.Schedule = []v1.ScheduleStep{{At: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), Value: js(map[string]any{"maxStudents": 101})}}
		expectInvalid(alice.Create(ctx, f), "vfeatureflag.flagops.dev", "spec.schedule[0].value: Invalid value:", "does not match schema")
	})

	It("rejects an update that breaks the spec, and admits one that keeps it valid", func() {
		f := limitsFlag(ns, "billing.limits")
		Expect(alice.Create(ctx, f)).To(Succeed())

		broken := f.DeepCopy()
		broken.Spec.Value = js(map[string]any{"maxStudents": 1000})
		expectInvalid(bob.Patch(ctx, broken, client.MergeFrom(f)), "vfeatureflag.flagops.dev", "spec.value: Invalid value:")

		fine := f.DeepCopy()
		fine.Spec.Value = js(map[string]any{"maxStudents": 100})
		Expect(bob.Patch(ctx, fine, client.MergeFrom(f))).To(Succeed())
	})

	It("warns about override values that a schema change makes invalid", func() {
		f := limitsFlag(ns, "billing.limits")
		Expect(alice.Create(ctx, f)).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", valued("billing.limits", map[string]any{"maxStudents": 80}))
		Expect(alice.Create(ctx, o)).To(Succeed())

		c, warnings := warningClient()
		// Tighten the schema until the webhook's cache holds the override and it warns. Each
		// attempt writes a different maximum, so that each one changes the spec.
		attempt := 0
		Eventually(func(g Gomega) {
			attempt++
			fresh := &v1.FeatureFlag{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(f), fresh)).To(Succeed())
			base := fresh.DeepCopy()
			max := 10 + attempt%50
			fresh.Spec.Schema = js(map[string]any{"type": "object", "properties": map[string]any{
				"maxStudents": map[string]any{"type": "integer", "maximum": max}}})
			fresh.Spec.Value = js(map[string]any{"maxStudents": 1})
			g.Expect(c.Patch(ctx, fresh, client.MergeFrom(base))).To(Succeed())
			g.Expect(warnings.all()).To(ContainSubstring(`UserFlagOverride "pilot": spec.flags[0].value does not match the new spec`))
		}).Should(Succeed())
	})
})

var _ = Describe("Override validation", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.dashboard"))).To(Succeed())
		Expect(k8sClient.Create(ctx, limitsFlag(ns, "billing.limits"))).To(Succeed())
		Expect(k8sClient.Create(ctx, stringFlag(ns, "checkout.layout", "sidebar"))).To(Succeed())
	})

	It("rejects an entry for a flag that does not exist in the namespace", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.dashboard"), on("beta.x"))
		expectInvalid(alice.Create(ctx, o), "vuserflagoverride.flagops.dev",
			`UserFlagOverride.flagops.dev "pilot" is invalid`,
			`spec.flags[1].key: Not found: "beta.x": no FeatureFlag has the key "beta.x" in namespace "`+ns+`"`)
	})

	It("rejects an entry for a flag of another namespace", func() {
		other := newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(other, "beta.elsewhere"))).To(Succeed())
		o := deviceOverride(ns, "tablet", "device-1", on("beta.elsewhere"))
		expectInvalid(alice.Create(ctx, o), "vdeviceflagoverride.flagops.dev",
			`spec.flags[0].key: Not found: "beta.elsewhere": no FeatureFlag has the key "beta.elsewhere" in namespace "`+ns+`"`)
	})

	It("rejects a value that fails the flag's schema", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.dashboard"), valued("billing.limits", map[string]any{"maxStudents": 999}))
		expectInvalid(alice.Create(ctx, o), "vuserflagoverride.flagops.dev",
			`spec.flags[1].value: Invalid value: {"maxStudents":999}: flag "billing.limits": does not match schema`)
	})

	It("rejects a value of the wrong type", func() {
		o := deviceOverride(ns, "tablet", "device-1", valued("checkout.layout", 42))
		expectInvalid(alice.Create(ctx, o), "vdeviceflagoverride.flagops.dev",
			`spec.flags[0].value: Invalid value: 42: flag "checkout.layout": string flag needs a json string, got number`)
	})

	It("admits a value that is not served because the entry is disabled", func() {
		e := valued("billing.limits", map[string]any{"maxStudents": 999})
		e.Enabled = ptrTo(false)
		Expect(alice.Create(ctx, userOverride(ns, "pilot", "user-1", e))).To(Succeed())
	})

	It("rejects an expiry in the past on create", func() {
		o := userOverride(ns, "pilot", "user-1", on("beta.dashboard"))
		o.Spec.ExpiresAt = &metav1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		expectInvalid(alice.Create(ctx, o), "vuserflagoverride.flagops.dev",
			`spec.expiresAt: Invalid value: "2020-01-01T00:00:00Z": must be in the future`)
	})

	It("rejects a second override of the same kind for the same subject and key", func() {
		first := userOverride(ns, "pilot-a", "user-42", on("beta.dashboard"), valued("checkout.layout", "single-page"))
		Expect(alice.Create(ctx, first)).To(Succeed())

		second := userOverride(ns, "pilot-b", "user-42", on("billing.limits"), valued("checkout.layout", "classic"))
		Eventually(func(g Gomega) {
			err := bob.Create(ctx, second.DeepCopy(), client.DryRunAll)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(`spec.flags[1].key: Duplicate value: "checkout.layout": UserFlagOverride "pilot-a" already overrides flag "checkout.layout" for user "user-42"`))
		}).Should(Succeed())
		expectInvalid(bob.Create(ctx, second.DeepCopy()), "vuserflagoverride.flagops.dev", `UserFlagOverride.flagops.dev "pilot-b" is invalid`)

		// Other subjects, the other kind and keys the first override does not set are fine.
		Expect(bob.Create(ctx, userOverride(ns, "other-user", "user-43", valued("checkout.layout", "classic")))).To(Succeed())
		Expect(bob.Create(ctx, deviceOverride(ns, "device", "user-42", valued("checkout.layout", "classic")))).To(Succeed())
		Expect(bob.Create(ctx, userOverride(ns, "other-key", "user-42", on("billing.limits")))).To(Succeed())
	})

	It("rejects an update that adds a conflicting key", func() {
		Expect(alice.Create(ctx, deviceOverride(ns, "tablet-a", "device-7", on("beta.dashboard")))).To(Succeed())
		b := deviceOverride(ns, "tablet-b", "device-7", valued("checkout.layout", "classic"))
		Expect(alice.Create(ctx, b)).To(Succeed())

		Eventually(func(g Gomega) {
			fresh := &v1.DeviceFlagOverride{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), fresh)).To(Succeed())
			base := fresh.DeepCopy()
			fresh.Spec.Flags = append(fresh.Spec.Flags, on("beta.dashboard"))
			err := bob.Patch(ctx, fresh, client.MergeFrom(base), client.DryRunAll)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(`spec.flags[1].key: Duplicate value: "beta.dashboard": DeviceFlagOverride "tablet-a" already overrides flag "beta.dashboard" for device "device-7"`))
		}).Should(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		base := b.DeepCopy()
		b.Spec.Flags = append(b.Spec.Flags, on("beta.dashboard"))
		expectInvalid(bob.Patch(ctx, b, client.MergeFrom(base)), "vdeviceflagoverride.flagops.dev", `DeviceFlagOverride.flagops.dev "tablet-b" is invalid`)
	})

	It("does not count a disabled override as a conflict", func() {
		first := userOverride(ns, "paused", "user-42", on("beta.dashboard"))
		first.Spec.Enabled = ptrTo(false)
		Expect(alice.Create(ctx, first)).To(Succeed())
		// Even once the webhook's cache holds it.
		Consistently(func() error {
			second := userOverride(ns, "active", "user-42", on("beta.dashboard"))
			err := bob.Create(ctx, second, client.DryRunAll)
			return err
		}).Should(Succeed())
	})

	It("admits unrelated edits of an override whose flag was deleted since, but not changes to that entry", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.doomed"))).To(Succeed())
		o := userOverride(ns, "pilot", "user-1", on("beta.doomed"), valued("checkout.layout", "single-page"))
		Expect(alice.Create(ctx, o)).To(Succeed())

		Expect(k8sClient.Delete(ctx, boolFlag(ns, "beta.doomed"))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "beta.doomed"}, &v1.FeatureFlag{}))
		}).Should(BeTrue())

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
		base := o.DeepCopy()
		o.Spec.Flags[1].Value = js("classic")
		Expect(bob.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())

		base = o.DeepCopy()
		o.Spec.Flags[0].Enabled = ptrTo(false)
		// The webhook reads flags from the manager's cache first: wait until it has seen the
		// deletion too.
		Eventually(func(g Gomega) {
			err := bob.Patch(ctx, o.DeepCopy(), client.MergeFrom(base), client.DryRunAll)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(`spec.flags[0].key: Not found: "beta.doomed"`))
		}).Should(Succeed())
		expectInvalid(bob.Patch(ctx, o, client.MergeFrom(base)), "vuserflagoverride.flagops.dev",
			`spec.flags[0].key: Not found: "beta.doomed"`)
	})

	It("admits a flag and then an override for it straight away", func() {
		// The webhook's cache may not hold the new flag yet; it asks the API server.
		Expect(alice.Create(ctx, boolFlag(ns, "beta.fresh"))).To(Succeed())
		Expect(alice.Create(ctx, userOverride(ns, "pilot", "user-1", on("beta.fresh")))).To(Succeed())
	})
})

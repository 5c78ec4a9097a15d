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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

var _ = Describe("Flag keys", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		f := stringFlag(ns, "new-checkout", "classic")
		f.Spec.Key = "newCheckout"
		Expect(alice.Create(ctx, f)).To(Succeed())
	})

	// rejectedOnceCached waits until the webhook's cache holds the first flag (a dry run is
	// rejected), then checks that a real create is rejected with the same message.
	rejectedOnceCached := func(f *v1.FeatureFlag, parts ...string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			g.Expect(alice.Create(ctx, f.DeepCopy(), client.DryRunAll)).NotTo(Succeed())
		}).Should(Succeed())
		expectInvalid(alice.Create(ctx, f), "vfeatureflag.flagops.dev", parts...)
	}

	It("rejects a second flag with a key in use, naming both objects", func() {
		dup := stringFlag(ns, "checkout-copy", "copy")
		dup.Spec.Key = "newCheckout"
		rejectedOnceCached(dup, `FeatureFlag.flagops.dev "checkout-copy" is invalid`,
			`spec.key: Duplicate value: "newCheckout": FeatureFlag `+ns+`/new-checkout already has this key, so FeatureFlag `+
				ns+`/checkout-copy cannot: keys are unique in a namespace`)
	})

	It("rejects a flag named after a key in use, naming the field that sets it", func() {
		other := stringFlag(ns, "other", "x")
		other.Spec.Key = "checkout.v2"
		Expect(alice.Create(ctx, other)).To(Succeed())
		rejectedOnceCached(stringFlag(ns, "checkout.v2", "y"),
			`metadata.name: Duplicate value: "checkout.v2": FeatureFlag `+ns+`/other already has this key`)
	})

	It("checks override values against the flag with the key, not the name", func() {
		bad := userOverride(ns, "pilot", "user-1", valued("newCheckout", 42))
		expectInvalid(alice.Create(ctx, bad), "vuserflagoverride.flagops.dev",
			`spec.flags[0].value: Invalid value: 42: flag "newCheckout"`)
		byName := userOverride(ns, "pilot", "user-1", valued("new-checkout", "express"))
		expectInvalid(alice.Create(ctx, byName), "vuserflagoverride.flagops.dev",
			`spec.flags[0].key: Not found: "new-checkout": no FeatureFlag has the key "new-checkout"`)
		Expect(alice.Create(ctx, userOverride(ns, "pilot", "user-1", valued("newCheckout", "express")))).To(Succeed())
	})
})

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

package crd

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// These specs run without the webhooks: the override-entries webhook rejects the same
// requests first where it is installed (internal/webhook). Here the admission policy
// config/crd/policy/override-entries.yaml keeps a null value out, and the CRD's schema the
// rest, with the API server's generic messages.
var _ = Describe("Override entries without webhooks (seed 000's PATCH habits)", func() {
	const nullMessage = "spec.flags[0].value: null does not clear an override; remove the entry instead"

	override := func(ns, kind, name string, flags ...any) *unstructured.Unstructured {
		subject := map[string]string{"UserFlagOverride": "userId", "DeviceFlagOverride": "deviceId"}[kind]
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "flagops.dev/v1alpha1",
			"kind":       kind,
			"metadata":   map[string]any{"namespace": ns, "name": name},
			"spec":       map[string]any{subject: "subject-1", "flags": flags},
		}}
	}
	entry := func(key string, value any) map[string]any { return map[string]any{"key": key, "value": value} }

	// rejectedByPolicy retries until the policy, which takes effect asynchronously, rejects
	// the dry-run request that send makes.
	rejectedByPolicy := func(send func() error) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			err := send()
			g.Expect(err).To(HaveOccurred(), "the API server accepted the object")
			g.Expect(err.Error()).To(ContainSubstring(`ValidatingAdmissionPolicy 'override-entries.flagops.dev'`))
			g.Expect(err.Error()).To(ContainSubstring(nullMessage))
		}).Should(Succeed())
	}

	DescribeTable("a null value is rejected by the admission policy, naming the entry",
		func(kind string) {
			u := override(newNamespace(), kind, "pilot", entry("a.flag", nil))
			rejectedByPolicy(func() error { return k8sClient.Create(ctx, u.DeepCopy(), client.DryRunAll) })
		},
		Entry("UserFlagOverride", "UserFlagOverride"),
		Entry("DeviceFlagOverride", "DeviceFlagOverride"),
	)

	It("rejects a null value in a server-side apply, which used to store the entry as its key alone", func() {
		u := override(newNamespace(), "UserFlagOverride", "pilot", entry("a.flag", nil))
		body, err := json.Marshal(u.Object)
		Expect(err).NotTo(HaveOccurred())
		rejectedByPolicy(func() error {
			return k8sClient.Patch(ctx, u.DeepCopy(), client.RawPatch(types.ApplyPatchType, body), client.FieldOwner("kubectl"), client.DryRunAll)
		})
	})

	It("leaves what a merge patch makes of a null value, the key alone, to the schema", func() {
		u := override(newNamespace(), "UserFlagOverride", "pilot", entry("a.flag", true))
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"flags":[{"key":"a.flag","value":null}]}}`))
		expectRejected(k8sClient.Patch(ctx, u, patch), "spec.flags[0]", "should have at least 2 properties")
	})
})

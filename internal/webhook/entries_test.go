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
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// The requests below are the ones kubectl 1.32 sends for a custom resource (seen with -v=9):
//   - kubectl create, and kubectl apply of a new object: POST of the whole object, with
//     value: null as written;
//   - kubectl replace: PUT of the whole object;
//   - kubectl apply of an existing object, kubectl edit, kubectl patch --type merge: a JSON
//     merge patch whose flags list replaces the stored one. kubectl apply drops the null
//     from the list entry itself ({"key":"beta.x"}); kubectl edit and patch send it
//     ({"key":"beta.x","value":null}), and the API server drops it when it applies the
//     patch, before admission;
//   - kubectl patch --type json: a JSON patch;
//   - kubectl apply --server-side: an apply patch, field manager kubectl.

const entriesWebhook = "moverrideentries.flagops.dev"

const (
	nullMessage     = "spec.flags[0].value: null does not clear an override; remove the entry instead"
	keyOnlyMessage  = "spec.flags[0]: has neither value nor enabled"
	duplicateReport = "spec.flags[3].key: duplicate of spec.flags[1].key"
)

// expectEntriesDenied asserts that the entries webhook denied the request with each part.
func expectEntriesDenied(err error, parts ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got: %v", err)
	Expect(err.Error()).To(ContainSubstring(`admission webhook "` + entriesWebhook + `" denied the request`))
	for _, p := range parts {
		Expect(err.Error()).To(ContainSubstring(p))
	}
}

// overrideObject is an override as kubectl reads it from a file.
func overrideObject(ns, kind, name string, flags ...any) *unstructured.Unstructured {
	subject := map[string]string{"UserFlagOverride": "userId", "DeviceFlagOverride": "deviceId"}[kind]
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec":       map[string]any{subject: "subject-1", "flags": flags},
	}}
	return u
}

func entry(key string, value any) map[string]any { return map[string]any{"key": key, "value": value} }

// duplicateFlags repeats beta.x at index 3, first set at index 1.
func duplicateFlags() []any {
	return []any{entry("beta.a", true), entry("beta.x", true), entry("beta.b", true), entry("beta.x", false)}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return raw
}

var _ = Describe("Override entries in the habits of seed 000's PATCH API", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		for _, key := range []string{"beta.a", "beta.b", "beta.x"} {
			Expect(k8sClient.Create(ctx, boolFlag(ns, key))).To(Succeed())
		}
	})

	// existing creates a valid override that the update paths then change.
	existing := func(kind, name string) *unstructured.Unstructured {
		GinkgoHelper()
		u := overrideObject(ns, kind, name, entry("beta.x", true))
		Eventually(func() error { return alice.Create(ctx, u.DeepCopy()) }).Should(Succeed())
		return u
	}

	DescribeTable("reject a null value, naming the entry",
		func(kind string) {
			u := overrideObject(ns, kind, "pilot", entry("beta.x", nil))
			expectEntriesDenied(alice.Create(ctx, u), kind+`.flagops.dev "pilot" is invalid: `+nullMessage)
		},
		Entry("create a UserFlagOverride (kubectl create, kubectl apply of a new object)", "UserFlagOverride"),
		Entry("create a DeviceFlagOverride", "DeviceFlagOverride"),
	)

	// replace sends a PUT of the stored object with flags replaced, again after a conflict
	// with the controllers' own writes, and returns the last error.
	replace := func(u *unstructured.Unstructured, flags []any) error {
		GinkgoHelper()
		var err error
		Eventually(func(g Gomega) {
			fresh := &unstructured.Unstructured{}
			fresh.SetGroupVersionKind(u.GroupVersionKind())
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), fresh)).To(Succeed())
			g.Expect(unstructured.SetNestedSlice(fresh.Object, flags, "spec", "flags")).To(Succeed())
			err = bob.Update(ctx, fresh)
			g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "retry after a conflict: %v", err)
		}).Should(Succeed())
		return err
	}

	It("rejects a null value in an update (kubectl replace)", func() {
		u := existing("UserFlagOverride", "pilot")
		expectEntriesDenied(replace(u, []any{entry("beta.x", nil)}), nullMessage)
	})

	It("rejects a null value in a JSON patch (kubectl patch --type json)", func() {
		u := existing("UserFlagOverride", "pilot")
		patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/flags/0/value","value":null}]`))
		expectEntriesDenied(bob.Patch(ctx, u, patch), nullMessage)
	})

	It("rejects a null value in a server-side apply (kubectl apply --server-side)", func() {
		u := overrideObject(ns, "UserFlagOverride", "pilot", entry("beta.x", nil))
		patch := client.RawPatch(types.ApplyPatchType, mustJSON(u.Object))
		expectEntriesDenied(alice.Patch(ctx, u.DeepCopy(), patch, client.FieldOwner("kubectl")), nullMessage)

		existing("UserFlagOverride", "applied")
		u = overrideObject(ns, "UserFlagOverride", "applied", entry("beta.x", nil))
		patch = client.RawPatch(types.ApplyPatchType, mustJSON(u.Object))
		expectEntriesDenied(bob.Patch(ctx, u.DeepCopy(), patch, client.FieldOwner("kubectl"), client.ForceOwnership), nullMessage)
	})

	DescribeTable("reject what a merge patch leaves of a null value: the key alone (kubectl apply, edit, patch --type merge)",
		func(body string) {
			u := existing("DeviceFlagOverride", "tablet")
			expectEntriesDenied(bob.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(body))),
				keyOnlyMessage, "remove the entry")
		},
		Entry("as kubectl apply sends it", `{"spec":{"flags":[{"key":"beta.x"}]}}`),
		Entry("with the null, as kubectl edit and kubectl patch --type merge send it", `{"spec":{"flags":[{"key":"beta.x","value":null}]}}`),
	)

	It("rejects a repeated key on create, naming both entries (kubectl create, kubectl apply of a new object)", func() {
		u := overrideObject(ns, "UserFlagOverride", "pilot", duplicateFlags()...)
		expectEntriesDenied(alice.Create(ctx, u), `UserFlagOverride.flagops.dev "pilot" is invalid: `+duplicateReport)
		d := overrideObject(ns, "DeviceFlagOverride", "tablet", duplicateFlags()...)
		expectEntriesDenied(alice.Create(ctx, d), duplicateReport)
	})

	It("rejects a repeated key in an update and a merge patch (kubectl replace, apply, edit, patch)", func() {
		u := existing("UserFlagOverride", "pilot")
		body := mustJSON(map[string]any{"spec": map[string]any{"flags": duplicateFlags()}})
		expectEntriesDenied(bob.Patch(ctx, u.DeepCopy(), client.RawPatch(types.MergePatchType, body)), duplicateReport)

		expectEntriesDenied(replace(u, duplicateFlags()), duplicateReport)
	})

	It("rejects a repeated key that a JSON patch adds (kubectl patch --type json)", func() {
		u := existing("UserFlagOverride", "pilot")
		patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"add","path":"/spec/flags/-","value":{"key":"beta.x","value":false}}]`))
		expectEntriesDenied(bob.Patch(ctx, u, patch), "spec.flags[1].key: duplicate of spec.flags[0].key")
	})

	It("leaves a repeated key in a server-side apply to the API server's merge, which fails before admission", func() {
		u := overrideObject(ns, "UserFlagOverride", "pilot", duplicateFlags()...)
		err := alice.Patch(ctx, u.DeepCopy(), client.RawPatch(types.ApplyPatchType, mustJSON(u.Object)), client.FieldOwner("kubectl"))
		Expect(err).To(HaveOccurred())
		Expect(apierrors.IsInternalError(err)).To(BeTrue(), "the API server answers 500, got: %v", err)
		Expect(err.Error()).To(ContainSubstring(`failed to create typed patch object (` + ns + `/pilot; flagops.dev/v1alpha1, Kind=UserFlagOverride): .spec.flags: duplicate entries for key [key="beta.x"]`))
	})

	It("admits the fix each message asks for: the entry removed, or one entry per key", func() {
		u := overrideObject(ns, "UserFlagOverride", "pilot", entry("beta.a", true), entry("beta.x", false))
		Expect(alice.Create(ctx, u)).To(Succeed())
		body := `{"spec":{"flags":[{"key":"beta.a","value":true}]}}`
		Expect(bob.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(body)))).To(Succeed())
		flags, _, err := unstructured.NestedSlice(u.Object, "spec", "flags")
		Expect(err).NotTo(HaveOccurred())
		Expect(flags).To(HaveLen(1))
	})
})

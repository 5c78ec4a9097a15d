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
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// The bounds below were added for kube-api-linter (make lint): every string and list in the
// API has an upper bound, and an optional string that is set is not empty.

// unstructuredUserOverride builds a UserFlagOverride from a raw spec, for input that typed
// Go structs cannot express (an explicitly empty string or list, which they omit).
func unstructuredUserOverride(spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("flagops.dev/v1alpha1")
	u.SetKind("UserFlagOverride")
	u.SetName("o")
	u.Object["spec"] = spec
	return u
}

func checkpoint(mutate func(*v1.AuditCheckpointSpec)) *v1.AuditCheckpoint {
	ck := &v1.AuditCheckpoint{
		ObjectMeta: metav1.ObjectMeta{Name: "ck"},
		Spec: v1.AuditCheckpointSpec{Kind: "FeatureFlag", Name: "a.flag",
			UID: "6f1c2b1e-9a4d-4e8e-8a53-0d1f6c2b9e77", Generation: 1},
	}
	mutate(&ck.Spec)
	return ck
}

// conditions returns n distinct, valid conditions as JSON values.
func conditions(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"type": fmt.Sprintf("Type%d", i), "status": "True", "reason": "Test",
			"message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}
	}
	return out
}

// invalidKeys returns n distinct status.invalidKeys entries.
func invalidKeys(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"key": fmt.Sprintf("flag.n%d", i), "message": "unknown flag"}
	}
	return out
}

// keys returns n distinct flag keys.
func keys(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("flag.n%d", i)
	}
	return out
}

var _ = Describe("API bounds", func() {
	// 1.5 MiB of base64 and one more chunk: the raw length whose base64 form is longer.
	const tooManyBytes = 1572864/4*3 + 3

	DescribeTable("reject a spec outside them, naming the field",
		func(obj client.Object, field, detail string) {
			obj.SetNamespace(newNamespace())
			expectRejected(k8sClient.Create(ctx, obj), field, detail)
		},
		Entry("a FeatureFlag with an empty description", unstructuredFlag(map[string]any{"type": "Boolean", "description": ""}),
			"spec.description", "should be at least 1 chars long"),
		Entry("a user override with an empty reason", unstructuredUserOverride(map[string]any{
			"userId": "user-1", "reason": "", "flags": []any{map[string]any{"key": "a.flag", "enabled": true}}}),
			"spec.reason", "should be at least 1 chars long"),
		// ScheduleStep.at is a metav1.Time, not a pointer: its zero value is sent as null.
		Entry("a schedule step with a zero at", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Schedule = []v1.ScheduleStep{{Enabled: ptr.To(true)}}
			return f
		}(), "spec.schedule[0].at", "Required value"),
		Entry("an AuditCheckpoint with a uid of 129 characters", checkpoint(func(s *v1.AuditCheckpointSpec) {
			s.UID = strings.Repeat("u", 129)
		}), "spec.uid", "may not be more than 128"),
		Entry("an AuditCheckpoint with values over 1.5 MiB in base64", checkpoint(func(s *v1.AuditCheckpointSpec) {
			s.Values = make([]byte, tooManyBytes)
		}), "spec.values", "may not be more than 1572864"),
		Entry("an AuditCheckpoint with pending records over 1.5 MiB in base64", checkpoint(func(s *v1.AuditCheckpointSpec) {
			s.Pending = make([]byte, tooManyBytes)
		}), "spec.pending", "may not be more than 1572864"),
	)

	DescribeTable("reject a status outside them, naming the field",
		func(obj client.Object, status map[string]any, field, detail string) {
			obj.SetNamespace(newNamespace())
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			patch, err := json.Marshal(map[string]any{"status": status})
			Expect(err).NotTo(HaveOccurred())
			expectRejected(k8sClient.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)), field, detail)
		},
		Entry("a FeatureFlag with a negative observedGeneration", boolFlag("a.flag"),
			map[string]any{"observedGeneration": -1}, "status.observedGeneration", "should be greater than or equal to 0"),
		Entry("a FeatureFlag with 17 conditions", boolFlag("a.flag"),
			map[string]any{"conditions": conditions(17)}, "status.conditions", "must have at most 16 items"),
		Entry("an override with a negative observedGeneration", userOverride("o", on("a.flag")),
			map[string]any{"observedGeneration": -1}, "status.observedGeneration", "should be greater than or equal to 0"),
		Entry("an override with 17 conditions", deviceOverride("o", on("a.flag")),
			map[string]any{"conditions": conditions(17)}, "status.conditions", "must have at most 16 items"),
		Entry("an override with 33 applied keys", userOverride("o", on("a.flag")),
			map[string]any{"appliedKeys": keys(33)}, "status.appliedKeys", "must have at most 32 items"),
		Entry("an override with an applied key of 254 characters", userOverride("o", on("a.flag")),
			map[string]any{"appliedKeys": []any{strings.Repeat("k", 254)}}, "status.appliedKeys[0]", "may not be more than 253"),
		Entry("an override with 33 invalid keys", userOverride("o", on("a.flag")),
			map[string]any{"invalidKeys": invalidKeys(33)}, "status.invalidKeys", "must have at most 32 items"),
		Entry("an override with an invalid key of 254 characters", userOverride("o", on("a.flag")),
			map[string]any{"invalidKeys": []any{map[string]any{"key": strings.Repeat("k", 254), "message": "unknown flag"}}},
			"status.invalidKeys[0].key", "may not be more than 253"),
		Entry("an override with an invalid key without a message", deviceOverride("o", on("a.flag")),
			map[string]any{"invalidKeys": []any{map[string]any{"key": "a.flag"}}}, "status.invalidKeys[0].message", "Required value"),
		Entry("an override with an empty invalid-key message", deviceOverride("o", on("a.flag")),
			map[string]any{"invalidKeys": []any{map[string]any{"key": "a.flag", "message": ""}}},
			"status.invalidKeys[0].message", "should be at least 1 chars long"),
		Entry("an override with an invalid-key message of 32769 characters", userOverride("o", on("a.flag")),
			map[string]any{"invalidKeys": []any{map[string]any{"key": "a.flag", "message": strings.Repeat("m", 32769)}}},
			"status.invalidKeys[0].message", "may not be more than 32768"),
	)

	It("accepts a status at the bounds", func() {
		o := userOverride("o", on("a.flag"))
		o.Namespace = newNamespace()
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		patch, err := json.Marshal(map[string]any{"status": map[string]any{
			"observedGeneration": 1, "conditions": conditions(16), "appliedKeys": keys(32), "invalidKeys": invalidKeys(32)}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Status().Patch(ctx, o, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
		Expect(o.Status.InvalidKeys).To(HaveLen(32))
	})
})

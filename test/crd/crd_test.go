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
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// js marshals v into the JSON wrapper used for flag values.
func js(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &apiextensionsv1.JSON{Raw: raw}
}

func boolFlag(name string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true},
	}
}

// keyedFlag is a Boolean flag named name whose spec.key is key.
func keyedFlag(name, key string) *v1.FeatureFlag {
	f := boolFlag(name)
	f.Spec.Key = key
	return f
}

func typedFlag(name string, t v1.FlagType, value any) *v1.FeatureFlag {
	f := boolFlag(name)
	f.Spec.Type = t
	f.Spec.Value = js(value)
	return f
}

// unstructuredFlag builds a FeatureFlag from a raw spec, for input that typed Go structs
// cannot express (such as an explicitly empty list).
func unstructuredFlag(spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("flagops.dev/v1alpha1")
	u.SetKind("FeatureFlag")
	u.SetName("a.flag")
	u.Object["spec"] = spec
	return u
}

func userOverride(name string, entries ...v1.FlagOverrideEntry) *v1.UserFlagOverride {
	return &v1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.UserFlagOverrideSpec{
			UserID:           "user-1",
			FlagOverrideSpec: v1.FlagOverrideSpec{Flags: entries},
		},
	}
}

func deviceOverride(name string, entries ...v1.FlagOverrideEntry) *v1.DeviceFlagOverride {
	return &v1.DeviceFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.DeviceFlagOverrideSpec{
			DeviceID:         "device-1",
			FlagOverrideSpec: v1.FlagOverrideSpec{Flags: entries},
		},
	}
}

func on(key string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptr.To(true)}
}

func entries(n int) []v1.FlagOverrideEntry {
	out := make([]v1.FlagOverrideEntry, n)
	for i := range out {
		out[i] = on(fmt.Sprintf("flag.n%d", i))
	}
	return out
}

func rule(name string, conds ...v1.Condition) v1.Rule {
	return v1.Rule{Name: name, Match: conds}
}

func cond(attr string, op v1.Operator, values ...string) v1.Condition {
	return v1.Condition{Attribute: attr, Operator: op, Values: values}
}

// expectRejected asserts that err is a rejection whose message names field and says detail.
func expectRejected(err error, field, detail string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted the object")
	Expect(err.Error()).To(ContainSubstring(field), "the message does not name the field")
	Expect(err.Error()).To(ContainSubstring(detail))
}

var _ = Describe("Samples", func() {
	files, err := testenv.YAMLFiles(filepath.Join(repoRoot, "config", "samples"))
	if err != nil {
		panic(err)
	}
	if len(files) < 6 {
		panic(fmt.Sprintf("expected at least 6 samples in config/samples, found %d", len(files)))
	}

	for _, f := range files {
		It("accepts "+filepath.Base(f), func() {
			ns := newNamespace()
			objs, err := testenv.ReadObjects(f)
			Expect(err).NotTo(HaveOccurred())
			Expect(objs).NotTo(BeEmpty())
			for _, o := range objs {
				o.SetNamespace(ns)
				Expect(k8sClient.Create(ctx, o)).To(Succeed(), "sample %s %s", o.GetKind(), o.GetName())
			}
		})
	}

	It("lists every sample in the samples kustomization", func() {
		kust, err := testenv.ReadObjects(filepath.Join(repoRoot, "config", "samples", "kustomization.yaml"))
		Expect(err).NotTo(HaveOccurred())
		resources, _, _ := unstructured.NestedStringSlice(kust[0].Object, "resources")
		for _, f := range files {
			Expect(resources).To(ContainElement(filepath.Base(f)))
		}
	})
})

var _ = Describe("Defaults", func() {
	It("ships new flags disabled", func() {
		ns := newNamespace()
		f := &unstructured.Unstructured{}
		f.SetAPIVersion("flagops.dev/v1alpha1")
		f.SetKind("FeatureFlag")
		f.SetNamespace(ns)
		f.SetName("beta.defaults")
		f.Object["spec"] = map[string]any{"type": "Boolean"}
		Expect(k8sClient.Create(ctx, f)).To(Succeed())

		got := &v1.FeatureFlag{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
		Expect(got.Spec.Enabled).To(BeFalse())
	})

	It("defaults an override to enabled with onExpiry Delete", func() {
		ns := newNamespace()
		o := userOverride("defaults", on("beta.defaults"))
		o.Namespace = ns
		Expect(k8sClient.Create(ctx, o)).To(Succeed())

		got := &v1.UserFlagOverride{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
		Expect(got.Spec.Enabled).To(Equal(ptr.To(true)))
		Expect(got.Spec.OnExpiry).To(Equal(v1.OnExpiryDelete))
	})

	// Without it, kstatus would read an object that no controller has looked at yet as
	// Current: it compares observedGeneration with generation only when it is present.
	DescribeTable("serves observedGeneration 0 until a controller writes status, and keeps status out of creates",
		func(kind string, spec map[string]any) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "flagops.dev/v1alpha1", "kind": kind,
				"metadata": map[string]any{"namespace": newNamespace(), "name": "unobserved"},
				"spec":     spec,
				// A create cannot set status: the status subresource drops it.
				"status": map[string]any{"observedGeneration": int64(1)},
			}}
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
			Expect(got.GetGeneration()).To(BeEquivalentTo(1))
			Expect(got.Object["status"]).To(Equal(map[string]any{"observedGeneration": int64(0)}))
		},
		Entry("FeatureFlag", "FeatureFlag", map[string]any{"type": "Boolean"}),
		Entry("UserFlagOverride", "UserFlagOverride", map[string]any{"userId": "u1", "flags": []any{map[string]any{"key": "a.flag", "enabled": true}}}),
		Entry("DeviceFlagOverride", "DeviceFlagOverride", map[string]any{"deviceId": "d1", "flags": []any{map[string]any{"key": "a.flag", "enabled": true}}}),
	)
})

var _ = Describe("Valid objects", func() {
	DescribeTable("are accepted",
		func(obj client.Object) {
			obj.SetNamespace(newNamespace())
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		},
		Entry("a String flag with a string value", typedFlag("a.string", v1.FlagTypeString, "blue")),
		Entry("a Number flag with an integer value", typedFlag("a.int", v1.FlagTypeNumber, 42)),
		Entry("a Number flag with a fractional value", typedFlag("a.float", v1.FlagTypeNumber, 0.25)),
		Entry("an Object flag with an object value", typedFlag("a.object", v1.FlagTypeObject, map[string]any{"a": 1})),
		Entry("a Boolean flag with value true", func() client.Object {
			f := boolFlag("a.bool")
			f.Spec.Value = js(true)
			f.Spec.OffValue = js(false)
			return f
		}()),
		Entry("every operator with the values it takes", func() client.Object {
			f := boolFlag("a.operators")
			f.Spec.Rules = []v1.Rule{rule("all",
				cond("userId", v1.OperatorIn, "a", "b"),
				cond("orgId", v1.OperatorNotIn, "c"),
				cond("email", v1.OperatorStartsWith, "ops-"),
				cond("email", v1.OperatorEndsWith, "@example.com"),
				cond("path", v1.OperatorMatches, "^/v[0-9]+/"),
				cond("deviceId", v1.OperatorExists),
				cond("age", v1.OperatorGreaterThan, "17.5"),
				cond("age", v1.OperatorLessThan, "-1e3"),
				cond("appVersion", v1.OperatorSemVerAtLeast, "4.2.0"),
			)}
			return f
		}()),
		Entry("an override with 32 entries", userOverride("max", entries(32)...)),
		Entry("an override entry with a value only", userOverride("value-only",
			v1.FlagOverrideEntry{Key: "a.string", Value: js("red")})),
		Entry("a device override", deviceOverride("device", on("a.bool"))),
		Entry("a flag whose spec.key has an underscore", keyedFlag("beta.new-dashboard", "beta.new_dashboard")),
		Entry("a flag whose spec.key has capitals", keyedFlag("new-checkout", "newCheckout")),
		Entry("a flag whose spec.key has 253 characters", keyedFlag("long", "K"+strings.Repeat("_", 252))),
		Entry("override entries for keys with underscores and capitals", userOverride("keys",
			on("beta.new_dashboard"), on("newCheckout"), on("Billing_Free-Tier.v2"))),
	)

	It("lets a flag name its own key in spec.key, which changes nothing", func() {
		f := boolFlag("a.flag")
		f.Namespace = newNamespace()
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		f.Spec.Key = "a.flag"
		Expect(k8sClient.Update(ctx, f)).To(Succeed())
		f.Spec.Key = ""
		Expect(k8sClient.Update(ctx, f)).To(Succeed())
	})
})

var _ = Describe("Invalid objects", func() {
	DescribeTable("are rejected on create with a message that names the field",
		func(obj client.Object, field, detail string) {
			obj.SetNamespace(newNamespace())
			expectRejected(k8sClient.Create(ctx, obj), field, detail)
		},
		// FeatureFlag: metadata and type.
		Entry("a key with uppercase letters", boolFlag("Billing.Enabled"),
			"metadata.name", "lowercase RFC 1123 subdomain"),
		Entry("an unknown type", typedFlag("a.flag", "Integer", 1),
			"spec.type", `Unsupported value: "Integer"`),
		Entry("a spec.key with a space", keyedFlag("a.flag", "new checkout"),
			"spec.key", "should match '^[A-Za-z0-9][A-Za-z0-9._-]*$'"),
		Entry("a spec.key that starts with an underscore", keyedFlag("a.flag", "_private"),
			"spec.key", "should match '^[A-Za-z0-9][A-Za-z0-9._-]*$'"),
		Entry("a spec.key with a slash", keyedFlag("a.flag", "team/flag"),
			"spec.key", "should match '^[A-Za-z0-9][A-Za-z0-9._-]*$'"),
		Entry("a spec.key of 254 characters", keyedFlag("a.flag", "K"+strings.Repeat("_", 253)),
			"spec.key", "may not be more than 253"),
		Entry("an override entry key with a slash", userOverride("o", on("team/flag")),
			"spec.flags[0].key", "should match '^[A-Za-z0-9][A-Za-z0-9._-]*$'"),

		// FeatureFlag: values against type (admission policy).
		Entry("a Boolean value of \"yes\"", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Value = js("yes")
			return f
		}(), "spec.value", "must be true or omitted for a Boolean flag"),
		Entry("a Boolean value of false", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Value = js(false)
			return f
		}(), "spec.value", "must be true or omitted for a Boolean flag"),
		Entry("a Boolean offValue of true", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.OffValue = js(true)
			return f
		}(), "spec.offValue", "must be false or omitted for a Boolean flag"),
		Entry("a String flag with no value", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Type = v1.FlagTypeString
			return f
		}(), "spec.value", "required for a String flag"),
		Entry("a Number flag with a string value", typedFlag("a.flag", v1.FlagTypeNumber, "42"),
			"spec.value", "must be a JSON number for a Number flag"),
		Entry("an Object flag with an array value", typedFlag("a.flag", v1.FlagTypeObject, []int{1}),
			"spec.value", "must be a JSON object for an Object flag"),
		Entry("a String flag with a numeric offValue", func() client.Object {
			f := typedFlag("a.flag", v1.FlagTypeString, "on")
			f.Spec.OffValue = js(0)
			return f
		}(), "spec.offValue", "must be a JSON string for a String flag"),
		Entry("a rule value of the wrong type", func() client.Object {
			f := typedFlag("a.flag", v1.FlagTypeString, "on")
			ok := rule("ok", cond("userId", v1.OperatorIn, "a"))
			ok.Value = js("fine")
			bad := rule("bad", cond("userId", v1.OperatorIn, "b"))
			bad.Value = js(true)
			f.Spec.Rules = []v1.Rule{ok, bad}
			return f
		}(), "spec.rules[1].value", "must be a JSON string for a String flag"),
		Entry("a schedule value of the wrong type", func() client.Object {
			f := typedFlag("a.flag", v1.FlagTypeNumber, 1)
			f.Spec.Schedule = []v1.ScheduleStep{{At: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), Value: js("two")}}
			return f
		}(), "spec.schedule[0].value", "must be a JSON number for a Number flag"),

		// FeatureFlag: rollout, rules and schedule.
		Entry("a rollout percentage of 101", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rollout = &v1.Rollout{Percentage: 101}
			return f
		}(), "spec.rollout.percentage", "should be less than or equal to 100"),
		Entry("two rules with the same name", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{
				rule("beta", cond("userId", v1.OperatorIn, "a")),
				rule("beta", cond("userId", v1.OperatorIn, "b")),
			}
			return f
		}(), "spec.rules[1]", "Duplicate value"),
		Entry("an unknown rule operator", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{rule("r", cond("userId", "Contains", "a"))}
			return f
		}(), "spec.rules[0].match[0].operator", `Unsupported value: "Contains"`),
		Entry("a rule with an empty match list", unstructuredFlag(map[string]any{"type": "Boolean",
			"rules": []any{map[string]any{"name": "r", "match": []any{}}}}),
			"spec.rules[0].match", "should have at least 1 items"),
		Entry("a rule without match", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{{Name: "r"}}
			return f
		}(), "spec.rules[0].match", "Required value"),
		Entry("an In condition without values", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{rule("r", cond("userId", v1.OperatorIn))}
			return f
		}(), "spec.rules[0].match[0].values", "non-empty for every other operator"),
		Entry("an Exists condition with values", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{rule("r", cond("userId", v1.OperatorExists, "x"))}
			return f
		}(), "spec.rules[0].match[0].values", "must be empty for the Exists operator"),
		Entry("a GreaterThan condition with a non-number", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{rule("r", cond("age", v1.OperatorGreaterThan, "eighteen"))}
			return f
		}(), "spec.rules[0].match[0].values", "exactly one value, a decimal number"),
		Entry("a SemVerAtLeast condition with a non-version", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Rules = []v1.Rule{rule("r", cond("appVersion", v1.OperatorSemVerAtLeast, "latest"))}
			return f
		}(), "spec.rules[0].match[0].values", "a semantic version"),
		Entry("a schedule step with no change", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Schedule = []v1.ScheduleStep{{At: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))}}
			return f
		}(), "spec.schedule[0]", "should have at least 2 properties"),
		Entry("schedule steps out of order", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Schedule = []v1.ScheduleStep{
				{At: metav1.NewTime(time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)), Enabled: ptr.To(true)},
				{At: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), Enabled: ptr.To(false)},
			}
			return f
		}(), "spec.schedule", "strictly increasing order of at"),
		Entry("a schedule rollout percentage of -1", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Schedule = []v1.ScheduleStep{{At: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), RolloutPercentage: ptr.To[int32](-1)}}
			return f
		}(), "spec.schedule[0].rolloutPercentage", "should be greater than or equal to 0"),
		Entry("a description of 1025 characters", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.Description = strings.Repeat("d", 1025)
			return f
		}(), "spec.description", "may not be more than 1024"),
		Entry("an allow-list with a duplicate user", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.AllowList = &v1.AllowList{Users: []string{"u1", "u1"}}
			return f
		}(), "spec.allowList.users[1]", "Duplicate value"),
		Entry("an allow-list of 1001 orgs", func() client.Object {
			f := boolFlag("a.flag")
			orgs := make([]string, 1001)
			for i := range orgs {
				orgs[i] = fmt.Sprintf("org-%d", i)
			}
			f.Spec.AllowList = &v1.AllowList{Orgs: orgs}
			return f
		}(), "spec.allowList.orgs", "must have at most 1000 items"),
		// Sent as kubectl would send it: the typed client drops an empty list.
		Entry("an empty allowedRoles list", unstructuredFlag(map[string]any{"type": "Boolean", "allowedRoles": []any{}}),
			"spec.allowedRoles", "should have at least 1 items"),
		Entry("a device class with uppercase letters", func() client.Object {
			f := boolFlag("a.flag")
			f.Spec.DeviceClasses = []string{"Phone"}
			return f
		}(), "spec.deviceClasses[0]", "should match"),

		// Overrides.
		Entry("a user override with 33 flag entries", userOverride("o", entries(33)...),
			"spec.flags", "must have at most 32 items"),
		Entry("a user override with zero flag entries", unstructuredUserOverride(map[string]any{"userId": "user-1", "flags": []any{}}),
			"spec.flags", "should have at least 1 items"),
		Entry("a user override entry with neither value nor enabled", userOverride("o", v1.FlagOverrideEntry{Key: "a.flag"}),
			"spec.flags[0]", "should have at least 2 properties"),
		Entry("a user override with a duplicate key", userOverride("o", on("a.flag"), on("a.flag")),
			"spec.flags[1]", "Duplicate value"),
		Entry("a user override with a reason of 501 characters", func() client.Object {
			o := userOverride("o", on("a.flag"))
			o.Spec.Reason = strings.Repeat("r", 501)
			return o
		}(), "spec.reason", "may not be more than 500"),
		Entry("a user override with an empty userId", unstructuredUserOverride(map[string]any{"userId": "",
			"flags": []any{map[string]any{"key": "a.flag", "enabled": true}}}),
			"spec.userId", "should be at least 1 chars long"),
		Entry("a user override with an unknown onExpiry", func() client.Object {
			o := userOverride("o", on("a.flag"))
			o.Spec.OnExpiry = "Archive"
			return o
		}(), "spec.onExpiry", `Unsupported value: "Archive"`),
		Entry("a device override with 33 flag entries", deviceOverride("o", entries(33)...),
			"spec.flags", "must have at most 32 items"),
		Entry("a device override with a deviceId of 254 characters", func() client.Object {
			o := deviceOverride("o", on("a.flag"))
			o.Spec.DeviceID = strings.Repeat("d", 254)
			return o
		}(), "spec.deviceId", "may not be more than 253"),
	)

	DescribeTable("are rejected on update with a message that names the field",
		func(obj client.Object, mutate func(client.Object), field, detail string) {
			obj.SetNamespace(newNamespace())
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			mutate(obj)
			expectRejected(k8sClient.Update(ctx, obj), field, detail)
		},
		Entry("type changed", typedFlag("a.flag", v1.FlagTypeString, "x"), func(o client.Object) {
			f := o.(*v1.FeatureFlag)
			f.Spec.Type = v1.FlagTypeNumber
			f.Spec.Value = js(1)
		}, "spec.type", "type is immutable"),
		Entry("userId changed", userOverride("o", on("a.flag")), func(o client.Object) {
			o.(*v1.UserFlagOverride).Spec.UserID = "user-2"
		}, "spec.userId", "userId is immutable"),
		Entry("deviceId changed", deviceOverride("o", on("a.flag")), func(o client.Object) {
			o.(*v1.DeviceFlagOverride).Spec.DeviceID = "device-2"
		}, "spec.deviceId", "deviceId is immutable"),
		Entry("spec.key changed", keyedFlag("new-checkout", "newCheckout"), func(o client.Object) {
			o.(*v1.FeatureFlag).Spec.Key = "new_checkout"
		}, "spec.key", "the flag key is immutable"),
		Entry("spec.key set, to another key than the name", boolFlag("a.flag"), func(o client.Object) {
			o.(*v1.FeatureFlag).Spec.Key = "a_flag"
		}, "spec.key", "the flag key is immutable"),
		Entry("spec.key removed, where the name is another key", keyedFlag("new-checkout", "newCheckout"), func(o client.Object) {
			o.(*v1.FeatureFlag).Spec.Key = ""
		}, "spec.key", "the flag key is immutable"),
		Entry("a Boolean value set to \"yes\"", boolFlag("a.flag"), func(o client.Object) {
			o.(*v1.FeatureFlag).Spec.Value = js("yes")
		}, "spec.value", "must be true or omitted for a Boolean flag"),
	)

	It("keeps the stored object when an update is rejected", func() {
		ns := newNamespace()
		f := typedFlag("a.flag", v1.FlagTypeString, "kept")
		f.Namespace = ns
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		f.Spec.Value = js(7)
		Expect(k8sClient.Update(ctx, f)).NotTo(Succeed())

		got := &v1.FeatureFlag{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), got)).To(Succeed())
		Expect(string(got.Spec.Value.Raw)).To(Equal(`"kept"`))
	})
})

var _ = Describe("Published schema", func() {
	It("documents every spec and status field, as kubectl explain prints it", func() {
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			paths, err := dc.OpenAPIV3().Paths()
			g.Expect(err).NotTo(HaveOccurred())
			gv, ok := paths["apis/flagops.dev/v1alpha1"]
			g.Expect(ok).To(BeTrue(), "flagops.dev/v1alpha1 is not published yet")
			raw, err := gv.Schema("application/json")
			g.Expect(err).NotTo(HaveOccurred())
			var doc struct {
				Components struct {
					Schemas map[string]map[string]any `json:"schemas"`
				} `json:"components"`
			}
			g.Expect(json.Unmarshal(raw, &doc)).To(Succeed())

			for _, kind := range []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"} {
				s, ok := doc.Components.Schemas["dev.flagops.v1alpha1."+kind]
				g.Expect(ok).To(BeTrue(), "no schema for %s", kind)
				g.Expect(s["description"]).NotTo(BeEmpty(), "%s has no description", kind)
				props := s["properties"].(map[string]any)
				for _, top := range []string{"spec", "status"} {
					var missing []string
					undocumented(props[top].(map[string]any), kind+"."+top, &missing)
					g.Expect(missing).To(BeEmpty(), "fields without a description")
				}
			}
			enabled := doc.Components.Schemas["dev.flagops.v1alpha1.FeatureFlag"]["properties"].(map[string]any)["spec"].(map[string]any)["properties"].(map[string]any)["enabled"].(map[string]any)
			g.Expect(enabled["description"]).To(ContainSubstring("kill switch"))
		}).Should(Succeed())
	})

	It("serves the printer columns that kubectl get shows", func() {
		httpClient, err := rest.HTTPClientFor(cfg)
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace()
		// columns lists the Table columns the API server serves for resource. A just-installed
		// CRD may answer 429 while its storage initialises, which client-go would retry.
		columns := func(g Gomega, resource string) []string {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				strings.TrimSuffix(cfg.Host, "/")+"/apis/flagops.dev/v1alpha1/namespaces/"+ns+"/"+resource, nil)
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
			resp, err := httpClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer func() { g.Expect(resp.Body.Close()).To(Succeed()) }()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
			var table metav1.Table
			g.Expect(json.Unmarshal(body, &table)).To(Succeed())
			var names []string
			for _, c := range table.ColumnDefinitions {
				names = append(names, c.Name)
			}
			return names
		}
		Eventually(func(g Gomega) {
			g.Expect(columns(g, "featureflags")).To(Equal([]string{"Name", "Key", "Type", "Enabled", "Rollout", "Users", "Devices", "Ready", "Status", "Age"}))
			g.Expect(columns(g, "userflagoverrides")).To(Equal([]string{"Name", "User", "Flags", "Expires", "Ready", "Status", "Age"}))
			g.Expect(columns(g, "deviceflagoverrides")).To(Equal([]string{"Name", "Device", "Flags", "Expires", "Ready", "Status", "Age"}))
		}).Should(Succeed())
	})
})

// undocumented appends the path of every property below schema that has no description.
func undocumented(schema map[string]any, path string, missing *[]string) {
	if d, _ := schema["description"].(string); d == "" {
		*missing = append(*missing, path)
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		for name, p := range props {
			undocumented(p.(map[string]any), path+"."+name, missing)
		}
	}
	if items, ok := schema["items"].(map[string]any); ok {
		// Items inherit the list's description; only their own properties need one.
		if props, ok := items["properties"].(map[string]any); ok {
			for name, p := range props {
				undocumented(p.(map[string]any), path+"[]."+name, missing)
			}
		}
	}
}

var _ = Describe("Lookups by user and by device (seed 001)", func() {
	It("lists one user's or one device's overrides with a server-side field selector", func() {
		ns := newNamespace()
		for i, user := range []string{"u-42", "u-7", "u-42"} {
			o := userOverride(fmt.Sprintf("o%d", i), on("beta.lookup"))
			o.Namespace, o.Spec.UserID = ns, user
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		for i, device := range []string{"phone-1", "phone-2"} {
			o := deviceOverride(fmt.Sprintf("d%d", i), on("beta.lookup"))
			o.Namespace, o.Spec.DeviceID = ns, device
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}

		users := &v1.UserFlagOverrideList{}
		Expect(k8sClient.List(ctx, users, client.InNamespace(ns), client.MatchingFields{"spec.userId": "u-42"})).To(Succeed())
		Expect(users.Items).To(HaveLen(2))
		for _, o := range users.Items {
			Expect(o.Spec.UserID).To(Equal("u-42"))
		}
		devices := &v1.DeviceFlagOverrideList{}
		Expect(k8sClient.List(ctx, devices, client.InNamespace(ns), client.MatchingFields{"spec.deviceId": "phone-2"})).To(Succeed())
		Expect(devices.Items).To(HaveLen(1))
		Expect(devices.Items[0].Name).To(Equal("d1"))

		// Any other field is refused by the API server, naming it.
		err := k8sClient.List(ctx, users, client.InNamespace(ns), client.MatchingFields{"spec.reason": "x"})
		Expect(err).To(MatchError(ContainSubstring("field label not supported: spec.reason")))
	})
})

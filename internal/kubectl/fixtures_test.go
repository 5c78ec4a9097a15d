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

package kubectl

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// fixtureNow is the clock of the golden tests.
var fixtureNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func js(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: json.RawMessage(s)} }

func ptrTo[T any](v T) *T { return &v }

func at(d time.Duration) metav1.Time { return metav1.NewTime(fixtureNow.Add(d)) }

// flagObj returns a FeatureFlag created an hour before fixtureNow, with a Ready=True status
// of its generation.
func flagObj(ns, name string, spec v1.FeatureFlagSpec) v1.FeatureFlag {
	f := v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: at(-time.Hour)},
		Spec:       spec,
	}
	return withReady(f, metav1.ConditionTrue, v1.ReasonReconciled, "serving generation 1")
}

func withReady(f v1.FeatureFlag, status metav1.ConditionStatus, reason, msg string) v1.FeatureFlag {
	f.Status.ObservedGeneration = f.Generation
	f.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: f.Generation, LastTransitionTime: at(-time.Hour)}}
	return f
}

func userOv(ns, name, user string, created time.Duration, expires *metav1.Time, reason string, entries ...v1.FlagOverrideEntry) v1.UserFlagOverride {
	return v1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: at(created), UID: types.UID("uid-u-" + name)},
		Spec: v1.UserFlagOverrideSpec{UserID: user, FlagOverrideSpec: v1.FlagOverrideSpec{
			Enabled: ptrTo(true), ExpiresAt: expires, Reason: reason, Flags: entries}},
	}
}

func deviceOv(ns, name, device string, created time.Duration, expires *metav1.Time, reason string, entries ...v1.FlagOverrideEntry) v1.DeviceFlagOverride {
	return v1.DeviceFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: at(created), UID: types.UID("uid-d-" + name)},
		Spec: v1.DeviceFlagOverrideSpec{DeviceID: device, FlagOverrideSpec: v1.FlagOverrideSpec{
			Enabled: ptrTo(true), ExpiresAt: expires, Reason: reason, Flags: entries}},
	}
}

func entryOn(key string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptrTo(true)}
}
func entryOff(key string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptrTo(false)}
}
func entryVal(key, raw string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Value: js(raw)}
}

// fixture is the namespace shop of the golden tests (and one flag of billing): a flag of
// every kind of resolution, and the cases where the server's view differs.
func fixture() *Objects {
	const ns = "shop"
	rollout := flagObj(ns, "beta.dashboard", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true,
		Rollout: &v1.Rollout{Percentage: 25}, Description: "the new dashboard"})
	rules := flagObj(ns, "checkout.v2", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true,
		Rules:   []v1.Rule{{Name: "pro-plan", Match: []v1.Condition{{Attribute: "plan", Operator: v1.OperatorIn, Values: []string{"pro"}}}}},
		Rollout: &v1.Rollout{Percentage: 0}})
	theme := flagObj(ns, "theme", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: js(`"light"`), OffValue: js(`"dark"`),
		AllowedRoles: []string{"user", "admin"},
		Schedule:     []v1.ScheduleStep{{At: at(-24 * time.Hour), Value: js(`"winter"`)}, {At: at(48 * time.Hour), Enabled: ptrTo(false)}}})
	banner := flagObj(ns, "banner", v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: false, Value: js(`{"text":"Sale"}`), OffValue: js(`{}`)})
	banner.Generation = 2 // the manager has not seen generation 2 yet
	search := flagObj(ns, "search-v3", v1.FeatureFlagSpec{Key: "search.v3", Type: v1.FlagTypeBoolean, Enabled: true,
		AllowList: &v1.AllowList{Orgs: []string{"acme"}}, Rollout: &v1.Rollout{Percentage: 0}})
	searchCopy := withReady(flagObj(ns, "search-v3-copy", v1.FeatureFlagSpec{Key: "search.v3", Type: v1.FlagTypeBoolean, Enabled: false}),
		metav1.ConditionFalse, v1.ReasonDuplicateKey, `the key "search.v3" is also the key of FeatureFlag shop/search-v3, which is older and served instead; delete this flag, or create it again with another spec.key`)
	searchCopy.CreationTimestamp = at(-30 * time.Minute)
	broken := flagObj(ns, "limits.max-items", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`"many"`)})
	broken.Generation = 2
	broken = withReady(broken, metav1.ConditionFalse, v1.ReasonInvalidSpec,
		"generation 2 is not served: spec.value: not a number; the evaluator keeps serving generation 1, the last valid version")
	fresh := flagObj(ns, "limits.page-size", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`50`), OffValue: js(`20`)})
	fresh.Status = v1.FeatureFlagStatus{} // not reconciled yet

	return &Objects{
		Flags: []v1.FeatureFlag{rollout, rules, theme, banner, search, searchCopy, broken, fresh,
			flagObj("billing", "invoices.pdf", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true})},
		Users: []v1.UserFlagOverride{
			userOv(ns, "pilot-alice", "alice", -2*time.Hour, ptrTo(at(7*24*time.Hour)), "pilot customer",
				entryOn("beta.dashboard"), entryVal("theme", `"sepia"`)),
			userOv(ns, "alice-old", "alice", -time.Hour, nil, "", entryOff("beta.dashboard")),
			userOv(ns, "bob-expired", "bob", -48*time.Hour, ptrTo(at(-time.Hour)), "trial ended", entryOn("checkout.v2")),
			userOv(ns, "carol-typo", "carol", -time.Hour, nil, "", entryOn("chekout.v2")),
		},
		Devices: []v1.DeviceFlagOverride{
			deviceOv(ns, "tab-1-qa", "tab-1", -3*time.Hour, ptrTo(at(6*time.Hour)), "QA tablet", entryVal("theme", `"contrast"`), entryOff("beta.dashboard")),
		},
	}
}

// fakeLister serves fixed objects.
type fakeLister struct {
	objs       *Objects
	namespaces []string
	err        error
	events     []corev1.Event
}

func (f *fakeLister) Events(_ context.Context, ns string) ([]corev1.Event, error) {
	var out []corev1.Event
	for _, e := range f.events {
		if e.Namespace == ns {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeLister) List(_ context.Context, ns string) (*Objects, error) {
	if f.err != nil {
		return nil, f.err
	}
	if ns == "" {
		return f.objs, nil
	}
	out := &Objects{}
	for _, o := range f.objs.Flags {
		if o.Namespace == ns {
			out.Flags = append(out.Flags, o)
		}
	}
	for _, o := range f.objs.Users {
		if o.Namespace == ns {
			out.Users = append(out.Users, o)
		}
	}
	for _, o := range f.objs.Devices {
		if o.Namespace == ns {
			out.Devices = append(out.Devices, o)
		}
	}
	return out, nil
}

func (f *fakeLister) NamespaceExists(_ context.Context, ns string) (bool, error) {
	for _, n := range f.namespaces {
		if n == ns {
			return true, nil
		}
	}
	return false, nil
}

// errWrite is what refusingWriter answers.
var errWrite = errors.New("the test's writer refuses every write")

// refusingWriter refuses every write and counts the attempts, so that tests of commands
// that must write nothing (bad input, --export, client dry runs) fail if one is attempted.
type refusingWriter struct{ calls *int }

func (w refusingWriter) count() error {
	if w.calls != nil {
		*w.calls++
	}
	return errWrite
}
func (w refusingWriter) Create(context.Context, client.Object, bool) error        { return w.count() }
func (w refusingWriter) Apply(context.Context, client.Object, bool) error         { return w.count() }
func (w refusingWriter) Patch(context.Context, client.Object, []byte, bool) error { return w.count() }
func (w refusingWriter) Delete(context.Context, client.Object, bool) error        { return w.count() }

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
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

const agreeNS = "agree"

func cond(attr string, op v1.Operator, values ...string) v1.Condition {
	return v1.Condition{Attribute: attr, Operator: op, Values: values}
}

// agreementFlags are flags with rules, rollouts, role gates, allow-lists, schedules, kill
// switches and device classes, plus a duplicate key and a flag that does not compile.
func agreementFlags() []v1.FeatureFlag {
	pct := func(p int32) *int32 { return &p }
	on, off := true, false
	flags := []v1.FeatureFlag{
		flagObj(agreeNS, "plain", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true}),
		flagObj(agreeNS, "killed", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: false, Value: js(`"new"`), OffValue: js(`"old"`)}),
		flagObj(agreeNS, "rollout-user", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true, Rollout: &v1.Rollout{Percentage: 40}}),
		flagObj(agreeNS, "rollout-account", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`3`), OffValue: js(`1`),
			Rollout: &v1.Rollout{Percentage: 60, BucketBy: "account"}}),
		flagObj(agreeNS, "rules", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: js(`"basic"`), OffValue: js(`"none"`),
			Rules: []v1.Rule{
				{Name: "pro-eu", Match: []v1.Condition{cond("plan", v1.OperatorIn, "pro"), cond("country", v1.OperatorIn, "DE", "FR")}, Value: js(`"pro-eu"`)},
				{Name: "new-app", Match: []v1.Condition{cond("version", v1.OperatorSemVerAtLeast, "2.0.0")}, Value: js(`"modern"`)},
				{Name: "not-free", Match: []v1.Condition{cond("plan", v1.OperatorNotIn, "free")}, Value: js(`"paid"`)},
				{Name: "acme-ish", Match: []v1.Condition{cond("orgId", v1.OperatorStartsWith, "ac")}},
			},
			Rollout: &v1.Rollout{Percentage: 50}}),
		flagObj(agreeNS, "numbers", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`10`), OffValue: js(`0`),
			Rules: []v1.Rule{
				{Name: "big", Match: []v1.Condition{cond("seats", v1.OperatorGreaterThan, "100")}, Value: js(`100`)},
				{Name: "small", Match: []v1.Condition{cond("seats", v1.OperatorLessThan, "5")}, Value: js(`1`)},
				{Name: "has-country", Match: []v1.Condition{cond("country", v1.OperatorExists)}, Value: js(`5`)},
			}}),
		flagObj(agreeNS, "admins-only", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true, AllowedRoles: []string{"admin"}}),
		flagObj(agreeNS, "guests-too", v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true, Value: js(`{"tier":"all"}`), OffValue: js(`{}`),
			AllowedRoles: []string{"guest", "user"}, Rollout: &v1.Rollout{Percentage: 30}}),
		flagObj(agreeNS, "allow-listed", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: false,
			AllowList: &v1.AllowList{Users: []string{"u3", "u7"}, Orgs: []string{"globex"}}}),
		flagObj(agreeNS, "scheduled", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: false, Value: js(`"v1"`), OffValue: js(`"v0"`),
			Rollout: &v1.Rollout{Percentage: 10},
			Schedule: []v1.ScheduleStep{
				{At: at(-48 * time.Hour), Enabled: &on},
				{At: at(-24 * time.Hour), RolloutPercentage: pct(70), Value: js(`"v2"`)},
				{At: at(24 * time.Hour), Enabled: &off},
			}}),
		flagObj(agreeNS, "scheduled-off", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true,
			Schedule: []v1.ScheduleStep{{At: at(-time.Hour), Enabled: &off}, {At: at(time.Hour), Enabled: &on}}}),
		flagObj(agreeNS, "tablets", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: js(`"big"`), OffValue: js(`"small"`),
			DeviceClasses: []string{"tablet", "watch"}}),
		flagObj(agreeNS, "dup-first", v1.FeatureFlagSpec{Key: "dup", Type: v1.FlagTypeBoolean, Enabled: true}),
		flagObj(agreeNS, "dup-second", v1.FeatureFlagSpec{Key: "dup", Type: v1.FlagTypeBoolean, Enabled: false}),
		flagObj(agreeNS, "broken", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`"ten"`)}),
	}
	flags[len(flags)-2].CreationTimestamp = at(-time.Minute) // dup-second is younger
	return flags
}

// agreementOverrides draws user overrides for users u0..u19 and device overrides for
// devices d0..d9: values, on and off entries, disabled and expired objects, and several
// objects for one subject so that conflicts occur.
func agreementOverrides(rng *rand.Rand) ([]v1.UserFlagOverride, []v1.DeviceFlagOverride) {
	values := map[string][]string{
		"plain": {``}, "killed": {`"forced"`, ``}, "rollout-user": {``}, "rollout-account": {`7`, ``},
		"rules": {`"vip"`, ``}, "numbers": {`42`}, "admins-only": {``}, "guests-too": {`{"tier":"vip"}`},
		"allow-listed": {``}, "scheduled": {`"pinned"`}, "scheduled-off": {``}, "tablets": {`"huge"`}, "dup": {``},
		"broken": {`5`}, "missing": {``},
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries := func() []v1.FlagOverrideEntry {
		var out []v1.FlagOverrideEntry
		for _, k := range keys {
			if rng.IntN(4) != 0 {
				continue
			}
			vals := values[k]
			switch v := vals[rng.IntN(len(vals))]; {
			case v != "":
				out = append(out, entryVal(k, v))
			case rng.IntN(2) == 0:
				out = append(out, entryOff(k))
			default:
				out = append(out, entryOn(k))
			}
		}
		if len(out) == 0 {
			out = append(out, entryOn("plain"))
		}
		return out
	}
	meta := func(i int) (time.Duration, *metav1.Time, bool) {
		created := -time.Duration(1+rng.IntN(100)) * time.Hour
		var exp *metav1.Time
		switch rng.IntN(4) {
		case 0:
			exp = ptrTo(at(-time.Duration(1+rng.IntN(10)) * time.Hour)) // expired
		case 1:
			exp = ptrTo(at(time.Duration(1+rng.IntN(100)) * time.Hour))
		}
		return created, exp, rng.IntN(8) != 0
	}
	var users []v1.UserFlagOverride
	for i := range 30 {
		created, exp, enabled := meta(i)
		o := userOv(agreeNS, fmt.Sprintf("user-%02d", i), fmt.Sprintf("u%d", rng.IntN(20)), created, exp, fmt.Sprintf("reason %d", i), entries()...)
		o.Spec.Enabled = &enabled
		users = append(users, o)
	}
	var devices []v1.DeviceFlagOverride
	for i := range 15 {
		created, exp, enabled := meta(i)
		o := deviceOv(agreeNS, fmt.Sprintf("device-%02d", i), fmt.Sprintf("d%d", rng.IntN(10)), created, exp, fmt.Sprintf("device reason %d", i), entries()...)
		o.Spec.Enabled = &enabled
		devices = append(devices, o)
	}
	return users, devices
}

// agreementContext draws a context with a user, and often a device, an org, a role and
// free attributes.
func agreementContext(rng *rand.Rand) evaluator.Context {
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	ctx := evaluator.Context{
		UserID: fmt.Sprintf("u%d", rng.IntN(25)),
		OrgID:  pick("", "acme", "acorn", "globex", "initech"),
		Role:   pick("", "guest", "user", "admin"),
	}
	if rng.IntN(2) == 0 {
		ctx.DeviceID = fmt.Sprintf("d%d", rng.IntN(12))
		ctx.DeviceClass = pick("phone", "tablet", "laptop", "charger", "watch")
	}
	attrs := map[string]string{
		"plan": pick("", "free", "pro", "team"), "country": pick("", "DE", "FR", "US"),
		"version": pick("", "1.9.3", "2.0.0", "2.4.1"), "seats": pick("", "1", "3", "50", "250"),
		"account": pick("", "a1", "a2", "a3", "a4", "a5"),
	}
	for k, v := range attrs {
		if v != "" {
			if ctx.Attributes == nil {
				ctx.Attributes = map[string]any{}
			}
			ctx.Attributes[k] = v
		}
	}
	return ctx
}

// contextArgs are the plugin's flags for ctx.
func contextArgs(ctx evaluator.Context) []string {
	args := []string{"--user", ctx.UserID}
	for _, kv := range [][2]string{{"--org", ctx.OrgID}, {"--role", ctx.Role}, {"--device", ctx.DeviceID}, {"--device-class", ctx.DeviceClass}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	for k, v := range ctx.Attributes {
		args = append(args, "--attr", k+"="+v.(string))
	}
	return args
}

// contextQuery is the server's query for ctx, the user being the path's.
func contextQuery(ctx evaluator.Context) string {
	q := url.Values{}
	for _, kv := range [][2]string{{"orgId", ctx.OrgID}, {"role", ctx.Role}, {"deviceId", ctx.DeviceID}, {"deviceClass", ctx.DeviceClass}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	for k, v := range ctx.Attributes {
		q.Set("attr."+k, v.(string))
	}
	return q.Encode()
}

// serverFlag is what the server's user view says about a flag.
type serverFlag struct {
	Value    json.RawMessage `json:"value"`
	Source   string          `json:"source"`
	Reason   string          `json:"reason"`
	Hidden   bool            `json:"hidden"`
	Override *struct {
		Object    evaluator.ObjectRef `json:"object"`
		ExpiresAt string              `json:"expiresAt"`
		Reason    string              `json:"reason"`
	} `json:"override"`
}

// TestEffectiveAgreesWithServer compares effective with the server's /v1/users/{id}/flags
// for 200 contexts: the server's store is loaded by the manager's Syncer from the same
// objects (through a fake client), the plugin's by its own load; every flag's value, source,
// reason and deciding override must be the same.
func TestEffectiveAgreesWithServer(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	users, devices := agreementOverrides(rng)
	objs := &Objects{Flags: agreementFlags(), Users: users, Devices: devices}

	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return fixtureNow })))
	var initial []client.Object
	for i := range objs.Flags {
		initial = append(initial, objs.Flags[i].DeepCopy())
	}
	for i := range objs.Users {
		initial = append(initial, objs.Users[i].DeepCopy())
	}
	for i := range objs.Devices {
		initial = append(initial, objs.Devices[i].DeepCopy())
	}
	reader := fake.NewClientBuilder().WithScheme(newScheme()).WithObjects(initial...).Build()
	if err := controllers.NewSyncer(reader, store).InitialSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(store, server.Options{DefaultNamespace: agreeNS}))
	t.Cleanup(srv.Close)

	lister := &fakeLister{objs: objs, namespaces: []string{agreeNS}}
	sources := map[string]int{}
	for i := range 200 {
		ctx := agreementContext(rng)
		name := fmt.Sprintf("%03d %s", i, ctx.String())

		resp, err := http.Get(srv.URL + "/namespaces/" + agreeNS + "/v1/users/" + url.PathEscape(ctx.UserID) + "/flags?" + contextQuery(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var want struct {
			Flags map[string]serverFlag `json:"flags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&want)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: server: status %d, %v", name, resp.StatusCode, err)
		}

		stdout, stderr, code := runWith(lister, append([]string{"effective", "-n", agreeNS, "-o", "json"}, contextArgs(ctx)...)...)
		if code != 0 {
			t.Fatalf("%s: plugin: exit code %d: %s", name, code, stderr)
		}
		var got EffectiveView
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%s: plugin output: %v", name, err)
		}

		seen := map[string]bool{}
		for _, f := range got.Flags {
			seen[f.Key] = true
			w, ok := want.Flags[f.Key]
			if f.Key == "broken" {
				// Never valid, so the server does not serve it at all; the plugin says so.
				if ok || f.ErrorCode != "PARSE_ERROR" {
					t.Errorf("%s: broken: server has it %v, plugin error %q", name, ok, f.ErrorCode)
				}
				continue
			}
			if !ok {
				t.Errorf("%s: %s: the server's view has no such flag", name, f.Key)
				continue
			}
			sources[f.SourceKind]++
			if !jsonEqual(f.Value, w.Value) || f.Source != w.Source || f.Reason != w.Reason || f.Hidden != w.Hidden {
				t.Errorf("%s: %s: plugin %s %s %s hidden=%v, server %s %s %s hidden=%v", name, f.Key,
					f.Value, f.Source, f.Reason, f.Hidden, w.Value, w.Source, w.Reason, w.Hidden)
			}
			switch {
			case (f.Override == nil) != (w.Override == nil):
				t.Errorf("%s: %s: plugin override %+v, server %+v", name, f.Key, f.Override, w.Override)
			case f.Override != nil:
				if f.Override.Name != w.Override.Object.Name || f.Override.ExpiresAt != w.Override.ExpiresAt || f.Override.Reason != w.Override.Reason {
					t.Errorf("%s: %s: plugin override %+v, server %+v", name, f.Key, *f.Override, *w.Override)
				}
			}
		}
		for key := range want.Flags {
			if !seen[key] {
				t.Errorf("%s: %s: the plugin has no such flag", name, key)
			}
		}
	}
	// The set must exercise every kind of source, or the comparison proves little.
	for _, kind := range []string{"default", "kill-switch", "role-gate", "allow-list", "rule", "rollout", "schedule", "user-override", "device-override"} {
		if sources[kind] == 0 {
			t.Errorf("no flag was decided by %s in 200 contexts: %v", kind, sources)
		}
	}
	t.Logf("sources compared: %v", sources)
}

// jsonEqual reports whether two JSON values are equal, absent counting as null.
func jsonEqual(a, b json.RawMessage) bool {
	norm := func(r json.RawMessage) string {
		if len(r) == 0 {
			return "null"
		}
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return "invalid " + string(r)
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	return norm(a) == norm(b)
}

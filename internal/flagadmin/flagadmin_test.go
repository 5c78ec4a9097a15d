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

package flagadmin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

var testNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func js(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: json.RawMessage(s)} }

func ptrTo[T any](v T) *T { return &v }

// testObjects is a namespace with a flag of each type, alice's own override object, an
// older one of hers from git, and a disabled one of bob's.
func testObjects() *Objects {
	flag := func(name string, spec v1.FeatureFlagSpec) v1.FeatureFlag {
		return v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))}, Spec: spec}
	}
	user := func(name, id string, enabled bool, entries ...v1.FlagOverrideEntry) v1.UserFlagOverride {
		return v1.UserFlagOverride{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: "7", CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))},
			Spec:       v1.UserFlagOverrideSpec{UserID: id, FlagOverrideSpec: v1.FlagOverrideSpec{Enabled: &enabled, Flags: entries}},
		}
	}
	return &Objects{
		Flags: []v1.FeatureFlag{
			flag("dark", v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true}),
			flag("limit", v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true, Value: js(`10`), OffValue: js(`0`),
				Schema: js(`{"type":"number","maximum":100}`)}),
			flag("theme", v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: js(`"light"`), OffValue: js(`"dark"`),
				Schedule: []v1.ScheduleStep{{At: metav1.NewTime(testNow.Add(-time.Minute)), Enabled: ptrTo(false)}}}),
		},
		Users: []v1.UserFlagOverride{
			user("user-alice", "alice", true, v1.FlagOverrideEntry{Key: "limit", Value: js(`20`)}),
			user("alice-from-git", "alice", true, v1.FlagOverrideEntry{Key: "dark", Value: js(`true`)}),
			user("user-bob", "bob", false, v1.FlagOverrideEntry{Key: "limit", Value: js(`5`)}),
		},
	}
}

// consoleHints are hints as a front end with form fields words them.
var consoleHints = Hints{
	NewExpiry: "give a new expiry", ExpiresAt: "expiry",
	Clear: func(s Subject, key string) string { return "Clear override of " + key },
}

func TestPlanSet(t *testing.T) {
	alice := Subject{Kind: evaluator.SubjectUser, ID: "alice"}
	tests := []struct {
		name    string
		subject Subject
		entries []Assignment
		expiry  time.Duration
		// want are the entries of the planned object, KEY=VALUE; wantErr a part of the error.
		want        []string
		wantChanged []string
		wantErr     string
	}{
		{"typed values, the last of a key wins", alice, []Assignment{{Key: "limit", Text: "30"}, {Key: "theme", Text: "sepia"}}, 0,
			[]string{"limit=30", "theme=\"sepia\""}, []string{"limit", "theme"}, ""},
		{"null clears", alice, []Assignment{{Key: "limit", Text: "null", Clear: true}}, 0, nil, []string{"limit"}, ""},
		{"same value changes nothing", alice, []Assignment{{Key: "limit", Text: "20"}}, 0, []string{"limit=20"}, nil, ""},
		{"schema", alice, []Assignment{{Key: "limit", Text: "500"}}, 0, nil, nil, "limit=500:"},
		{"type", Subject{Kind: evaluator.SubjectUser, ID: "carol"}, []Assignment{{Key: "dark", Text: "yes"}}, 0, nil, nil, "dark=yes: boolean flag needs a JSON boolean value"},
		{"unknown flag", alice, []Assignment{{Key: "nope", Text: "1"}}, 0, nil, nil, `flag "nope" not found in namespace "shop"`},
		{"held by another object", alice, []Assignment{{Key: "dark", Text: "false"}}, 0, nil, nil,
			`dark: user "alice" is already overridden for it by UserFlagOverride shop/alice-from-git; change it there, or clear it first (Clear override of dark)`},
		{"disabled own object", Subject{Kind: evaluator.SubjectUser, ID: "bob"}, []Assignment{{Key: "limit", Text: "1"}}, 0, nil, nil,
			"UserFlagOverride shop/user-bob is disabled"},
		{"expiry in the past", alice, []Assignment{{Key: "limit", Text: "1"}}, -time.Hour, nil, nil, "expiry 2030-01-01T11:00:00Z: must be in the future"},
		{"new object", Subject{Kind: evaluator.SubjectUser, ID: "carol"}, []Assignment{{Key: "dark", Text: "true"}}, time.Hour,
			[]string{"dark=true"}, []string{"dark"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(testObjects(), func() time.Time { return testNow })
			if err != nil {
				t.Fatal(err)
			}
			req := &SetRequest{Namespace: "shop", Subject: tt.subject, Entries: tt.entries, Hints: consoleHints}
			if tt.expiry != 0 {
				req.Expiry = func(now time.Time) *metav1.Time { t := metav1.NewTime(now.Add(tt.expiry)); return &t }
			}
			p, err := PlanSet(l, req, testNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Next.Spec.Flags {
				got = append(got, e.Key+"="+string(e.Value.Raw))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || strings.Join(p.Changed, ",") != strings.Join(tt.wantChanged, ",") {
				t.Errorf("entries %v changed %v, want %v and %v", got, p.Changed, tt.want, tt.wantChanged)
			}
			if p.Next.Obj.GetName() != SubjectObjectName(tt.subject.Kind, tt.subject.ID) {
				t.Errorf("writes %s, want the subject's own object", p.Next.Obj.GetName())
			}
		})
	}
}

func TestPlanClear(t *testing.T) {
	l, err := Load(testObjects(), func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	alice := Subject{Kind: evaluator.SubjectUser, ID: "alice"}
	changes, keys, err := PlanClear(l, "shop", alice, []string{"dark"})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Cur.Obj.GetName() != "alice-from-git" || len(changes[0].Next.Spec.Flags) != 0 || strings.Join(keys, ",") != "dark" {
		t.Errorf("clear dark: %d changes, keys %v", len(changes), keys)
	}
	if OverrideAction(changes[0].Cur, true, changes[0].Next) != ActionDeleted {
		t.Error("an object left without entries is not deleted")
	}
	if _, _, err := PlanClear(l, "shop", alice, []string{"theme"}); err == nil || err.Error() != `user "alice" has no override for "theme" in namespace "shop"` {
		t.Errorf("clear of a key with no override: %v", err)
	}
	changes, keys, err = PlanClear(l, "shop", alice, nil)
	if err != nil || len(changes) != 2 || strings.Join(keys, ",") != "dark,limit" {
		t.Errorf("clear all: %d changes, keys %v, %v", len(changes), keys, err)
	}
}

func TestFlagChange(t *testing.T) {
	tests := []struct {
		name     string
		change   FlagChange
		flag     string
		wantSame bool
		// wantSchedule is what a schedule step sets now, "" when none decides.
		wantSchedule string
	}{
		{"switch off", SwitchChange(false), "dark", false, ""},
		{"switch on, already on", SwitchChange(true), "dark", true, ""},
		{"switch on, a schedule step turned it off", SwitchChange(true), "theme", true, "false"},
		{"rollout", RolloutChange(25), "dark", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := testObjects()
			var f *v1.FeatureFlag
			for i := range objs.Flags {
				if objs.Flags[i].Name == tt.flag {
					f = &objs.Flags[i]
				}
			}
			if got := tt.change.Same(&f.Spec); got != tt.wantSame {
				t.Errorf("Same = %v, want %v", got, tt.wantSame)
			}
			tt.change.Patch(&f.Spec)
			if !tt.change.Same(&f.Spec) {
				t.Error("after Patch, Same is false")
			}
			got, decides := tt.change.ScheduleDecides(f, testNow)
			if decides != (tt.wantSchedule != "") || decides && got != tt.wantSchedule {
				t.Errorf("ScheduleDecides = %q, %v; want %q", got, decides, tt.wantSchedule)
			}
		})
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in     string
		want   int32
		wantOK bool
	}{
		{"0", 0, true}, {"25", 25, true}, {"100%", 100, true}, {"101", 0, false}, {"-1", 0, false}, {"", 0, false}, {"5.5", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParsePercent(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

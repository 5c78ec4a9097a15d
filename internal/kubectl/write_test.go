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
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/auditevent"
	"github.com/flagops/flagops/internal/gitops"
)

// writeFixture is the fixture with what the write tests add: a flag with a JSON Schema, the
// plugin's own object of user dave, and a disabled and an expired object of the plugin.
func writeFixture() *Objects {
	objs := fixture()
	objs.Flags = append(objs.Flags, flagObj("shop", "limits", v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true,
		Value: js(`{"max":10}`), OffValue: js(`{"max":1}`),
		Schema: js(`{"type":"object","properties":{"max":{"type":"integer","minimum":1,"maximum":100}},"required":["max"],"additionalProperties":false}`)}))
	dave := userOv("shop", "user-dave", "dave", -time.Hour, ptrTo(at(24*time.Hour)), "support ticket", entryVal("theme", `"sepia"`), entryOn("beta.dashboard"))
	dave.ResourceVersion = "7"
	off := userOv("shop", "user-erin", "erin", -time.Hour, nil, "", entryOn("beta.dashboard"))
	off.Spec.Enabled = ptrTo(false)
	old := userOv("shop", "user-frank", "frank", -48*time.Hour, ptrTo(at(-time.Hour)), "", entryOn("beta.dashboard"))
	objs.Users = append(objs.Users, dave, off, old)
	return objs
}

func writeLister() *fakeLister {
	return &fakeLister{objs: writeFixture(), namespaces: []string{"shop", "billing", "empty"}}
}

// TestWriteBadInput checks that every kind of bad input to a write command gets one line on
// stderr, nothing on stdout, exit code 1, and no write.
func TestWriteBadInput(t *testing.T) {
	many := []string{"set", "-n", "shop", "--user", "dave"}
	for i := 0; i <= MaxEntries; i++ {
		many = append(many, fmt.Sprintf("theme=v%d", i))
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "nope=1"}, `error: flag "nope" not found in namespace "shop"`},
		{"wrong type", []string{"set", "-n", "shop", "--user", "dave", "beta.dashboard=1"}, `error: beta.dashboard=1: boolean flag needs a json boolean, got number`},
		{"not JSON", []string{"set", "-n", "shop", "--user", "dave", "limits.page-size=many"}, `error: limits.page-size=many: number flag needs a JSON number value`},
		{"schema violation", []string{"set", "-n", "shop", "--user", "dave", `limits={"max":500}`},
			`error: limits={"max":500}: does not match schema: at '/max': maximum: got 500, want 100`},
		{"schema: unknown property", []string{"set", "-n", "shop", "--user", "dave", `limits={"max":5,"min":1}`},
			`error: limits={"max":5,"min":1}: does not match schema: additional properties 'min' not allowed`},
		{"a flag that does not compile", []string{"set", "-n", "shop", "--user", "dave", "limits.max-items=5"},
			`error: limits.max-items: the value cannot be checked because the flag's spec does not compile; fix the flag first: spec.value: invalid value: number flag needs a json number, got string`},
		{"more than 32 entries", many, "error: 33 entries: at most 32 KEY=VALUE entries in one set"},
		{"no entry", []string{"set", "-n", "shop", "--user", "dave"}, "error: at least one KEY=VALUE is required"},
		{"no =", []string{"set", "-n", "shop", "--user", "dave", "theme"}, `error: "theme": want KEY=VALUE (KEY=null clears the key)`},
		{"bad key", []string{"set", "-n", "shop", "--user", "dave", "-x=1"}, `error: unknown shorthand flag: 'x' in -x=1`},
		{"bad key inside", []string{"set", "-n", "shop", "--user", "dave", "a/b=1"}, `error: "a/b=1": "a/b" is not a flag key (letters, digits, '.', '_' and '-', starting with a letter or digit)`},
		{"malformed duration", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--expires-in", "a week"}, `error: --expires-in: "a week" is not a positive duration (e.g. 90m, 24h, 7d)`},
		{"malformed time", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--expires-at", "tomorrow"}, `error: --expires-at "tomorrow": want an RFC 3339 time, e.g. 2030-01-31T00:00:00Z`},
		{"expiry in the past", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--expires-at", "2029-01-01T00:00:00Z"}, `error: --expires-at 2029-01-01T00:00:00Z: must be in the future`},
		{"two expiries", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--expires-in", "1d", "--expires-at", "2031-01-01T00:00:00Z"}, "error: --expires-in and --expires-at are exclusive"},
		{"reason too long", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--reason", strings.Repeat("r", 501)}, "error: --reason: 501 characters, at most 500"},
		{"no subject", []string{"set", "-n", "shop", "theme=x"}, "error: --user or --device is required"},
		{"device without class", []string{"set", "-n", "shop", "--device", "tab-1", "theme=x"}, "error: --device-class is required with --device: overrides apply only to devices of an eligible class"},
		{"missing namespace", []string{"set", "-n", "nowhere", "--user", "dave", "theme=x"}, `error: namespace "nowhere" not found`},
		{"key held by another object", []string{"set", "-n", "shop", "--user", "alice", "theme=x"},
			`error: theme: user "alice" is already overridden for it by UserFlagOverride shop/pilot-alice; change it there, or clear it first (clear --user alice theme)`},
		{"null with nothing to clear", []string{"set", "-n", "shop", "--user", "dave", "limits=null"}, `error: limits: user "dave" has no override for it in UserFlagOverride shop/user-dave, so null has nothing to clear`},
		{"disabled object", []string{"set", "-n", "shop", "--user", "erin", "theme=x"},
			"error: UserFlagOverride shop/user-erin is disabled (spec.enabled is false), so values set in it would not apply; enable it, or clear it first"},
		{"expired object", []string{"set", "-n", "shop", "--user", "frank", "theme=x"},
			"error: UserFlagOverride shop/user-frank expired at 2030-01-01T11:00:00Z, so values set in it would not apply; give a new expiry with --expires-in or --expires-at"},
		{"bad dry run", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--dry-run", "yes"}, `error: --dry-run "yes": want "none", "client" or "server"`},
		{"export and dry run", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "--export", "--dry-run=client"}, "error: --export and --dry-run are exclusive: --export writes nothing"},
		{"export of nothing", []string{"set", "-n", "shop", "--user", "dave", "theme=null", "beta.dashboard=null", "--export"}, "error: UserFlagOverride shop/user-dave would hold no entries: delete it from git instead"},
		{"bad output", []string{"set", "-n", "shop", "--user", "dave", "theme=x", "-o", "name"}, `error: --output "name": want json or yaml (the default is a table)`},
		{"clear: unknown key", []string{"clear", "-n", "shop", "--user", "alice", "nope"}, `error: user "alice" has no override for "nope" in namespace "shop"`},
		{"clear: no overrides", []string{"clear", "-n", "shop", "--user", "zoe"}, `error: user "zoe" has no overrides in namespace "shop"`},
		{"clear: bad key", []string{"clear", "-n", "shop", "--user", "alice", "a b"}, `error: "a b" is not a flag key (letters, digits, '.', '_' and '-', starting with a letter or digit)`},
		{"clear: missing namespace", []string{"clear", "-n", "nowhere", "--user", "alice"}, `error: namespace "nowhere" not found`},
		{"enable: unknown key", []string{"enable", "nope", "-n", "shop"}, `error: flag "nope" not found in namespace "shop"`},
		{"enable: missing namespace", []string{"enable", "theme", "-n", "nowhere"}, `error: namespace "nowhere" not found`},
		{"enable: no key", []string{"enable", "-n", "shop"}, "error: accepts 1 arg(s), received 0"},
		{"rollout: over 100", []string{"rollout", "beta.dashboard", "101", "-n", "shop"}, `error: PERCENT "101": want a whole number from 0 to 100`},
		{"rollout: not a number", []string{"rollout", "beta.dashboard", "half", "-n", "shop"}, `error: PERCENT "half": want a whole number from 0 to 100`},
		{"rollout: no percent", []string{"rollout", "beta.dashboard", "-n", "shop"}, "error: accepts 2 arg(s), received 1"},
		{"history: nothing asked", []string{"history", "-n", "shop"}, "error: give one of KEY, --user and --device"},
		{"history: two asked", []string{"history", "theme", "--user", "alice", "-n", "shop"}, "error: give one of KEY, --user and --device"},
		{"history: unknown key", []string{"history", "nope", "-n", "shop"}, `error: flag "nope" not found in namespace "shop"`},
		{"completion: unknown shell", []string{"completion", "powershell"}, `error: invalid argument "powershell" for "kubectl flagops completion"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			stdout, stderr, code := runWithWriter(writeLister(), refusingWriter{calls: &calls}, tt.args...)
			if code != 1 || stdout != "" || stderr != tt.want+"\n" {
				t.Errorf("got exit code %d, stdout %q, stderr %q; want 1, nothing and the line %q", code, stdout, stderr, tt.want)
			}
			if calls != 0 {
				t.Errorf("%d writes were attempted", calls)
			}
		})
	}
}

// TestWriteGolden checks the output of the write commands that write nothing: client dry
// runs and --export.
func TestWriteGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"set-dry-run.golden", []string{"set", "-n", "shop", "--user", "gina", "--role", "user", "beta.dashboard=true", "theme=sepia", `limits={"max":50}`, "limits.page-size=100",
			"--expires-in", "7d", "--reason", "pilot customer", "--dry-run=client"}},
		{"set-dry-run.json.golden", []string{"set", "-n", "shop", "--user", "gina", "--role", "user", "theme=\"null\"", "theme=sepia", "--dry-run=client", "-o", "json"}},
		{"set-update-dry-run.golden", []string{"set", "-n", "shop", "--user", "dave", "--role", "user", "theme=null", "limits.page-size=75", "--dry-run=client"}},
		{"set-unchanged.golden", []string{"set", "-n", "shop", "--user", "dave", "--role", "user", "theme=sepia"}},
		{"set-device-dry-run.yaml.golden", []string{"set", "-n", "shop", "--device", "Tab 9", "--device-class", "tablet", "theme=contrast", "--dry-run=client", "-o", "yaml"}},
		{"set-export.golden", []string{"set", "-n", "shop", "--user", "dave", "theme=null", `limits={"max":5}`, "--expires-at", "2030-02-01T00:00:00Z", "--export"}},
		{"clear-dry-run.golden", []string{"clear", "-n", "shop", "--user", "alice", "--role", "user", "--dry-run=client"}},
		{"clear-key-dry-run.golden", []string{"clear", "-n", "shop", "--user", "dave", "theme", "--dry-run=client", "-o", "json"}},
		{"disable-export.golden", []string{"disable", "beta.dashboard", "-n", "shop", "--export"}},
		{"rollout-export.golden", []string{"rollout", "theme", "40%", "-n", "shop", "--export"}},
		{"enable-dry-run.golden", []string{"enable", "banner", "-n", "shop", "--dry-run=client"}},
		{"enable-unchanged.golden", []string{"enable", "theme", "-n", "shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			calls := 0
			stdout, stderr, code := runWithWriter(writeLister(), refusingWriter{calls: &calls}, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			if calls != 0 {
				t.Errorf("%d writes were attempted", calls)
			}
			checkGolden(t, tt.golden, stdout)
		})
	}
}

// TestScheduleWarning checks that enable, disable and rollout warn when a schedule step
// that has taken effect decides the field, so that the patch does not change what is served.
func TestScheduleWarning(t *testing.T) {
	objs := writeFixture()
	for i := range objs.Flags {
		switch objs.Flags[i].Name {
		case "checkout.v2": // a past step set the rollout to 80%
			objs.Flags[i].Spec.Schedule = []v1.ScheduleStep{{At: at(-time.Hour), RolloutPercentage: ptrTo(int32(80))}}
		case "banner": // a past step turned it off
			objs.Flags[i].Spec.Schedule = []v1.ScheduleStep{{At: at(-time.Hour), Enabled: ptrTo(false)}}
		}
	}
	const suffix = ", which is served until a later step or a change of spec.schedule\n"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"enable", "banner", "-n", "shop", "--dry-run=client"}, "Warning: a schedule step of spec.enabled that has taken effect sets it to false" + suffix},
		{[]string{"rollout", "checkout.v2", "30", "-n", "shop", "--dry-run=client"}, "Warning: a schedule step of spec.rollout.percentage that has taken effect sets it to 80%" + suffix},
		{[]string{"rollout", "beta.dashboard", "30", "-n", "shop", "--dry-run=client"}, ""},
		{[]string{"disable", "beta.dashboard", "-n", "shop", "--dry-run=client"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runWith(&fakeLister{objs: objs}, tt.args...)
			if code != 0 || stderr != tt.want {
				t.Errorf("exit code %d, stderr %q; want 0 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestGitOpsGuard checks that every GitOps marker makes set, clear, enable, disable and
// rollout refuse without --force, and warn with it.
func TestGitOpsGuard(t *testing.T) {
	markers := []struct {
		name                string
		labels, annotations map[string]string
		desc                string
	}{
		{"Argo CD tracking id", nil, map[string]string{gitops.ArgoCDTrackingAnnotation: "flags:flagops.dev/X:shop/x"}, "annotation argocd.argoproj.io/tracking-id"},
		{"Argo CD instance label", map[string]string{gitops.ArgoCDInstanceLabel: "flags"}, nil, "label app.kubernetes.io/instance"},
		{"Argo CD custom instance label", map[string]string{gitops.ArgoCDCustomInstanceLabel: "flags"}, nil, "label argocd.argoproj.io/instance"},
		{"Flux kustomize label", map[string]string{gitops.FluxKustomizationLabel: "flags"}, nil, "label kustomize.toolkit.fluxcd.io/name"},
		{"Flux helm label", map[string]string{gitops.FluxHelmReleaseLabel: "flags"}, nil, "label helm.toolkit.fluxcd.io/name"},
		{"Helm release annotation", nil, map[string]string{gitops.HelmReleaseAnnotation: "flags"}, "annotation meta.helm.sh/release-name"},
		{"Helm managed-by label", map[string]string{gitops.ManagedByLabel: "Helm"}, nil, "label app.kubernetes.io/managed-by"},
	}
	for _, m := range markers {
		t.Run(m.name, func(t *testing.T) {
			objs := writeFixture()
			for i := range objs.Users {
				if objs.Users[i].Name == "user-dave" {
					objs.Users[i].Labels, objs.Users[i].Annotations = m.labels, m.annotations
				}
			}
			for i := range objs.Flags {
				if objs.Flags[i].Name == "beta.dashboard" {
					objs.Flags[i].Labels, objs.Flags[i].Annotations = m.labels, m.annotations
				}
			}
			lister := &fakeLister{objs: objs}
			cases := []struct {
				args       []string
				target     string
				exportable bool
			}{
				{[]string{"set", "-n", "shop", "--user", "dave", "theme=dusk"}, "UserFlagOverride shop/user-dave", true},
				{[]string{"clear", "-n", "shop", "--user", "dave", "theme"}, "UserFlagOverride shop/user-dave", false},
				{[]string{"disable", "beta.dashboard", "-n", "shop"}, "FeatureFlag shop/beta.dashboard", true},
				{[]string{"rollout", "beta.dashboard", "50", "-n", "shop"}, "FeatureFlag shop/beta.dashboard", true},
			}
			for _, c := range cases {
				what := fmt.Sprintf("%s is managed by a GitOps tool or Helm (%s), which will revert this change at its next sync", c.target, m.desc)
				hint := "change it in git instead"
				if c.exportable {
					hint += " (--export prints the YAML)"
				}
				calls := 0
				stdout, stderr, code := runWithWriter(lister, refusingWriter{calls: &calls}, c.args...)
				if want := "error: " + what + "; " + hint + ", or pass --force\n"; code != 1 || stdout != "" || stderr != want || calls != 0 {
					t.Errorf("%v: exit code %d, stdout %q, stderr %q, %d writes; want 1, nothing, %q, none", c.args, code, stdout, stderr, calls, want)
				}
				stdout, stderr, code = runWithWriter(lister, refusingWriter{calls: &calls}, append(c.args, "--force", "--dry-run=client")...)
				if want := "Warning: " + what + "; changing it anyway (--force)\n"; code != 0 || stderr != want || !strings.Contains(stdout, "(dry run)") || calls != 0 {
					t.Errorf("%v --force: exit code %d, stdout %q, stderr %q, %d writes; want 0, a dry run, %q, none", c.args, code, stdout, stderr, calls, want)
				}
			}
			// --export needs no --force: it writes nothing.
			if _, stderr, code := runWith(lister, "set", "-n", "shop", "--user", "dave", "theme=dusk", "--export"); code != 0 || stderr != "" {
				t.Errorf("set --export: exit code %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestSubjectObjectName(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"alice", "user-alice"},
		{"user-42", "user-user-42"},
		{"a.b-c", "user-a.b-c"},
		{"Alice", "user-alice-3bc5106297"},
		{"alice@example.com", "user-alice-example.com-ff8d9819fc"},
		{"___", "user-bda251550b"},
		{strings.Repeat("x", 300), "user-" + strings.Repeat("x", 40) + "-0d4e2ca9e9"},
	}
	for _, tt := range tests {
		got := subjectObjectName("user", tt.id)
		if got != tt.want {
			t.Errorf("subjectObjectName(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if len(got) > 253 || strings.ToLower(got) != got {
			t.Errorf("subjectObjectName(%q) = %q is not a valid name", tt.id, got)
		}
	}
	if subjectObjectName("user", "Alice") == subjectObjectName("user", "alice") {
		t.Error("ids that differ in case share an object")
	}
}

// TestHistory checks history on Events as the manager records them (its reasons and message
// formats), newest first.
func TestHistory(t *testing.T) {
	ev := func(name, kind, obj, typ, reason, msg string, at time.Duration) corev1.Event {
		return corev1.Event{
			ObjectMeta:          metav1.ObjectMeta{Namespace: "shop", Name: name},
			InvolvedObject:      corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: kind, Namespace: "shop", Name: obj},
			Type:                typ,
			Reason:              reason,
			Message:             msg,
			ReportingController: "flagops-manager",
			EventTime:           metav1.NewMicroTime(fixtureNow.Add(at)),
		}
	}
	lister := writeLister()
	lister.events = []corev1.Event{
		ev("e1", "FeatureFlag", "beta.dashboard", "Normal", v1.EventReasonScheduleApplied,
			"the schedule step at 2030-01-01T10:00:00Z took effect: rollout.percentage 25", -2*time.Hour),
		ev("e2", "UserFlagOverride", "pilot-alice", "Warning", v1.EventReasonOverrideConflict,
			"another override wins (older, or lower name): beta.dashboard: shop/alice-old", -90*time.Minute),
		ev("e3", "UserFlagOverride", "user-dave", "Warning", v1.EventReasonInvalidValue,
			"flag theme is not served: does not match schema", -time.Hour),
		ev("e4", "UserFlagOverride", "user-dave", "Warning", v1.EventReasonUnverifiedChange,
			`user_override.updated at generation 3 has no valid actor stamp (the annotation gave no name); recorded with actor.verified false and field manager "kubectl-flagops" as a hint`, -30*time.Minute),
		ev("e5", "UserFlagOverride", "user-gone", "Normal", v1.EventReasonOverrideExpired, "expired at 2030-01-01T11:00:00Z; deleted", -10*time.Minute),
		ev("e6", "Pod", "beta.dashboard", "Normal", "Pulled", "not ours", -time.Minute),
	}
	lister.events[5].InvolvedObject.APIVersion = "v1"
	// Audited changes, as the manager records them: their note is auditevent.Format's.
	change := func(name, kind, obj, action string, n auditevent.Note, at time.Duration) corev1.Event {
		e := ev(name, kind, obj, "Normal", auditevent.Reason(action), auditevent.Format(n), at)
		e.Action = action
		return e
	}
	vals := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	id := func(c byte) string { return strings.Repeat(string(c), 32) }
	daveUpdated := auditevent.Note{SubjectKind: auditevent.SubjectUser, Subject: "dave", Generation: 3,
		Actor:  auditevent.Actor{Username: "kubectl-flagops", Claimed: "dave@example.com"},
		Before: vals("theme", `{"value":"dawn"}`), After: vals("theme", `{"value":"dusk"}`, "beta.dashboard", `{"enabled":true}`), RecordID: id('b')}
	lister.events = append(lister.events,
		change("c1", "FeatureFlag", "beta.dashboard", "flag.updated", auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "beta.dashboard",
			Generation: 4, Actor: auditevent.Actor{Username: "alice", Verified: true},
			Request: &auditevent.Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
			Before:  vals("rollout", `{"percentage":10}`), After: vals("rollout", `{"percentage":50}`), RecordID: id('a')}, -50*time.Minute),
		// The same record's Event twice: a leader that took over recorded it again.
		change("c2", "UserFlagOverride", "user-dave", "user_override.updated", daveUpdated, -29*time.Minute),
		change("c3", "UserFlagOverride", "user-dave", "user_override.updated", daveUpdated, -30*time.Minute),
		change("c4", "UserFlagOverride", "dave-old", "user_override.deleted", auditevent.Note{SubjectKind: auditevent.SubjectUser, Subject: "dave",
			Generation: 2, Actor: auditevent.Actor{Username: "bob", Verified: true}, Request: &auditevent.Request{SourceIP: "2001:db8::1"},
			Before: vals("theme", `{"value":"old"}`, "override/enabled", "true"), RecordID: id('c')}, -20*time.Minute),
		change("c5", "FeatureFlag", "old-flag", "flag.deleted", auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "old.flag",
			Generation: 7, Actor: auditevent.Actor{Username: "carol", Verified: true},
			Before: vals("enabled", "true", "type", `"Boolean"`), RecordID: id('d')}, -5*time.Minute),
		change("c6", "FeatureFlag", "banner", "flag.updated", auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "banner",
			Generation: 2, Actor: auditevent.Actor{Username: "carol", Verified: true},
			Before: vals("value", `"`+strings.Repeat("a", 2000)+`"`), After: vals("value", `"`+strings.Repeat("b", 2000)+`"`), RecordID: id('e')}, -4*time.Minute),
	)
	tests := []struct {
		golden string
		args   []string
	}{
		{"history-key.golden", []string{"history", "beta.dashboard", "-n", "shop"}},
		{"history-user.golden", []string{"history", "--user", "dave", "-n", "shop"}},
		{"history-user.json.golden", []string{"history", "--user", "dave", "-n", "shop", "-o", "json"}},
		{"history-deleted.golden", []string{"history", "old.flag", "-n", "shop"}},
		{"history-truncated.json.golden", []string{"history", "banner", "-n", "shop", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			stdout, stderr, code := runWith(lister, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			checkGolden(t, tt.golden, stdout)
		})
	}
	if _, stderr, code := runWith(lister, "history", "--device", "tab-1", "-n", "shop"); code != 0 || stderr != "No events found in namespace shop.\n" {
		t.Errorf("no events: exit code %d, stderr %q", code, stderr)
	}
}

// TestCompletion checks the completions of flag keys, KEY= and subject ids, through the
// hidden __complete command that kubectl_complete-flagops runs.
func TestCompletion(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "explain", "-n", "shop", ""}, "banner\nbeta.dashboard\ncheckout.v2\nlimits\nlimits.max-items\nlimits.page-size\nsearch.v3\ntheme\n:4\n"},
		{[]string{"__complete", "get", "-n", "shop", "theme", "b"}, "banner\nbeta.dashboard\n:4\n"},
		{[]string{"__complete", "rollout", "-n", "shop", "theme", ""}, ":4\n"},
		{[]string{"__complete", "set", "-n", "shop", "--user", "alice", "theme=x", "t"}, ":6\n"},
		{[]string{"__complete", "set", "-n", "shop", "--user", "alice", "li"}, "limits=\nlimits.max-items=\nlimits.page-size=\n:6\n"},
		{[]string{"__complete", "set", "-n", "shop", "--user", "alice", "theme="}, ":4\n"},
		{[]string{"__complete", "effective", "-n", "shop", "--user", ""}, "alice\nbob\ncarol\ndave\nerin\nfrank\n:4\n"},
		{[]string{"__complete", "clear", "-n", "shop", "--device", ""}, "tab-1\n:4\n"},
		{[]string{"__complete", "overrides", "-n", "shop", "--flag", "th"}, "theme\n:4\n"},
		{[]string{"__complete", "completion", ""}, "bash\nzsh\nfish\n:4\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, _, code := runWith(writeLister(), tt.args...)
			if code != 0 || stdout != tt.want {
				t.Errorf("exit code %d, stdout %q; want 0, %q", code, stdout, tt.want)
			}
		})
	}
	// Without access, completion offers nothing rather than failing.
	stdout, _, code := runWith(&fakeLister{err: errWrite}, "__complete", "explain", "")
	if code != 0 || stdout != ":4\n" {
		t.Errorf("without access: exit code %d, stdout %q", code, stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		stdout, stderr, code := runWith(writeLister(), "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "kubectl-flagops") {
			t.Errorf("completion %s: exit code %d, stderr %q, script without kubectl-flagops", shell, code, stderr)
		}
	}
}

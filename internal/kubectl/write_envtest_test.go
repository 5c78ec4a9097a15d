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
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/auditevent"
	"github.com/flagops/flagops/internal/gitops"
)

// beforeWrite is a Writer that runs a function (a competing write) before each write, as a
// second writer would between the plugin's read and its write.
type beforeWrite struct {
	Writer
	before func(ctx context.Context, obj client.Object) error
}

func (w beforeWrite) Create(ctx context.Context, obj client.Object, dryRun bool) error {
	if err := w.before(ctx, obj); err != nil {
		return err
	}
	return w.Writer.Create(ctx, obj, dryRun)
}

func (w beforeWrite) Apply(ctx context.Context, obj client.Object, dryRun bool) error {
	if err := w.before(ctx, obj); err != nil {
		return err
	}
	return w.Writer.Apply(ctx, obj, dryRun)
}

func (w beforeWrite) Patch(ctx context.Context, obj client.Object, patch []byte, dryRun bool) error {
	if err := w.before(ctx, obj); err != nil {
		return err
	}
	return w.Writer.Patch(ctx, obj, patch, dryRun)
}

func (w beforeWrite) Delete(ctx context.Context, obj client.Object, dryRun bool) error {
	if err := w.before(ctx, obj); err != nil {
		return err
	}
	return w.Writer.Delete(ctx, obj, dryRun)
}

// entriesOf returns an override's entries as KEY=JSON (KEY=on or KEY=off without a value).
func entriesOf(o *v1.UserFlagOverride) []string {
	var out []string
	for _, e := range o.Spec.Flags {
		switch {
		case e.Value != nil:
			out = append(out, e.Key+"="+string(e.Value.Raw))
		case e.Enabled != nil && *e.Enabled:
			out = append(out, e.Key+"=on")
		default:
			out = append(out, e.Key+"=off")
		}
	}
	slices.Sort(out)
	return out
}

func TestWriteCommandsOnCluster(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	getUser := func(t *testing.T, name string) *v1.UserFlagOverride {
		t.Helper()
		o := &v1.UserFlagOverride{}
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, o); err != nil {
			t.Fatalf("get UserFlagOverride %s: %v", name, err)
		}
		return o
	}
	getFlag := func(t *testing.T, name string) *v1.FeatureFlag {
		t.Helper()
		f := &v1.FeatureFlag{}
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, f); err != nil {
			t.Fatalf("get FeatureFlag %s: %v", name, err)
		}
		return f
	}
	absent := func(t *testing.T, name string) {
		t.Helper()
		err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, &v1.UserFlagOverride{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("UserFlagOverride %s: got %v, want NotFound", name, err)
		}
	}
	ok := func(t *testing.T, user string, args ...string) string {
		t.Helper()
		stdout, stderr, code := c.runAs(user, args...)
		if code != 0 {
			t.Fatalf("%v: exit code %d, stderr %q", args, code, stderr)
		}
		return stdout
	}
	fails := func(t *testing.T, user string, wrap func(Writer) Writer, want string, args ...string) {
		t.Helper()
		stdout, stderr, code := c.runWrapped(user, wrap, args...)
		if code != 1 || stdout != "" || stderr != want+"\n" {
			t.Errorf("%v: got exit code %d, stdout %q, stderr %q; want 1, nothing and the line %q", args, code, stdout, stderr, want)
		}
	}

	t.Run("seed 000 runbook", func(t *testing.T) {
		// The transcript of docs/kubectl-plugin.md: the per-user runbook with the plugin, as
		// the admin, on the fixture's namespace, at the fixture's clock.
		var b strings.Builder
		for _, args := range [][]string{
			{"effective", "-n", "shop", "--user", "ines", "--role", "user"},
			{"set", "-n", "shop", "--user", "ines", "--role", "user", "beta.dashboard=true", "theme=sepia", "theme=contrast",
				"--expires-in", "7d", "--reason", "pilot customer (TICKET-1234)", "-o", "json"},
			{"set", "-n", "shop", "--user", "ines", "--role", "user", "limits.page-size=many"},
			{"set", "-n", "shop", "--user", "ines", "--role", "user", "theme=null"},
			{"overrides", "-n", "shop", "--user", "ines"},
			{"clear", "-n", "shop", "--user", "ines", "--role", "user"},
		} {
			stdout, stderr, code := c.runAs("admin", args...)
			fmt.Fprintf(&b, "$ kubectl flagops %s\n%s%s", shellJoin(args), stdout, stderr)
			if code != 0 {
				fmt.Fprintf(&b, "(exit code %d)\n", code)
			}
			b.WriteString("\n")
		}
		absent(t, "user-ines")
		checkGolden(t, "runbook.golden", b.String())
	})

	t.Run("set creates the subject's object", func(t *testing.T) {
		out := ok(t, "admin", "set", "-n", "shop", "--user", "dave", "--role", "user", "beta.dashboard=true", "theme=sepia",
			"--expires-at", "2030-01-08T12:00:00Z", "--reason", "pilot customer")
		if !strings.HasPrefix(out, "userflagoverride.flagops.dev/user-dave created\n") ||
			!strings.Contains(out, `theme              "sepia"   user-override:shop/user-dave   2030-01-08T12:00:00Z   pilot customer`) {
			t.Errorf("output:\n%s", out)
		}
		o := getUser(t, "user-dave")
		if got := entriesOf(o); !slices.Equal(got, []string{"beta.dashboard=true", `theme="sepia"`}) || o.Spec.UserID != "dave" ||
			o.Spec.Reason != "pilot customer" || !o.Spec.ExpiresAt.Equal(ptrTo(at(7*24*time.Hour))) {
			t.Errorf("stored %v, spec %+v", got, o.Spec)
		}
		if len(o.ManagedFields) != 1 || o.ManagedFields[0].Manager != FieldManager {
			t.Errorf("managedFields %+v, want %s alone", o.ManagedFields, FieldManager)
		}
	})

	t.Run("set updates with server-side apply", func(t *testing.T) {
		ok(t, "admin", "set", "-n", "shop", "--user", "dave", "limits.page-size=100", "theme=dusk")
		o := getUser(t, "user-dave")
		if got := entriesOf(o); !slices.Equal(got, []string{"beta.dashboard=true", "limits.page-size=100", `theme="dusk"`}) {
			t.Errorf("stored %v", got)
		}
		if !slices.ContainsFunc(o.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
			return m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply
		}) {
			t.Errorf("no server-side apply by %s in %+v", FieldManager, o.ManagedFields)
		}
	})

	t.Run("dry runs store nothing", func(t *testing.T) {
		before := getUser(t, "user-dave")
		out := ok(t, "admin", "set", "-n", "shop", "--user", "dave", "checkout.v2=true", "--dry-run=server")
		if !strings.HasPrefix(out, "userflagoverride.flagops.dev/user-dave configured (server dry run)\n") ||
			!strings.Contains(out, "checkout.v2        true     user-override:shop/user-dave") {
			t.Errorf("output:\n%s", out)
		}
		out = ok(t, "admin", "set", "-n", "shop", "--user", "dave", "theme=null", "--dry-run=server")
		if !strings.HasPrefix(out, "userflagoverride.flagops.dev/user-dave configured (server dry run)\n") {
			t.Errorf("output:\n%s", out)
		}
		ok(t, "admin", "set", "-n", "shop", "--user", "dave", "checkout.v2=true", "--dry-run=client")
		ok(t, "admin", "clear", "-n", "shop", "--user", "dave", "--dry-run=server")
		ok(t, "admin", "disable", "beta.dashboard", "-n", "shop", "--dry-run=server")
		out = ok(t, "admin", "set", "-n", "shop", "--user", "zed", "theme=dusk", "--dry-run=server")
		if !strings.HasPrefix(out, "userflagoverride.flagops.dev/user-zed created (server dry run)\n") {
			t.Errorf("output:\n%s", out)
		}
		absent(t, "user-zed")
		if after := getUser(t, "user-dave"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("resourceVersion %s after dry runs, %s before", after.ResourceVersion, before.ResourceVersion)
		}
		if f := getFlag(t, "beta.dashboard"); !f.Spec.Enabled {
			t.Error("a dry run of disable disabled the flag")
		}
	})

	t.Run("null removes a key", func(t *testing.T) {
		out := ok(t, "admin", "set", "-n", "shop", "--user", "dave", "theme=null", "-o", "json")
		if !strings.Contains(out, `"changedKeys": [
        "theme"
    ]`) {
			t.Errorf("output:\n%s", out)
		}
		if got := entriesOf(getUser(t, "user-dave")); !slices.Equal(got, []string{"beta.dashboard=true", "limits.page-size=100"}) {
			t.Errorf("stored %v", got)
		}
	})

	t.Run("viewer is forbidden and nothing is written", func(t *testing.T) {
		before := getUser(t, "user-dave")
		forbidden := func(verb, resource, name string, user string) string {
			return fmt.Sprintf(`Error from server (Forbidden): %s.flagops.dev %q is forbidden: User %q cannot %s resource %q in API group "flagops.dev" in the namespace "shop"`,
				resource, name, user, verb, resource)
		}
		fails(t, viewerUser, nil, forbidden("patch", "userflagoverrides", "user-dave", viewerUser), "set", "-n", "shop", "--user", "dave", "theme=x")
		fails(t, "admin", nil, forbidden("patch", "userflagoverrides", "user-dave", viewerUser), "set", "-n", "shop", "--as", viewerUser, "--user", "dave", "theme=x")
		fails(t, viewerUser, nil, `Error from server (Forbidden): userflagoverrides.flagops.dev is forbidden: User "viewer-vic" cannot create resource "userflagoverrides" in API group "flagops.dev" in the namespace "shop"`,
			"set", "-n", "shop", "--user", "newbie", "theme=x")
		fails(t, viewerUser, nil, forbidden("delete", "userflagoverrides", "user-dave", viewerUser), "clear", "-n", "shop", "--user", "dave")
		fails(t, viewerUser, nil, forbidden("patch", "featureflags", "beta.dashboard", viewerUser), "disable", "beta.dashboard", "-n", "shop")
		fails(t, viewerUser, nil, forbidden("patch", "featureflags", "beta.dashboard", viewerUser), "rollout", "beta.dashboard", "5", "-n", "shop")
		absent(t, "user-newbie")
		if after := getUser(t, "user-dave"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("resourceVersion %s, %s before", after.ResourceVersion, before.ResourceVersion)
		}
		// The viewer may still read what it cannot change.
		ok(t, viewerUser, "effective", "-n", "shop", "--user", "dave")
		ok(t, viewerUser, "set", "-n", "shop", "--user", "dave", "theme=x", "--export")
	})

	t.Run("two writers: the second gets a conflict", func(t *testing.T) {
		n := 0
		other := func(ctx context.Context, obj client.Object) error {
			// The other writer changes the object the plugin read, between its read and its write.
			o := getUser(t, obj.GetName())
			n++
			o.Spec.Reason = fmt.Sprintf("changed by the other writer (%d)", n)
			return c.admin.Update(ctx, o)
		}
		wrap := func(w Writer) Writer { return beforeWrite{Writer: w, before: other} }
		conflict := `Error from server (Conflict): Operation cannot be fulfilled on userflagoverrides.flagops.dev "user-dave": the object has been modified; please apply your changes to the latest version and try again`
		fails(t, "admin", wrap, conflict, "set", "-n", "shop", "--user", "dave", "checkout.v2=true")      // server-side apply
		fails(t, "admin", wrap, conflict, "set", "-n", "shop", "--user", "dave", "limits.page-size=null") // merge patch
		o := getUser(t, "user-dave")
		if got := entriesOf(o); !slices.Equal(got, []string{"beta.dashboard=true", "limits.page-size=100"}) || o.Spec.Reason != "changed by the other writer (2)" {
			t.Errorf("stored %v, reason %q: the other writer's change must stay and the plugin's must not be written", got, o.Spec.Reason)
		}
		// The clear of an object it would delete: the UID and resourceVersion preconditions.
		stdout, stderr, code := c.runWrapped("admin", wrap, "clear", "-n", "shop", "--user", "dave")
		if want := `Error from server (Conflict): Operation cannot be fulfilled on UserFlagOverride.flagops.dev "user-dave": the ResourceVersion in the precondition (` +
			o.ResourceVersion + `) does not match the ResourceVersion in record (`; code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("clear: exit code %d, stdout %q, stderr %q; want 1 and %q...", code, stdout, stderr, want)
		}
		getUser(t, "user-dave")
		// Two creates: the plugin's create of a new subject's object fails when the other
		// writer created it first.
		first := func(ctx context.Context, obj client.Object) error {
			o := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: obj.GetName()},
				Spec: v1.UserFlagOverrideSpec{UserID: "hana", FlagOverrideSpec: v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{entryOff("theme")}}}}
			return c.admin.Create(ctx, o)
		}
		fails(t, "admin", func(w Writer) Writer { return beforeWrite{Writer: w, before: first} },
			`Error from server (AlreadyExists): userflagoverrides.flagops.dev "user-hana" already exists`, "set", "-n", "shop", "--user", "hana", "beta.dashboard=true")
		if got := entriesOf(getUser(t, "user-hana")); !slices.Equal(got, []string{"theme=off"}) {
			t.Errorf("user-hana holds %v, want the first writer's theme=off alone", got)
		}
		// A flag's patch carries the resourceVersion too.
		flagFirst := func(ctx context.Context, obj client.Object) error {
			f := getFlag(t, obj.GetName())
			f.Spec.Description = "changed by the other writer"
			return c.admin.Update(ctx, f)
		}
		fails(t, "admin", func(w Writer) Writer { return beforeWrite{Writer: w, before: flagFirst} },
			`Error from server (Conflict): Operation cannot be fulfilled on featureflags.flagops.dev "checkout.v2": the object has been modified; please apply your changes to the latest version and try again`,
			"rollout", "checkout.v2", "50", "-n", "shop")
		if f := getFlag(t, "checkout.v2"); f.Spec.Rollout.Percentage != 0 || f.Spec.Description != "changed by the other writer" {
			t.Errorf("checkout.v2: rollout %d, description %q", f.Spec.Rollout.Percentage, f.Spec.Description)
		}
	})

	t.Run("enable, disable and rollout patch one field", func(t *testing.T) {
		before := getFlag(t, "beta.dashboard")
		if out := ok(t, "admin", "disable", "beta.dashboard", "-n", "shop"); out != "featureflag.flagops.dev/beta.dashboard patched\n" {
			t.Errorf("output %q", out)
		}
		if out := ok(t, "admin", "rollout", "beta.dashboard", "60%", "-n", "shop"); out != "featureflag.flagops.dev/beta.dashboard patched\n" {
			t.Errorf("output %q", out)
		}
		after := getFlag(t, "beta.dashboard")
		want := before.Spec.DeepCopy()
		want.Enabled, want.Rollout.Percentage = false, 60
		if !equalJSON(t, after.Spec, *want) {
			t.Errorf("spec %+v, want %+v", after.Spec, *want)
		}
		if out := ok(t, "admin", "disable", "beta.dashboard", "-n", "shop"); out != "featureflag.flagops.dev/beta.dashboard unchanged\n" {
			t.Errorf("output %q", out)
		}
		ok(t, "admin", "enable", "beta.dashboard", "-n", "shop")
		ok(t, "admin", "rollout", "beta.dashboard", "25", "-n", "shop")
		if f := getFlag(t, "beta.dashboard"); !f.Spec.Enabled || f.Spec.Rollout.Percentage != 25 {
			t.Errorf("spec %+v", f.Spec)
		}
	})

	t.Run("GitOps guard", func(t *testing.T) {
		o := getUser(t, "user-dave")
		o.Labels = map[string]string{gitops.FluxKustomizationLabel: "flags"}
		if err := c.admin.Update(ctx, o); err != nil {
			t.Fatal(err)
		}
		fails(t, "admin", nil, "error: UserFlagOverride shop/user-dave is managed by a GitOps tool or Helm (label kustomize.toolkit.fluxcd.io/name), "+
			"which will revert this change at its next sync; change it in git instead (--export prints the YAML), or pass --force",
			"set", "-n", "shop", "--user", "dave", "theme=dusk")
		if after := getUser(t, "user-dave"); after.ResourceVersion != getUser(t, "user-dave").ResourceVersion || slices.Contains(entriesOf(after), `theme="dusk"`) {
			t.Error("the guarded object was written")
		}
		stdout, stderr, code := c.runAs("admin", "set", "-n", "shop", "--user", "dave", "theme=dusk", "--force")
		if code != 0 || !strings.HasPrefix(stderr, "Warning: UserFlagOverride shop/user-dave is managed by a GitOps tool") || !strings.HasPrefix(stdout, "userflagoverride.flagops.dev/user-dave configured\n") {
			t.Errorf("--force: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if got := entriesOf(getUser(t, "user-dave")); !slices.Contains(got, `theme="dusk"`) {
			t.Errorf("stored %v", got)
		}
	})

	t.Run("history as a viewer", func(t *testing.T) {
		// Events as the manager records them (events.k8s.io/v1; no manager runs here). The
		// audited changes' notes are auditevent.Format's, which the manager uses.
		flagChange := auditevent.Format(auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "beta.dashboard", Generation: 2,
			Actor:  auditevent.Actor{Username: "alice", Verified: true},
			Before: map[string]json.RawMessage{"enabled": json.RawMessage(`false`)}, After: map[string]json.RawMessage{"enabled": json.RawMessage(`true`)},
			RecordID: strings.Repeat("1", 32)})
		overrideChange := auditevent.Format(auditevent.Note{SubjectKind: auditevent.SubjectUser, Subject: "dave", Generation: 3,
			Actor:    auditevent.Actor{Username: "kubectl-flagops"},
			After:    map[string]json.RawMessage{"beta.dashboard": json.RawMessage(`{"enabled":true}`)},
			RecordID: strings.Repeat("2", 32)})
		for i, e := range []struct {
			kind, name, typ, reason, action, note string
			at                                    time.Duration
		}{
			{"FeatureFlag", "beta.dashboard", corev1.EventTypeNormal, v1.EventReasonScheduleApplied, "Schedule", "the schedule step at 2030-01-01T10:00:00Z took effect: rollout.percentage 25", -2 * time.Hour},
			{"UserFlagOverride", "user-dave", corev1.EventTypeWarning, v1.EventReasonUnknownFlag, "Validate", "flag beta.dashboard is not served: unknown flag", -time.Hour},
			{"FeatureFlag", "beta.dashboard", corev1.EventTypeNormal, v1.EventReasonFlagUpdated, "flag.updated", flagChange, -50 * time.Minute},
			{"UserFlagOverride", "user-dave", corev1.EventTypeNormal, v1.EventReasonOverrideUpdated, "user_override.updated", overrideChange, -40 * time.Minute},
		} {
			ev := &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("ev-%d", i)},
				Regarding:  corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: e.kind, Namespace: "shop", Name: e.name},
				EventTime:  metav1.NewMicroTime(fixtureNow.Add(e.at)), Type: e.typ, Reason: e.reason, Note: e.note, Action: e.action,
				ReportingController: "flagops-manager", ReportingInstance: "flagops-manager-0",
			}
			if err := c.admin.Create(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		out := ok(t, viewerUser, "history", "beta.dashboard", "-n", "shop")
		want := []string{
			"TIME                   ACTOR                          ACTION                  OBJECT                       KEYS             BEFORE   AFTER              MESSAGE",
			"2030-01-01T11:20:00Z   kubectl-flagops (unverified)   user_override.updated   UserFlagOverride/user-dave   beta.dashboard   -        {\"enabled\":true}   -",
			"2030-01-01T11:10:00Z   alice                          flag.updated            FeatureFlag/beta.dashboard   enabled          false    true               -",
			"2030-01-01T11:00:00Z   flagops-manager                UnknownFlag             UserFlagOverride/user-dave   beta.dashboard   -        -                  flag beta.dashboard is not served: unknown flag",
			"2030-01-01T10:00:00Z   flagops-manager                ScheduleApplied         FeatureFlag/beta.dashboard   beta.dashboard   -        -                  the schedule step at 2030-01-01T10:00:00Z took effect: rollout.percentage 25",
		}
		if out != strings.Join(want, "\n")+"\n" {
			t.Errorf("history:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
		}
	})

	t.Run("clear", func(t *testing.T) {
		out := ok(t, "admin", "clear", "-n", "shop", "--user", "dave", "--force", "beta.dashboard")
		if !strings.HasPrefix(out, "userflagoverride.flagops.dev/user-dave configured\n") {
			t.Errorf("output:\n%s", out)
		}
		ok(t, "admin", "clear", "-n", "shop", "--user", "dave", "--force")
		absent(t, "user-dave")
	})
}

// equalJSON compares two values by their JSON.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// shellJoin quotes the arguments that a shell would split or expand.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'{}()$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

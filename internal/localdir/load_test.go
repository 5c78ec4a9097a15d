package localdir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// TestServeSamplesDirectory loads config/samples as it is, kustomization.yaml included, as
// `flagops serve --dir config/samples` does.
func TestServeSamplesDirectory(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "samples")
	l, store := newLoader(t, dir, Options{})
	res, err := l.Load()
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	if len(res.Objects) < 6 {
		t.Errorf("loaded %d objects from %s, want every sample", len(res.Objects), dir)
	}
	r := store.Evaluate(DefaultNamespace, evaluator.Context{UserID: "staff-ada"}, "billing.enabled")
	if r.Value != true {
		t.Errorf("billing.enabled for an allow-listed user = %+v, want true", r)
	}
	if isManifest("kustomization.yaml") || isManifest("Kustomization.yml") || !isManifest("flags.yaml") {
		t.Error("isManifest must skip kustomize's files and read manifests")
	}
}

func TestLoadSamples(t *testing.T) {
	dir := t.TempDir()
	samples := copySamples(t, dir)
	l, store := newLoader(t, dir, Options{})
	res, err := l.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(res.Objects) != len(samples) || len(res.Upserted) != len(samples) {
		t.Fatalf("objects %d, upserted %d; want %d each: %v", len(res.Objects), len(res.Upserted), len(samples), res.Objects)
	}
	for _, o := range res.Objects {
		if o.Namespace != DefaultNamespace || !strings.HasPrefix(o.File, dir) {
			t.Errorf("object %v: want namespace %q and a file in %s", o, DefaultNamespace, dir)
		}
	}
	if res.Revision != 1 || store.Snapshot().Revision() != 1 || res.Changes.Revision != 1 {
		t.Errorf("revision %d (store %d); want 1", res.Revision, store.Snapshot().Revision())
	}
	if got := l.Namespaces(); !slices.Equal(got, []string{DefaultNamespace}) {
		t.Errorf("Namespaces() = %v", got)
	}
	if l.Dir() != dir {
		t.Errorf("Dir() = %q", l.Dir())
	}

	tests := []struct {
		name string
		ctx  evaluator.Context
		key  string
		want any
	}{
		{"allow-listed user", evaluator.Context{UserID: "staff-ada"}, "billing.enabled", true},
		{"other user", evaluator.Context{UserID: "someone"}, "billing.enabled", false},
		{"user override", evaluator.Context{UserID: "user-42"}, "billing.enabled", true},
		{"device override", evaluator.Context{DeviceID: "tablet-7f3a", DeviceClass: "tablet", Role: "user"}, "checkout.layout", "single-page"},
		{"rule", evaluator.Context{UserID: "u", Role: "user", Attributes: map[string]any{"email": "a@flagops.dev"}}, "checkout.layout", "single-page"},
		{"object value", evaluator.Context{UserID: "u"}, "billing.free_tier_limits", map[string]any{"maxStudents": 1.0, "historyLimit": 5.0}},
		{"object override", evaluator.Context{UserID: "user-42"}, "billing.free_tier_limits", map[string]any{"maxStudents": 10.0, "historyLimit": 20.0}},
		{"scheduled, before the first step", evaluator.Context{UserID: "u"}, "beta.new_dashboard", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := store.Evaluate(DefaultNamespace, tc.ctx, tc.key)
			if r.ErrorCode != evaluator.ErrorNone {
				t.Fatalf("error %v: %s", r.ErrorCode, r.ErrorMessage)
			}
			if !equalJSON(r.Value, tc.want) {
				t.Errorf("value %#v, want %#v (source %s)", r.Value, tc.want, r.Source)
			}
		})
	}

	// Loading again without a change applies nothing.
	again, err := l.Load()
	if err != nil {
		t.Fatalf("second Load: %v", err)
	}
	if len(again.Upserted) != 0 || len(again.Deleted) != 0 || again.Revision != 1 || !again.Changes.Empty() {
		t.Errorf("second Load changed something: %+v", again)
	}
}

func equalJSON(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			if !equalJSON(v, bm[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestLoadErrors(t *testing.T) {
	const ff = "apiVersion: flagops.dev/v1alpha1\nkind: FeatureFlag\n"
	tests := []struct {
		name    string
		file    string
		content string
		doc     int
		object  string
		field   string
		msg     string
	}{
		{"unknown field", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {type: Boolean, colour: red}\n",
			1, "FeatureFlag a.b", "spec.colour", `unknown field "spec.colour"`},
		{"unknown metadata field", "bad.yaml", ff + "metadata: {name: a.b, colour: red}\nspec: {type: Boolean}\n",
			1, "FeatureFlag a.b", "metadata.colour", `unknown field "metadata.colour"`},
		{"rollout 101 (OpenAPI), second document", "bad.yaml", stringFlag("a.ok", "x") + "---\n" + ff +
			"metadata: {name: a.b}\nspec: {type: Boolean, rollout: {percentage: 101}}\n",
			2, "FeatureFlag a.b", "spec.rollout.percentage", "Invalid value: 101"},
		{"enum", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {type: Bool}\n",
			1, "FeatureFlag a.b", "spec.type", "Unsupported value"},
		{"missing spec", "bad.yaml", ff + "metadata: {name: a.b}\n",
			1, "FeatureFlag a.b", "spec", "Required value"},
		{"duplicate rule names (list-map)", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Boolean
  rules:
  - {name: r, match: [{attribute: x, operator: Exists}]}
  - {name: r, match: [{attribute: y, operator: Exists}]}
`, 1, "FeatureFlag a.b", "spec.rules[1]", "Duplicate value"},
		{"schedule out of order (CEL)", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Boolean
  schedule:
  - {at: "2030-01-02T00:00:00Z", enabled: true}
  - {at: "2030-01-01T00:00:00Z", enabled: false}
`, 1, "FeatureFlag a.b", "spec.schedule", "strictly increasing order"},
		{"Exists with values (CEL)", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Boolean
  rules:
  - {name: r, match: [{attribute: x, operator: Exists, values: ["1"]}]}
`, 1, "FeatureFlag a.b", "spec.rules[0].match[0].values", "values must be empty for the Exists operator"},
		{"Boolean value yes (policy)", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {type: Boolean, value: \"yes\"}\n",
			1, "FeatureFlag a.b", "spec.value", "spec.value: invalid value"},
		{"String value required (policy)", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {type: String}\n",
			1, "FeatureFlag a.b", "spec.value", "required for String flags"},
		{"value fails its schema", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Number
  schema: {type: integer, maximum: 10}
  value: 11
`, 1, "FeatureFlag a.b", "spec.value", "does not match schema"},
		{"invalid schema", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Number
  schema: {type: 5}
  value: 1
`, 1, "FeatureFlag a.b", "spec.schema", "spec.schema"},
		{"bad RE2", "bad.yaml", ff + `metadata: {name: a.b}
spec:
  type: Boolean
  rules:
  - {name: r, match: [{attribute: email, operator: Matches, values: ["(unclosed"]}]}
`, 1, "FeatureFlag a.b", "spec.rules[0].match[0].values[0]", "invalid RE2 pattern"},
		{"invalid name", "bad.yaml", ff + "metadata: {name: Billing_Enabled}\nspec: {type: Boolean}\n",
			1, "FeatureFlag Billing_Enabled", "metadata.name", "RFC 1123 subdomain"},
		{"override for unknown flag", "ovr.yaml", userOverride("o1", "u1", "no.such-flag", "true"),
			1, "UserFlagOverride o1", "spec.flags[0].key", `no FeatureFlag has the key "no.such-flag" in namespace "default"`},
		{"override value fails schema", "ovr.yaml", userOverride("o1", "u1", "billing.limits", "{max: 0}"),
			1, "UserFlagOverride o1", "spec.flags[0].value", "does not match schema"},
		{"override value fails type", "ovr.yaml", userOverride("o1", "u1", "billing.enabled", `"on"`),
			1, "UserFlagOverride o1", "spec.flags[0].value", `flag "billing.enabled"`},
		{"override duplicate keys (list-map)", "ovr.yaml", `apiVersion: flagops.dev/v1alpha1
kind: DeviceFlagOverride
metadata: {name: d1}
spec:
  deviceId: dev-1
  flags:
  - {key: billing.enabled, enabled: true}
  - {key: billing.enabled, enabled: false}
`, 1, "DeviceFlagOverride d1", "spec.flags[1].key", "DeviceFlagOverride d1): spec.flags[1].key: duplicate of spec.flags[0].key"},
		{"override key repeated, seed 000's last-wins habit", "ovr.json", `{"apiVersion": "flagops.dev/v1alpha1", "kind": "UserFlagOverride", "metadata": {"name": "o1"},
 "spec": {"userId": "u1", "flags": [{"key": "billing.enabled", "value": true}, {"key": "billing.limits", "value": {"max": 2}},
  {"key": "billing.other", "value": 1}, {"key": "billing.limits", "value": {"max": 3}}]}}`,
			1, "UserFlagOverride o1", "spec.flags[3].key", "UserFlagOverride o1): spec.flags[3].key: duplicate of spec.flags[1].key"},
		{"override null value, seed 000's clear habit", "ovr.yaml", userOverride("o1", "u1", "billing.enabled", "null"),
			1, "UserFlagOverride o1", "spec.flags[0].value", "UserFlagOverride o1): spec.flags[0].value: null does not clear an override; remove the entry instead"},
		{"override null value beside enabled", "ovr.yaml", userOverride("o1", "u1", "billing.enabled", "null") + "    enabled: true\n",
			1, "UserFlagOverride o1", "spec.flags[0].value", "spec.flags[0].value: null does not clear an override"},
		{"override entry without value or enabled", "ovr.yaml", `apiVersion: flagops.dev/v1alpha1
kind: DeviceFlagOverride
metadata: {name: d1}
spec:
  deviceId: dev-1
  flags:
  - {key: billing.enabled}
`, 1, "DeviceFlagOverride d1", "spec.flags[0]", "spec.flags[0]: has neither value nor enabled; to clear the override, remove the entry"},
		{"conflict", "ovr.yaml", userOverride("o1", "u1", "billing.limits", "{max: 2}") + "---\n" +
			userOverride("o2", "u1", "billing.limits", "{max: 3}"),
			2, "UserFlagOverride o2", "spec.flags[0].key", `UserFlagOverride "o1"`},
		{"duplicate object name", "dup.yaml", stringFlag("billing.limits", "x"),
			1, "FeatureFlag billing.limits", "metadata.name", "also defined in"},
		{"duplicate flag key", "dup.yaml", ff + "metadata: {name: limits-copy}\nspec: {key: billing.limits, type: Boolean}\n",
			1, "FeatureFlag limits-copy", "spec.key", "FeatureFlag default/billing.limits ("},
		{"flag named after another flag's key", "dup.yaml", ff + "metadata: {name: other}\nspec: {key: new.key, type: Boolean}\n---\n" +
			ff + "metadata: {name: new.key}\nspec: {type: Boolean}\n",
			2, "FeatureFlag new.key", "metadata.name", "already has this key, so FeatureFlag default/new.key cannot"},
		{"invalid spec.key", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {key: \"new checkout\", type: Boolean}\n",
			1, "FeatureFlag a.b", "spec.key", "should match"},
		{"override for a flag's name, not its key", "ovr.yaml", ff + "metadata: {name: new-checkout}\nspec: {key: newCheckout, type: Boolean}\n---\n" +
			userOverride("o1", "u1", "new-checkout", "true"),
			2, "UserFlagOverride o1", "spec.flags[0].key", `no FeatureFlag has the key "new-checkout"`},
		{"malformed metadata", "bad.yaml", ff + "metadata: {name: false}\nspec: {type: Boolean}\n",
			1, "FeatureFlag (no name)", "metadata", "cannot unmarshal bool"},
		{"unknown kind", "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
			1, "", "", `unsupported object (apiVersion "v1", kind "ConfigMap")`},
		{"wrong version", "v2.yaml", "apiVersion: flagops.dev/v2\nkind: FeatureFlag\nmetadata: {name: c}\n",
			1, "", "", "unsupported object"},
		{"invalid YAML", "bad.yaml", "apiVersion: flagops.dev/v1alpha1\nkind: [FeatureFlag\n",
			1, "", "", "invalid YAML"},
		{"duplicate YAML key", "bad.yaml", ff + "metadata: {name: a.b}\nspec: {type: Boolean, type: String}\n",
			1, "", "", "invalid YAML"},
		{"not an object", "bad.yaml", "- a\n- b\n", 1, "", "", "not an object"},
		{"bad JSON file", "bad.json", `{"apiVersion": "flagops.dev/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "a.b"}, "spec": {"type": "Boolean", "enabled": "yes"}}`,
			1, "FeatureFlag a.b", "spec.enabled", "must be of type boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "base.yaml", baseFlags)
			path := writeFile(t, dir, tc.file, tc.content)
			l, store := newLoader(t, dir, Options{})
			_, err := l.Load()
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load: got %v, want a *LoadError", err)
			}
			if store.Snapshot().Revision() != 0 || len(store.Snapshot().Namespaces()) != 0 {
				t.Errorf("a rejected directory was applied: revision %d", store.Snapshot().Revision())
			}
			var found *FileError
			for i := range le.Errors {
				if le.Errors[i].File == path && strings.Contains(le.Errors[i].Error(), tc.msg) {
					found = &le.Errors[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("no error for %s containing %q in:\n%v", path, tc.msg, err)
			}
			if found.Doc != tc.doc || found.Object != tc.object || found.Field != tc.field {
				t.Errorf("got doc %d, object %q, field %q; want %d, %q, %q (%v)",
					found.Doc, found.Object, found.Field, tc.doc, tc.object, tc.field, found)
			}
			if tc.field != "" && !strings.Contains(found.Error(), tc.field) {
				t.Errorf("message %q does not name the field %s", found.Error(), tc.field)
			}
			if !strings.HasPrefix(found.Error(), path+": document ") {
				t.Errorf("message %q does not start with the file and document", found.Error())
			}
		})
	}
}

func TestLoadErrorKeepsLastGoodState(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "base.yaml", baseFlags)
	writeFile(t, dir, "layout.yaml", stringFlag("checkout.layout", "sidebar"))
	l, store := newLoader(t, dir, Options{})
	if _, err := l.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	rev := store.Snapshot().Revision()

	// A new version with one good and one bad change: nothing of it applies.
	writeFile(t, dir, "layout.yaml", stringFlag("checkout.layout", "single-page"))
	writeFile(t, dir, "bad.yaml", stringFlag("checkout.other", "[1, 2]"))
	if _, err := l.Load(); err == nil {
		t.Fatal("Load accepted a String flag with an array value")
	}
	if got := store.Snapshot().Revision(); got != rev {
		t.Errorf("revision %d after a rejected load, want %d", got, rev)
	}
	if v := store.Evaluate(DefaultNamespace, evaluator.Context{}, "checkout.layout").Value; v != "sidebar" {
		t.Errorf("serves %v after a rejected load, want the old value sidebar", v)
	}

	// Fixing the file applies everything, as a diff.
	writeFile(t, dir, "bad.yaml", stringFlag("checkout.other", "fixed"))
	res, err := l.Load()
	if err != nil {
		t.Fatalf("Load after the fix: %v", err)
	}
	wantUp := []ObjectRef{
		{Kind: kindFeatureFlag, Namespace: DefaultNamespace, Name: "checkout.layout", File: filepath.Join(dir, "layout.yaml")},
		{Kind: kindFeatureFlag, Namespace: DefaultNamespace, Name: "checkout.other", File: filepath.Join(dir, "bad.yaml")},
	}
	if !slices.Equal(res.Upserted, wantUp) || len(res.Deleted) != 0 {
		t.Errorf("upserted %v deleted %v; want %v and none", res.Upserted, res.Deleted, wantUp)
	}
	wantFlags := []evaluator.FlagRef{{Namespace: DefaultNamespace, Key: "checkout.layout"}, {Namespace: DefaultNamespace, Key: "checkout.other"}}
	if !slices.Equal(res.Changes.Flags, wantFlags) || res.Revision != rev+1 {
		t.Errorf("change set %+v, want flags %v at revision %d", res.Changes, wantFlags, rev+1)
	}
	if v := store.Evaluate(DefaultNamespace, evaluator.Context{}, "checkout.layout").Value; v != "single-page" {
		t.Errorf("serves %v, want single-page", v)
	}

	// Removing a file removes its objects.
	if err := os.Remove(filepath.Join(dir, "bad.yaml")); err != nil {
		t.Fatal(err)
	}
	res, err = l.Load()
	if err != nil {
		t.Fatalf("Load after removal: %v", err)
	}
	if len(res.Deleted) != 1 || res.Deleted[0].Name != "checkout.other" || len(res.Upserted) != 0 {
		t.Errorf("deleted %v upserted %v; want checkout.other only", res.Deleted, res.Upserted)
	}
	if r := store.Evaluate(DefaultNamespace, evaluator.Context{}, "checkout.other"); r.ErrorCode != evaluator.ErrorFlagNotFound {
		t.Errorf("removed flag evaluates to %+v, want FLAG_NOT_FOUND", r)
	}
}

func TestLoadOverrideDiff(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "base.yaml", baseFlags)
	writeFile(t, dir, "users.yaml", userOverride("o1", "u1", "billing.limits", "{max: 2}")+"---\n"+
		`apiVersion: flagops.dev/v1alpha1
kind: DeviceFlagOverride
metadata: {name: o1}
spec:
  deviceId: dev-1
  flags:
  - {key: billing.enabled, enabled: true}
`)
	l, store := newLoader(t, dir, Options{})
	if _, err := l.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	ctx := evaluator.Context{UserID: "u1", DeviceID: "dev-1", DeviceClass: "phone"}
	if v := store.Evaluate(DefaultNamespace, ctx, "billing.enabled").Value; v != true {
		t.Errorf("device override: got %v, want true", v)
	}
	// Edit the user override: only its pair changes.
	writeFile(t, dir, "users.yaml", userOverride("o1", "u1", "billing.limits", "{max: 3}")+"---\n"+
		`apiVersion: flagops.dev/v1alpha1
kind: DeviceFlagOverride
metadata: {name: o1}
spec:
  deviceId: dev-1
  flags:
  - {key: billing.enabled, enabled: true}
`)
	res, err := l.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []evaluator.SubjectChange{{Namespace: DefaultNamespace, Kind: evaluator.SubjectUser, SubjectID: "u1", Key: "billing.limits"}}
	if !slices.Equal(res.Changes.Subjects, want) || len(res.Changes.Flags) != 0 {
		t.Errorf("change set %+v, want subjects %v only", res.Changes, want)
	}
	if v := store.Evaluate(DefaultNamespace, ctx, "billing.limits").Value; !equalJSON(v, map[string]any{"max": 3.0}) {
		t.Errorf("user override: got %v, want max 3", v)
	}
	// Removing the overrides deletes both objects.
	writeFile(t, dir, "users.yaml", "# nothing here\n")
	res, err = l.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(res.Deleted) != 2 || res.Deleted[0].Kind != kindDeviceOverride || res.Deleted[1].Kind != kindUserOverride {
		t.Errorf("deleted %v, want the device and the user override", res.Deleted)
	}
	if v := store.Evaluate(DefaultNamespace, ctx, "billing.enabled").Value; v != false {
		t.Errorf("after removal: got %v, want false", v)
	}
}

func TestLoadFlagKeys(t *testing.T) {
	const flags = `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata: {name: beta.new-dashboard}
spec: {key: beta.new_dashboard, type: Boolean, enabled: false}
---
apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata: {name: new-checkout}
spec: {key: newCheckout, type: String, enabled: true, value: classic}
`
	dir := t.TempDir()
	writeFile(t, dir, "flags.yaml", flags)
	writeFile(t, dir, "users.yaml", `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata: {name: u1-pilot}
spec:
  userId: u1
  flags:
  - {key: beta.new_dashboard, enabled: true}
  - {key: newCheckout, value: express}
`)
	l, store := newLoader(t, dir, Options{})
	if _, err := l.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	u1, u2 := evaluator.Context{UserID: "u1"}, evaluator.Context{UserID: "u2"}
	for _, c := range []struct {
		ctx  evaluator.Context
		key  string
		want any
	}{
		{u1, "beta.new_dashboard", true}, {u2, "beta.new_dashboard", false},
		{u1, "newCheckout", "express"}, {u2, "newCheckout", "classic"},
	} {
		if got := store.Evaluate(DefaultNamespace, c.ctx, c.key).Value; got != c.want {
			t.Errorf("%s for %s = %v, want %v", c.key, c.ctx.UserID, got, c.want)
		}
	}
	if r := store.Evaluate(DefaultNamespace, u1, "new-checkout"); r.ErrorCode != evaluator.ErrorFlagNotFound {
		t.Errorf("the object name serves %+v, want flag not found", r)
	}

	// Unlike in a cluster, a file can change a flag's key: the old key goes.
	writeFile(t, dir, "users.yaml", "# none\n")
	writeFile(t, dir, "flags.yaml", strings.Replace(flags, "key: newCheckout", "key: checkout.v2", 1))
	if _, err := l.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if r := store.Evaluate(DefaultNamespace, u2, "newCheckout"); r.ErrorCode != evaluator.ErrorFlagNotFound {
		t.Errorf("the old key serves %+v, want flag not found", r)
	}
	if got := store.Evaluate(DefaultNamespace, u2, "checkout.v2").Value; got != "classic" {
		t.Errorf("checkout.v2 = %v, want classic", got)
	}

	// Another object takes the key over in the same load: the key stays served.
	writeFile(t, dir, "flags.yaml", `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata: {name: checkout-v2}
spec: {key: checkout.v2, type: String, enabled: true, value: renamed}
`)
	if _, err := l.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := store.Evaluate(DefaultNamespace, u2, "checkout.v2").Value; got != "renamed" {
		t.Errorf("checkout.v2 = %v, want renamed", got)
	}
	if r := store.Evaluate(DefaultNamespace, u2, "beta.new_dashboard"); r.ErrorCode != evaluator.ErrorFlagNotFound {
		t.Errorf("a removed flag's key serves %+v, want flag not found", r)
	}
}

func TestLoadNamespaces(t *testing.T) {
	withNS := func(ns, doc string) string {
		return strings.Replace(doc, "metadata:\n", "metadata:\n  namespace: "+ns+"\n", 1)
	}
	tests := []struct {
		name   string
		opts   Options
		files  map[string]string
		wantNS []string
		// evalNS serves flag a.b.
		evalNS string
	}{
		{"no namespace", Options{}, map[string]string{"a.yaml": stringFlag("a.b", "x")}, []string{"default"}, "default"},
		{"the one namespace named", Options{}, map[string]string{
			"a.yaml": stringFlag("a.b", "x"), "b.yaml": withNS("team-a", stringFlag("c.d", "why"))},
			[]string{"team-a"}, "team-a"},
		{"two namespaces named", Options{}, map[string]string{
			"a.yaml": stringFlag("a.b", "x"), "b.yaml": withNS("team-a", stringFlag("c.d", "why")),
			"c.yaml": withNS("team-b", stringFlag("e.f", "zed"))},
			[]string{"default", "team-a", "team-b"}, "default"},
		{"option", Options{Namespace: "prod"}, map[string]string{
			"a.yaml": stringFlag("a.b", "x"), "b.yaml": withNS("team-a", stringFlag("c.d", "why"))},
			[]string{"prod", "team-a"}, "prod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			l, store := newLoader(t, dir, tc.opts)
			if _, err := l.Load(); err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := l.Namespaces(); !slices.Equal(got, tc.wantNS) {
				t.Errorf("Namespaces() = %v, want %v", got, tc.wantNS)
			}
			if v := store.Evaluate(tc.evalNS, evaluator.Context{}, "a.b").Value; v != "x" {
				t.Errorf("a.b in %s = %v, want x", tc.evalNS, v)
			}
		})
	}

	// An override applies only to the flags of its own namespace.
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", withNS("team-a", stringFlag("a.b", "x")))
	p := writeFile(t, dir, "o.yaml", withNS("team-b", userOverride("o1", "u1", "a.b", "y")))
	l, _ := newLoader(t, dir, Options{})
	_, err := l.Load()
	if err == nil || !strings.Contains(err.Error(), p+`: document 1 (UserFlagOverride o1): spec.flags[0].key: Not found: "a.b": no FeatureFlag has the key "a.b" in namespace "team-b"`) {
		t.Errorf("override in another namespace: got %v", err)
	}
}

func TestLoadInactiveOverrides(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata: {name: old}
spec:
  userId: u1
  expiresAt: "2029-01-01T00:00:00Z"
  flags:
  - {key: billing.enabled, enabled: true}
`
	disabled := `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata: {name: paused}
spec:
  userId: u1
  enabled: false
  flags:
  - {key: billing.enabled, enabled: true}
`
	active := `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata: {name: now}
spec:
  userId: u1
  flags:
  - {key: billing.enabled, enabled: false}
`
	dir := t.TempDir()
	writeFile(t, dir, "base.yaml", baseFlags)
	writeFile(t, dir, "o.yaml", expired+"---\n"+disabled+"---\n"+active)
	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return now })))
	l, err := New(dir, store, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Load()
	if err != nil {
		t.Fatalf("expired and disabled overrides must load without conflicts: %v", err)
	}
	if len(res.Objects) != 5 {
		t.Errorf("loaded %d objects, want 5", len(res.Objects))
	}
	r := store.Evaluate(DefaultNamespace, evaluator.Context{UserID: "u1"}, "billing.enabled")
	if r.Value != false || r.Source != evaluator.SourceUserOverride+"default/now" {
		t.Errorf("got %v from %s, want false from the active override", r.Value, r.Source)
	}
}

func TestLoadSkipsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", stringFlag("a.b", "x"))
	writeFile(t, dir, "b.YML", stringFlag("c.d", "why"))
	writeFile(t, dir, "c.json", `{"apiVersion":"flagops.dev/v1alpha1","kind":"FeatureFlag","metadata":{"name":"e.f"},"spec":{"type":"Number","enabled":true,"value":3}}`)
	writeFile(t, dir, "README.md", "not a manifest")
	writeFile(t, dir, ".#a.yaml", "editor lock file: garbage")
	writeFile(t, dir, "empty.yaml", "---\n# only comments\n---\n")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.yaml"), "x.yaml", "garbage: [")
	if err := os.Symlink(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "link.yml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	l, store := newLoader(t, dir, Options{})
	_, err := l.Load()
	// link.yml defines a.b again.
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "link.yml")+": document 1 (FeatureFlag a.b): metadata.name: Duplicate value") {
		t.Fatalf("symlinked file: got %v, want a duplicate of a.b", err)
	}
	if err := os.Remove(filepath.Join(dir, "link.yml")); err != nil {
		t.Fatal(err)
	}
	res, err := l.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var names []string
	for _, o := range res.Objects {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, []string{"a.b", "c.d", "e.f"}) {
		t.Errorf("loaded %v, want a.b, c.d and e.f", names)
	}
	if v := store.Evaluate(DefaultNamespace, evaluator.Context{}, "e.f").Value; v != 3.0 {
		t.Errorf("e.f = %v, want 3", v)
	}
}

func TestLoadUnreadableDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", stringFlag("a.b", "x"))
	l, store := newLoader(t, dir, Options{})
	if _, err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	_, err := l.Load()
	var le *LoadError
	if err == nil || errors.As(err, &le) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a removed directory: got %v, want a wrapped ErrNotExist", err)
	}
	if v := store.Evaluate(DefaultNamespace, evaluator.Context{}, "a.b").Value; v != "x" {
		t.Errorf("serves %v, want the last good value x", v)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f.yaml", "")
	if _, err := New(dir, nil, Options{}); err == nil {
		t.Error("New accepted a nil store")
	}
	if _, err := New(filepath.Join(dir, "missing"), evaluator.NewStore(), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: got %v", err)
	}
	if _, err := New(file, evaluator.NewStore(), Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file instead of a directory: got %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		err  FileError
		want string
	}{
		{FileError{File: "f.yaml", Err: base}, "f.yaml: boom"},
		{FileError{File: "f.yaml", Doc: 2, Err: base}, "f.yaml: document 2: boom"},
		{FileError{File: "f.yaml", Doc: 2, Object: "FeatureFlag a", Field: "spec", Err: base}, "f.yaml: document 2 (FeatureFlag a): boom"},
		{FileError{File: "f.yaml"}, "f.yaml: unknown error"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	one := &LoadError{Errors: []FileError{tests[0].err}}
	if one.Error() != "f.yaml: boom" || !errors.Is(one, base) {
		t.Errorf("single LoadError: %q", one.Error())
	}
	two := &LoadError{Errors: []FileError{tests[0].err, tests[1].err}}
	if want := "2 errors:\n  f.yaml: boom\n  f.yaml: document 2: boom"; two.Error() != want {
		t.Errorf("LoadError = %q, want %q", two.Error(), want)
	}
	var fe *FileError
	if !errors.As(two, &fe) || fe.File != "f.yaml" {
		t.Errorf("errors.As FileError: %v", fe)
	}
}

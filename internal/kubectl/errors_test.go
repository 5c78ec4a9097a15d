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
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// TestBadInput checks that every kind of bad input gets one clear line on stderr, nothing on
// stdout, and exit code 1.
func TestBadInput(t *testing.T) {
	lister := &fakeLister{objs: fixture(), namespaces: []string{"shop", "billing", "empty"}}
	forbidden := &fakeLister{err: fmt.Errorf("failed to list featureflags: %w", apierrors.NewForbidden(
		schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "featureflags"}, "",
		errors.New(`User "nobody" cannot list resource "featureflags" in API group "flagops.dev" in the namespace "shop"`)))}
	tests := []struct {
		name   string
		lister Lister
		args   []string
		want   string
	}{
		{"unknown key", lister, []string{"get", "-n", "shop", "theme", "nope"}, `error: flag "nope" not found in namespace "shop"`},
		{"unknown key in every namespace", lister, []string{"get", "-A", "nope"}, `error: flag "nope" not found in any namespace`},
		{"missing namespace", lister, []string{"get", "-n", "nowhere"}, `error: namespace "nowhere" not found`},
		{"missing namespace for effective", lister, []string{"effective", "-n", "nowhere", "--user", "alice"}, `error: namespace "nowhere" not found`},
		{"missing namespace for explain", lister, []string{"explain", "theme", "-n", "nowhere"}, `error: namespace "nowhere" not found`},
		{"missing namespace for overrides", lister, []string{"overrides", "-n", "nowhere"}, `error: namespace "nowhere" not found`},
		{"forbidden", forbidden, []string{"get", "-n", "shop"},
			`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "nobody" cannot list resource "featureflags" in API group "flagops.dev" in the namespace "shop"`},
		{"not installed", &fakeLister{err: &errNotInstalled{resource: "featureflags"}}, []string{"overrides"},
			"error: the server does not serve featureflags.flagops.dev: are the flagops CRDs installed (make install)?"},
		{"bad output", lister, []string{"get", "-o", "table"}, `error: unable to match a printer suitable for the output format "table", allowed formats are: go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,kyaml,name,template,templatefile,yaml`},
		{"effective without a subject", lister, []string{"effective", "-n", "shop"}, "error: --user or --device is required"},
		{"effective with an argument", lister, []string{"effective", "theme", "--user", "alice"}, `error: unknown command "theme" for "kubectl flagops effective"`},
		{"effective bad output", lister, []string{"effective", "--user", "alice", "-o", "name"}, `error: --output "name": want json or yaml (the default is a table)`},
		{"device without class", lister, []string{"effective", "--device", "tab-1"}, "error: --device-class is required with --device: overrides apply only to devices of an eligible class"},
		{"attr without value", lister, []string{"effective", "--user", "alice", "--attr", "plan"}, `error: --attr "plan": want NAME=VALUE`},
		{"attr without name", lister, []string{"effective", "--user", "alice", "--attr", "=pro"}, `error: --attr "=pro": want NAME=VALUE`},
		{"attr well-known", lister, []string{"effective", "--user", "alice", "--attr", "role=admin"}, `error: --attr "role=admin": role is a well-known attribute; use --role`},
		{"attr twice", lister, []string{"explain", "theme", "--attr", "plan=pro", "--attr", "plan=free"}, `error: --attr "plan=free": attribute "plan" is given twice`},
		{"explain without key", lister, []string{"explain", "--user", "alice"}, "error: accepts 1 arg(s), received 0"},
		{"explain unknown key", lister, []string{"explain", "nope", "-n", "shop"}, `error: flag "nope" not found in namespace "shop"`},
		{"explain shadowed key is the served one", lister, []string{"explain", "search-v3-copy", "-n", "shop"}, `error: flag "search-v3-copy" not found in namespace "shop"`},
		{"explain invalid flag", lister, []string{"explain", "limits.max-items", "-n", "shop"},
			`error: flag "limits.max-items" does not compile, so it is not evaluated locally: spec.value: invalid value: number flag needs a json number, got string`},
		{"malformed duration", lister, []string{"overrides", "--expiring-within", "tomorrow"}, `error: --expiring-within: "tomorrow" is not a positive duration (e.g. 90m, 24h, 7d)`},
		{"negative duration", lister, []string{"overrides", "--expiring-within", "-1h"}, `error: --expiring-within: "-1h" is not a positive duration (e.g. 90m, 24h, 7d)`},
		{"zero days", lister, []string{"overrides", "--expiring-within", "0d"}, `error: --expiring-within: "0d" is not a positive duration (e.g. 90m, 24h, 7d)`},
		{"user and device", lister, []string{"overrides", "--user", "alice", "--device", "tab-1"}, "error: --user and --device are exclusive: an override has one subject"},
		{"overrides unknown flag", lister, []string{"overrides", "-n", "shop", "--flag", "nope"}, `error: flag "nope" not found in namespace "shop"`},
		{"unknown command", lister, []string{"launch"}, `error: unknown command "launch" for "kubectl flagops"`},
		{"unknown flag", lister, []string{"get", "--bogus"}, "error: unknown flag: --bogus"},
		{"kubeconfig user flag is not offered", lister, []string{"get", "--user", "admin"}, "error: unknown flag: --user"},
		{"version with an argument", lister, []string{"version", "extra"}, `error: unknown command "extra" for "kubectl flagops version"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runWith(tt.lister, tt.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if stderr != tt.want+"\n" {
				t.Errorf("stderr = %q, want the one line %q", stderr, tt.want)
			}
		})
	}
}

func TestEmptyNamespace(t *testing.T) {
	lister := &fakeLister{objs: &Objects{}, namespaces: []string{"empty"}}
	tests := []struct {
		args           []string
		stdout, stderr string
	}{
		{[]string{"get", "-n", "empty"}, "", "No flags found in namespace empty.\n"},
		{[]string{"get", "-A"}, "", "No flags found.\n"},
		{[]string{"effective", "-n", "empty", "--user", "alice"}, "", "No flags found in namespace empty.\n"},
		{[]string{"overrides", "-n", "empty"}, "", "No overrides found in namespace empty.\n"},
		{[]string{"get", "-n", "empty", "-o", "name"}, "", ""},
		{[]string{"get", "-n", "empty", "-o", "json"}, "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n", ""},
		{[]string{"overrides", "-n", "empty", "-o", "json"}, "[]\n", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runWith(lister, tt.args...)
			if code != 0 || stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("got code %d, stdout %q, stderr %q; want 0, %q, %q", code, stdout, stderr, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestRemovedObjects checks that objects being deleted are left out, as the Syncer leaves
// them out.
func TestRemovedObjects(t *testing.T) {
	objs := fixture()
	gone := metav1.NewTime(fixtureNow)
	for i := range objs.Users {
		if objs.Users[i].Name == "pilot-alice" {
			objs.Users[i].DeletionTimestamp = &gone
		}
	}
	for i := range objs.Flags {
		if objs.Flags[i].Name == "banner" {
			objs.Flags[i].DeletionTimestamp = &gone
		}
	}
	stdout, stderr, code := runWith(&fakeLister{objs: objs}, "effective", "-n", "shop", "--user", "alice", "--role", "user", "-o", "json")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if strings.Contains(stdout, `"banner"`) {
		t.Error("a flag being deleted is listed")
	}
	if strings.Contains(stdout, "pilot-alice") {
		t.Error("an override being deleted applies")
	}
	// alice-old, which lost to pilot-alice, now decides beta.dashboard.
	if !strings.Contains(stdout, `"source": "user-override:shop/alice-old"`) {
		t.Errorf("alice-old does not decide beta.dashboard:\n%s", stdout)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "24h", want: 24 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "d", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "-2d", wantErr: true},
		{in: "", wantErr: true},
		{in: "99999999999d", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration("--x", tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFlagState(t *testing.T) {
	on, off := true, false
	fifty := int32(50)
	tests := []struct {
		name        string
		spec        v1.FeatureFlagSpec
		wantEnabled bool
		wantRollout string
	}{
		{name: "plain", spec: v1.FeatureFlagSpec{Enabled: true}, wantEnabled: true, wantRollout: "-"},
		{name: "rollout", spec: v1.FeatureFlagSpec{Rollout: &v1.Rollout{Percentage: 10}}, wantRollout: "10%"},
		{name: "past steps accumulate, out of order", spec: v1.FeatureFlagSpec{Schedule: []v1.ScheduleStep{
			{At: at(-time.Hour), RolloutPercentage: &fifty},
			{At: at(-2 * time.Hour), Enabled: &on},
		}}, wantEnabled: true, wantRollout: "50%"},
		{name: "future step not yet", spec: v1.FeatureFlagSpec{Enabled: true, Schedule: []v1.ScheduleStep{
			{At: at(time.Hour), Enabled: &off},
		}}, wantEnabled: true, wantRollout: "-"},
		{name: "step at now applies", spec: v1.FeatureFlagSpec{Enabled: true, Schedule: []v1.ScheduleStep{
			{At: at(0), Enabled: &off},
		}}, wantEnabled: false, wantRollout: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enabled, rollout := flagState(&tt.spec, fixtureNow)
			if enabled != tt.wantEnabled || rollout != tt.wantRollout {
				t.Errorf("got %v, %q; want %v, %q", enabled, rollout, tt.wantEnabled, tt.wantRollout)
			}
		})
	}
}

func TestCommandName(t *testing.T) {
	tests := map[string]string{
		"/usr/local/bin/kubectl-flagops": "kubectl flagops",
		"kubectl-flag_ops":               "kubectl flag-ops",
		"./flagops-cli":                  "flagops-cli",
	}
	for in, want := range tests {
		if got := commandName(in); got != want {
			t.Errorf("commandName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveVersion(t *testing.T) {
	if got := resolveVersion("v1.2.3"); got != "v1.2.3" {
		t.Errorf("an explicit version: got %q", got)
	}
	// A test binary has no module version: dev.
	if got := resolveVersion("dev"); got != "dev" {
		t.Errorf("no version: got %q, want dev", got)
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("bad\nthing"), "error: bad; thing"},
		{"wrapped API error", fmt.Errorf("failed: %w", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "x")),
			`Error from server (NotFound): namespaces "x" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorLine(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

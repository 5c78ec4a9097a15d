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

package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

func TestOnExpiryOf(t *testing.T) {
	type m = map[string]string
	tests := []struct {
		name        string
		labels      m
		annotations m
		spec        v1.OnExpiry
		wantRetain  bool
		wantWhy     string
	}{
		{name: "nothing", wantWhy: "nothing retains it"},
		{name: "spec Delete", spec: v1.OnExpiryDelete, wantWhy: "nothing retains it"},
		{name: "spec Retain", spec: v1.OnExpiryRetain, wantRetain: true, wantWhy: "spec.onExpiry is Retain"},

		{name: "Argo CD tracking annotation", annotations: m{"argocd.argoproj.io/tracking-id": "app:g/K:ns/n"},
			wantRetain: true, wantWhy: "(annotation argocd.argoproj.io/tracking-id)"},
		{name: "Argo CD instance label", labels: m{"app.kubernetes.io/instance": "app"},
			wantRetain: true, wantWhy: "(label app.kubernetes.io/instance)"},
		{name: "Argo CD custom instance label", labels: m{"argocd.argoproj.io/instance": "app"},
			wantRetain: true, wantWhy: "(label argocd.argoproj.io/instance)"},
		{name: "Flux Kustomization label", labels: m{"kustomize.toolkit.fluxcd.io/name": "flags"},
			wantRetain: true, wantWhy: "(label kustomize.toolkit.fluxcd.io/name)"},
		{name: "Flux HelmRelease label", labels: m{"helm.toolkit.fluxcd.io/name": "flags"},
			wantRetain: true, wantWhy: "(label helm.toolkit.fluxcd.io/name)"},
		{name: "Helm release annotation", annotations: m{"meta.helm.sh/release-name": "flags"},
			wantRetain: true, wantWhy: "(annotation meta.helm.sh/release-name)"},
		{name: "Helm release key as a label", labels: m{"meta.helm.sh/release-name": "flags"},
			wantRetain: true, wantWhy: "(label meta.helm.sh/release-name)"},
		{name: "managed-by Helm", labels: m{"app.kubernetes.io/managed-by": "Helm"},
			wantRetain: true, wantWhy: "(label app.kubernetes.io/managed-by)"},
		{name: "managed-by helm, any case", labels: m{"app.kubernetes.io/managed-by": "helm"},
			wantRetain: true, wantWhy: "(label app.kubernetes.io/managed-by)"},
		{name: "managed-by another tool", labels: m{"app.kubernetes.io/managed-by": "flagops-console"},
			wantWhy: "nothing retains it"},
		{name: "an empty marker value still marks", labels: m{"kustomize.toolkit.fluxcd.io/name": ""},
			wantRetain: true, wantWhy: "(label kustomize.toolkit.fluxcd.io/name)"},
		{name: "an unrelated label", labels: m{"app": "flags", "flagops.dev/test": "x"}, wantWhy: "nothing retains it"},
		{name: "the first marker in list order is named",
			labels:      m{"helm.toolkit.fluxcd.io/name": "x"},
			annotations: m{"argocd.argoproj.io/tracking-id": "y"},
			wantRetain:  true, wantWhy: "(annotation argocd.argoproj.io/tracking-id)"},

		{name: "annotation Retain", annotations: m{"flagops.dev/on-expiry": "Retain"},
			wantRetain: true, wantWhy: "flagops.dev/on-expiry is Retain"},
		{name: "annotation Delete", annotations: m{"flagops.dev/on-expiry": "Delete"},
			wantWhy: "flagops.dev/on-expiry is Delete"},
		{name: "annotation Delete beats spec Retain", annotations: m{"flagops.dev/on-expiry": "Delete"}, spec: v1.OnExpiryRetain,
			wantWhy: "flagops.dev/on-expiry is Delete"},
		{name: "annotation Delete beats a GitOps marker",
			annotations: m{"flagops.dev/on-expiry": "Delete", "argocd.argoproj.io/tracking-id": "y"},
			labels:      m{"app.kubernetes.io/instance": "app"},
			wantWhy:     "flagops.dev/on-expiry is Delete"},
		{name: "annotation Retain beats spec Delete", annotations: m{"flagops.dev/on-expiry": "Retain"}, spec: v1.OnExpiryDelete,
			wantRetain: true, wantWhy: "flagops.dev/on-expiry is Retain"},
		{name: "spec Retain is named before a marker", spec: v1.OnExpiryRetain, labels: m{"app.kubernetes.io/instance": "app"},
			wantRetain: true, wantWhy: "spec.onExpiry is Retain"},
		{name: "invalid annotation value retains", annotations: m{"flagops.dev/on-expiry": "delete"},
			wantRetain: true, wantWhy: `flagops.dev/on-expiry has the invalid value "delete" (want Retain or Delete), so the safe choice Retain applies`},
		{name: "empty annotation value is invalid", annotations: m{"flagops.dev/on-expiry": ""}, spec: v1.OnExpiryDelete,
			wantRetain: true, wantWhy: `invalid value ""`},
		{name: "the annotation as a label does not count", labels: m{"flagops.dev/on-expiry": "Retain"},
			wantWhy: "nothing retains it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annotations}}
			got := onExpiryOf(o, tt.spec)
			if got.retain != tt.wantRetain {
				t.Errorf("retain = %v, want %v (why: %s)", got.retain, tt.wantRetain, got.why)
			}
			if !strings.Contains(got.why, tt.wantWhy) {
				t.Errorf("why = %q, want it to contain %q", got.why, tt.wantWhy)
			}
		})
	}
}

func TestExpiryPolicyMessage(t *testing.T) {
	const at = "2030-01-01T00:00:00Z"
	tests := []struct {
		policy  expiryPolicy
		expired bool
		want    string
	}{
		{expiryPolicy{retain: true, why: "W"}, true, "the override expired at " + at + " and is kept because W"},
		{expiryPolicy{why: "W"}, true, "the override expired at " + at + " and is being deleted because W"},
		{expiryPolicy{retain: true, why: "W"}, false, "the override expires at " + at + ", and will then be kept because W"},
		{expiryPolicy{why: "W"}, false, "the override expires at " + at + ", and will then be deleted because W"},
	}
	for _, tt := range tests {
		if got := tt.policy.message(at, tt.expired); got != tt.want {
			t.Errorf("message(%+v, expired=%v) = %q, want %q", tt.policy, tt.expired, got, tt.want)
		}
	}
}

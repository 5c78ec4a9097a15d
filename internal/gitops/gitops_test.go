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

package gitops

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMarker(t *testing.T) {
	type m = map[string]string
	tests := []struct {
		name                string
		labels, annotations m
		want                string
		// wantTool is Tool's answer.
		wantTool string
	}{
		{name: "none", want: ""},
		{name: "Argo CD tracking id", annotations: m{ArgoCDTrackingAnnotation: "app:flagops.dev/UserFlagOverride:shop/x"}, want: "annotation argocd.argoproj.io/tracking-id", wantTool: "Argo CD"},
		{name: "Argo CD instance label", labels: m{ArgoCDInstanceLabel: "app"}, want: "label app.kubernetes.io/instance", wantTool: "Argo CD"},
		{name: "Argo CD custom instance label", labels: m{ArgoCDCustomInstanceLabel: "app"}, want: "label argocd.argoproj.io/instance", wantTool: "Argo CD"},
		{name: "Flux kustomize label", labels: m{FluxKustomizationLabel: "flags"}, want: "label kustomize.toolkit.fluxcd.io/name", wantTool: "Flux"},
		{name: "Flux helm label", labels: m{FluxHelmReleaseLabel: "flags"}, want: "label helm.toolkit.fluxcd.io/name", wantTool: "Flux"},
		{name: "Helm release annotation", annotations: m{HelmReleaseAnnotation: "flags"}, want: "annotation meta.helm.sh/release-name", wantTool: "Helm"},
		{name: "managed-by Helm", labels: m{ManagedByLabel: "Helm"}, want: "label app.kubernetes.io/managed-by", wantTool: "Helm"},
		{name: "managed-by another tool", labels: m{ManagedByLabel: "kubectl-flagops"}, want: ""},
		{name: "first in list order", labels: m{FluxHelmReleaseLabel: "x"}, annotations: m{ArgoCDTrackingAnnotation: "y"}, want: "annotation argocd.argoproj.io/tracking-id", wantTool: "Argo CD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annotations}
			if got := Marker(obj); got != tt.want {
				t.Errorf("Marker() = %q, want %q", got, tt.want)
			}
			if got := Tool(obj); got != tt.wantTool {
				t.Errorf("Tool() = %q, want %q", got, tt.wantTool)
			}
		})
	}
}

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

// Package gitops recognises the objects that a GitOps tool or Helm manages, by the labels
// and annotations those tools write on them. The manager keeps such an override at expiry
// instead of deleting it (controllers/expiry.go), and the kubectl plugin refuses to change
// one without --force (internal/kubectl), since the tool would revert the change.
package gitops

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitOps markers: the labels and annotations that GitOps tools and Helm write on the objects
// they manage.
const (
	// ArgoCDTrackingAnnotation is written by Argo CD in annotation tracking mode.
	ArgoCDTrackingAnnotation = "argocd.argoproj.io/tracking-id"
	// ArgoCDInstanceLabel is written by Argo CD in label tracking mode (its default key),
	// and by many Helm charts.
	ArgoCDInstanceLabel = "app.kubernetes.io/instance"
	// ArgoCDCustomInstanceLabel is the label key the Argo CD documentation recommends
	// setting as application.instanceLabelKey.
	ArgoCDCustomInstanceLabel = "argocd.argoproj.io/instance"
	// FluxKustomizationLabel is written by Flux's kustomize-controller.
	FluxKustomizationLabel = "kustomize.toolkit.fluxcd.io/name"
	// FluxHelmReleaseLabel is written by Flux's helm-controller.
	FluxHelmReleaseLabel = "helm.toolkit.fluxcd.io/name"
	// HelmReleaseAnnotation is written by Helm 3 on every object of a release.
	HelmReleaseAnnotation = "meta.helm.sh/release-name"
	// ManagedByLabel marks a Helm release's objects when its value is ManagedByHelm.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByHelm is the value of ManagedByLabel that Helm charts set.
	ManagedByHelm = "Helm"
)

// Markers lists the marker keys in the order they are reported. Each is recognised as a
// label or as an annotation, since tools and their settings use either; ManagedByLabel counts
// only with the value ManagedByHelm.
var Markers = []string{
	ArgoCDTrackingAnnotation, ArgoCDInstanceLabel, ArgoCDCustomInstanceLabel,
	FluxKustomizationLabel, FluxHelmReleaseLabel, HelmReleaseAnnotation, ManagedByLabel,
}

// Tool names the tool that manages obj, by the first GitOps marker it carries: "Argo CD",
// "Flux" or "Helm"; "" when it carries none. The web console shows it on a read-only badge.
func Tool(obj metav1.Object) string {
	m := Marker(obj)
	_, key, _ := strings.Cut(m, " ")
	switch key {
	case "":
		return ""
	case ArgoCDTrackingAnnotation, ArgoCDInstanceLabel, ArgoCDCustomInstanceLabel:
		return "Argo CD"
	case FluxKustomizationLabel, FluxHelmReleaseLabel:
		return "Flux"
	}
	return "Helm"
}

// Marker returns a description of the first GitOps marker obj carries, such as
// "label app.kubernetes.io/instance", or "" when it carries none.
func Marker(obj metav1.Object) string {
	for _, key := range Markers {
		for _, m := range []struct {
			where  string
			values map[string]string
		}{{"label", obj.GetLabels()}, {"annotation", obj.GetAnnotations()}} {
			v, ok := m.values[key]
			if ok && (key != ManagedByLabel || strings.EqualFold(v, ManagedByHelm)) {
				return m.where + " " + key
			}
		}
	}
	return ""
}

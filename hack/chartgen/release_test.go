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

package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const releaseImage = "registry.example:5000/flagops/flagops:v1.2.3"

// TestReleaseManifests checks that install.yaml is config/default with the release's image
// on both Deployments and nothing else changed, and that crds.yaml is what config/crd holds
// (the CRDs and the admission policies), as install.yaml has them.
func TestReleaseManifests(t *testing.T) {
	install, crds, err := releaseManifests(tool(t, "KUSTOMIZE"), root, releaseImage)
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(decode(t, string(install)))
	want := byKey(kustomizeDefault(t))
	images := 0
	for k, o := range want {
		if o.GetKind() == "Deployment" {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			cs[0].(map[string]any)["image"] = releaseImage
			if err := unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
			images++
		}
		if diff := cmp.Diff(o.Object, got[k].Object); diff != "" {
			t.Errorf("install.yaml: %s (-want +got):\n%s", k, diff)
		}
	}
	if images != 2 || len(got) != len(want) {
		t.Errorf("install.yaml has %d objects, config/default %d with %d Deployments", len(got), len(want), images)
	}

	var kinds []string
	for _, o := range decode(t, string(crds)) {
		kinds = append(kinds, o.GetKind())
		if diff := cmp.Diff(got[key(o)].Object, o.Object); diff != "" {
			t.Errorf("crds.yaml: %s differs from install.yaml's (-install +crds):\n%s", key(o), diff)
		}
	}
	sort.Strings(kinds)
	wantKinds := []string{"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding"}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("crds.yaml kinds (-want +got):\n%s", diff)
	}
}

// TestWriteRelease checks the files that make release-manifests writes.
func TestWriteRelease(t *testing.T) {
	out := t.TempDir()
	if err := writeRelease(tool(t, "KUSTOMIZE"), root, releaseImage, out); err != nil {
		t.Fatal(err)
	}
	for name, objects := range map[string]int{"install.yaml": 38, "crds.yaml": 8} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(decode(t, string(data))); n != objects {
			t.Errorf("%s: %d objects, want %d", name, n, objects)
		}
	}
	if err := writeRelease(tool(t, "KUSTOMIZE"), root, "", out); err == nil {
		t.Error("no error for an empty image")
	}
}

// TestServerSideApply applies dist/install.yaml, then the chart rendered into another
// namespace (with the keys Secret made from values), to a real API server (envtest), the
// way users do: kubectl apply --server-side, which is what a server-side apply patch is.
// The API server validates every object against its schema (the CRDs' own, the admission
// policies' CEL, the webhook configurations').
func TestServerSideApply(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	apply := func(t *testing.T, source string, objs []*unstructured.Unstructured) {
		t.Helper()
		for _, o := range objs {
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("flagops-"+source), client.ForceOwnership); err != nil {
				t.Errorf("%s: apply %s: %v", source, key(o), err)
			}
		}
	}

	install, _, err := releaseManifests(tool(t, "KUSTOMIZE"), root, releaseImage)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, string(install))
	apply(t, "install", objs)
	var d unstructured.Unstructured
	d.SetAPIVersion("apps/v1")
	d.SetKind("Deployment")
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: evaluator}, &d); err != nil {
		t.Fatalf("after applying install.yaml: %v", err)
	}

	const ns = "flagops-chart"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	out, err := helmTemplate(t, ns, "--set-json", `evaluator.keys.jwks={"keys":[]}`, "--set", "image.tag=v1.2.3",
		"--set", "manager.audit.sinks={https://audit.example/in}")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, "chart", decode(t, out))
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flagops-evaluator-keys"}, &s); err != nil {
		t.Fatalf("after applying the chart: %v", err)
	}
	if string(s.Data["jwks.json"]) != `{"keys":[]}` {
		t.Errorf("the keys Secret holds %q", s.Data["jwks.json"])
	}
}

package localdir

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagops/flagops/config/crd"
)

func TestLoadSchemas(t *testing.T) {
	all, err := loadSchemas(crd.FS)
	if err != nil {
		t.Fatalf("embedded CRDs: %v", err)
	}
	for _, kind := range []string{kindFeatureFlag, kindUserOverride, kindDeviceOverride} {
		if s := all[kind]; s == nil || s.structural == nil || s.cel == nil {
			t.Errorf("%s: incomplete validator %+v", kind, s)
		}
	}

	// Defaults are applied as the API server applies them.
	obj := map[string]any{
		"apiVersion": "flagops.dev/v1alpha1", "kind": kindUserOverride,
		"metadata": map[string]any{"name": "o", "namespace": "ns"},
		"spec":     map[string]any{"userId": "u", "flags": []any{map[string]any{"key": "k", "enabled": true}}},
	}
	if errs := all[kindUserOverride].validate(context.Background(), obj); len(errs) != 0 {
		t.Fatalf("valid override rejected: %v", errs)
	}
	spec := obj["spec"].(map[string]any)
	if spec["enabled"] != true || spec["onExpiry"] != "Delete" {
		t.Errorf("defaults not applied: %v", spec)
	}

	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"no CRDs", fstest.MapFS{}, "no CRD schema for"},
		{"bad YAML", fstest.MapFS{"bases/x.yaml": {Data: []byte("spec: [")}}, "decode CRD bases/x.yaml"},
		{"unknown field", fstest.MapFS{"bases/x.yaml": {Data: []byte("spek: {}")}}, "decode CRD bases/x.yaml"},
		{"unsupported schema field", fstest.MapFS{"bases/x.yaml": {Data: []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: featureflags.flagops.dev}
spec:
  group: flagops.dev
  names: {kind: FeatureFlag, plural: featureflags}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        id: not-supported
`)}}, "CRD x.yaml: structural schema"},
		{"other group", fstest.MapFS{"bases/x.yaml": {Data: []byte("spec: {group: example.com}")}}, "no CRD schema for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSchemas(tc.fs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

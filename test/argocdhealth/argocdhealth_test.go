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

package argocdhealth

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var kinds = []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"}

const root = "../.."

func cond(typ, status, message string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": "Test", "message": message}
}

func object(generation int64, status map[string]any) map[string]any {
	obj := map[string]any{"metadata": map[string]any{"name": "x", "generation": generation}}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

// The controllers' envtest suite runs the checks on live objects in every state the manager
// writes (controllers/health_test.go). These cases are the states it cannot reach there.
func TestHealthChecksOnEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		want Result
	}{
		{
			name: "no status at all",
			obj:  object(1, nil),
			want: Result{Progressing, "Waiting for the flagops manager to observe generation 1"},
		},
		{
			name: "status without observedGeneration",
			obj:  object(2, map[string]any{"conditions": []any{cond("Ready", "True", "ok")}}),
			want: Result{Progressing, "Waiting for the flagops manager to observe generation 2"},
		},
		{
			name: "being deleted",
			obj: func() map[string]any {
				o := object(1, map[string]any{"observedGeneration": int64(1), "conditions": []any{cond("Ready", "True", "ok")}})
				o["metadata"].(map[string]any)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
				return o
			}(),
			want: Result{Progressing, "The object is being deleted"},
		},
		{
			name: "observed, but no Ready yet",
			obj:  object(1, map[string]any{"observedGeneration": int64(1)}),
			want: Result{Progressing, "Waiting for the flagops manager to report Ready"},
		},
		{
			name: "Ready=False alone is not terminal",
			obj:  object(1, map[string]any{"observedGeneration": int64(1), "conditions": []any{cond("Ready", "False", "not yet")}}),
			want: Result{Progressing, "not yet"},
		},
		{
			name: "Stalled=False and Reconciling=False are normal",
			obj: object(1, map[string]any{"observedGeneration": int64(1), "conditions": []any{
				cond("Stalled", "False", "s"), cond("Reconciling", "False", "r"), cond("Ready", "True", "served"),
			}}),
			want: Result{Healthy, "served"},
		},
		{
			name: "Stalled=True wins over Ready=True",
			obj: object(1, map[string]any{"observedGeneration": int64(1), "conditions": []any{
				cond("Ready", "True", "served"), cond("Stalled", "True", "stuck"),
			}}),
			want: Result{Degraded, "stuck"},
		},
		{
			name: "as kstatus, the first abnormal condition in the list decides",
			obj: object(1, map[string]any{"observedGeneration": int64(1), "conditions": []any{
				cond("Reconciling", "True", "working"), cond("Stalled", "True", "stuck"),
			}}),
			want: Result{Progressing, "working"},
		},
		{
			name: "a float observedGeneration, as JSON decoders give it",
			obj:  object(3, map[string]any{"observedGeneration": 3.0, "conditions": []any{cond("Ready", "True", "served")}}),
			want: Result{Healthy, "served"},
		},
	}
	for _, kind := range kinds {
		script, err := ReadScript(root, kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				got, err := Check(script, tt.obj)
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
			})
		}
	}
}

func TestCheckRejectsWhatArgoCDRejects(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		wantErr string
	}{
		{name: "not a table", script: `return "Healthy"`, wantErr: "returned a string, want a table"},
		{name: "no status", script: `return {message = "x"}`, wantErr: "no status string"},
		{name: "unknown status", script: `return {status = "Fine"}`, wantErr: `the status "Fine"`},
		{name: "message not a string", script: `return {status = "Healthy", message = {}}`, wantErr: "table message"},
		{name: "syntax error", script: `return {`, wantErr: "the health check failed"},
		// Argo CD opens no string library for argocd-cm health checks.
		{name: "string library", script: `return {status = string.upper("healthy")}`, wantErr: "the health check failed"},
		{name: "endless loop", script: `while true do end`, wantErr: "the health check failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(tt.script, object(1, nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckPassesTheObject(t *testing.T) {
	script := `return {status = "Healthy", message = obj.metadata.name .. "/" .. obj.spec.flags[2].key .. "/" .. tostring(obj.spec.n + 1)}`
	obj := map[string]any{
		"metadata": map[string]any{"name": "pilot"},
		"spec":     map[string]any{"n": int64(41), "flags": []any{map[string]any{"key": "a"}, map[string]any{"key": "b"}}},
	}
	got, err := Check(script, obj)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Healthy, "pilot/b/42"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestConfigMapHoldsOneCheckPerKind(t *testing.T) {
	cm, err := ConfigMap(root)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != "argocd" || cm.Name != "argocd-cm" {
		t.Errorf("the kustomization generates %s/%s, want argocd/argocd-cm", cm.Namespace, cm.Name)
	}
	if len(cm.Data) != len(kinds) {
		t.Errorf("argocd-cm has %d keys, want %d", len(cm.Data), len(kinds))
	}
	for _, kind := range kinds {
		script, err := ReadScript(root, kind)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := cm.Data[ConfigMapKey(kind)]; !ok || got != script {
			t.Errorf("argocd-cm key %s does not hold %s", ConfigMapKey(kind), ScriptPath(kind))
		}
	}
}

// The documentation shows argocd-cm as `kustomize build config/argocd` prints it; it must not
// drift from the files.
func TestDocsShowTheConfigMap(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		if strings.Contains(body, "name: argocd-cm") {
			block = body
			break
		}
	}
	if block == "" {
		t.Fatal("docs/gitops.md has no yaml block with argocd-cm")
	}
	var shown corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(block), &shown); err != nil {
		t.Fatalf("the argocd-cm block of docs/gitops.md does not parse: %v", err)
	}
	want, err := ConfigMap(root)
	if err != nil {
		t.Fatal(err)
	}
	if shown.Namespace != want.Namespace || shown.Name != want.Name {
		t.Errorf("docs/gitops.md shows %s/%s, want %s/%s", shown.Namespace, shown.Name, want.Namespace, want.Name)
	}
	if !reflect.DeepEqual(shown.Data, want.Data) {
		t.Errorf("the argocd-cm data in docs/gitops.md differs from config/argocd; paste `kustomize build config/argocd` into it")
	}
}

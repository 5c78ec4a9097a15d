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

// Package argocdhealth runs the Argo CD health checks in config/argocd for tests, under the
// conditions Argo CD gives a health check from argocd-cm: a Lua state with only the base,
// package and table libraries, the object as the global obj (JSON numbers as Lua numbers,
// lists as 1-based tables), a one-second limit, and the returned table's status and message
// as the result.
package argocdhealth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Status is an Argo CD health status.
type Status string

// The health statuses Argo CD accepts from a health check.
const (
	Healthy     Status = "Healthy"
	Progressing Status = "Progressing"
	Degraded    Status = "Degraded"
	Suspended   Status = "Suspended"
	Missing     Status = "Missing"
	Unknown     Status = "Unknown"
)

// Result is what a health check returned.
type Result struct {
	Status  Status
	Message string
}

// Group is the API group of the flagops kinds, as it appears in argocd-cm keys.
const Group = "flagops.dev"

// ConfigMapKey is the argocd-cm key of the health check of kind.
func ConfigMapKey(kind string) string {
	return "resource.customizations.health." + Group + "_" + kind
}

// ScriptPath is the path of the health check of kind, relative to the repository root: one
// script, config/argocd/health.lua, serves the three kinds.
func ScriptPath(string) string {
	return filepath.Join("config", "argocd", "health.lua")
}

// ReadScript reads the health check of kind from the repository at root.
func ReadScript(root, kind string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, ScriptPath(kind)))
	if err != nil {
		return "", fmt.Errorf("failed to read the health check of %s: %w", kind, err)
	}
	return string(b), nil
}

// ConfigMap is the argocd-cm that config/argocd/kustomization.yaml generates in the
// repository at root, read from the kustomization and the files it names.
func ConfigMap(root string) (*corev1.ConfigMap, error) {
	dir := filepath.Join(root, "config", "argocd")
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, fmt.Errorf("failed to read the kustomization: %w", err)
	}
	var k struct {
		Namespace          string `json:"namespace"`
		ConfigMapGenerator []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("failed to parse the kustomization: %w", err)
	}
	if len(k.ConfigMapGenerator) != 1 {
		return nil, fmt.Errorf("the kustomization has %d configMapGenerator entries, want 1", len(k.ConfigMapGenerator))
	}
	gen := k.ConfigMapGenerator[0]
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: gen.Name}, Data: map[string]string{}}
	for _, f := range gen.Files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("configMapGenerator file %q has no key", f)
		}
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", key, err)
		}
		cm.Data[key] = string(b)
	}
	return cm, nil
}

// timeout is the time Argo CD gives a health check.
const timeout = time.Second

// Check runs script on obj, an object as the API server returns it (unstructured JSON).
func Check(script string, obj map[string]any) (Result, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return Result{}, fmt.Errorf("failed to open the Lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Result{}, fmt.Errorf("the health check failed: %w", err)
	}
	tbl, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return Result{}, fmt.Errorf("the health check returned a %s, want a table", l.Get(-1).Type())
	}
	status, ok := tbl.RawGetString("status").(lua.LString)
	if !ok {
		return Result{}, fmt.Errorf("the health check returned no status string")
	}
	res := Result{Status: Status(status)}
	switch res.Status {
	case Healthy, Progressing, Degraded, Suspended, Missing, Unknown:
	default:
		return Result{}, fmt.Errorf("the health check returned the status %q, which Argo CD does not accept", status)
	}
	switch m := tbl.RawGetString("message").(type) {
	case lua.LString:
		res.Message = string(m)
	case *lua.LNilType:
	default:
		return Result{}, fmt.Errorf("the health check returned a %s message, want a string", m.Type())
	}
	return res, nil
}

// toLua converts a JSON value, as decoded into unstructured objects, into a Lua value.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, x := range v {
			t.Append(toLua(l, x))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, x := range v {
			t.RawSetString(k, toLua(l, x))
		}
		return t
	default:
		panic(fmt.Sprintf("argocdhealth: %T is not a JSON value", v))
	}
}

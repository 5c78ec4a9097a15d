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
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	root     = "../.."
	chartDir = root + "/charts/flagops"
	// kubeVersion is the Kubernetes version helm renders for: that of the test control
	// plane (hack/setup-envtest.sh). A helm built by go install assumes 1.20 otherwise, which
	// the chart's kubeVersion (>= 1.32) refuses.
	kubeVersion = "1.36.3"
)

// tool is the binary that make passes in the environment variable env (make test sets
// HELM and KUSTOMIZE to the pinned tools it installs in ./bin).
func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which installs helm and kustomize into ./bin and sets HELM and KUSTOMIZE", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (make helm kustomize installs them)", env, p, err)
	}
	return p
}

// helm runs helm with its configuration and cache in a temporary directory, and returns
// its standard output and standard error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(tool(t, "HELM"), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("helm %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return stdout.String(), stderr.String(), err
}

// helmTemplate renders the chart as the release flagops in namespace ns, with args (--set
// and the like). A warning of helm's is an error too.
func helmTemplate(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	out, stderr, err := helm(t, append([]string{"template", "flagops", chartDir, "--namespace", ns, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		return "", fmt.Errorf("helm template: %w: %s", err, stderr)
	}
	if stderr != "" {
		return "", fmt.Errorf("helm template warned: %s", stderr)
	}
	return out, nil
}

// decode reads every object of a YAML stream.
func decode(t *testing.T, data string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

func key(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func byKey(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

func kustomizeDefault(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, err := kustomizeBuild(tool(t, "KUSTOMIZE"), filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(out))
}

// TestChartIsCurrent fails when charts/flagops is not what chartgen makes of config/default
// now (run make chart); make verify fails on it too.
func TestChartIsCurrent(t *testing.T) {
	files, err := generateChart(tool(t, "KUSTOMIZE"), filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(chartDir, name))
		if err != nil {
			t.Errorf("%s: %v; run make chart", name, err)
			continue
		}
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("%s is stale; run make chart (-want +got):\n%s", name, diff)
		}
	}
	onDisk, err := generatedFiles(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for name := range onDisk {
		if _, ok := files[name]; !ok {
			t.Errorf("%s is generated from an object config/default no longer has; run make chart", name)
		}
	}
}

// TestChartDefaultsAreConfigDefault renders the chart with its default values in
// flagops-system and compares it with config/default object for object: the same objects,
// equal but for the Namespace (Helm's to make), the label helm.sh/chart, the label
// app.kubernetes.io/managed-by (Helm rather than kustomize) and, on the CRDs and admission
// policies, the annotation helm.sh/resource-policy: keep.
func TestChartDefaultsAreConfigDefault(t *testing.T) {
	out, err := helmTemplate(t, namespace)
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(decode(t, out))
	want := byKey(kustomizeDefault(t))
	delete(want, "Namespace /"+namespace)
	for k, o := range got {
		labels := o.GetLabels()
		if labels["helm.sh/chart"] != "flagops-"+chartVersion {
			t.Errorf("%s: label helm.sh/chart is %q, want flagops-%s", k, labels["helm.sh/chart"], chartVersion)
		}
		delete(labels, "helm.sh/chart")
		if v, ok := labels["app.kubernetes.io/managed-by"]; ok {
			if v != "Helm" {
				t.Errorf("%s: label app.kubernetes.io/managed-by is %q, want Helm", k, v)
			}
			labels["app.kubernetes.io/managed-by"] = "kustomize"
		}
		o.SetLabels(labels)
		if crdKinds[o.GetKind()] {
			ann := o.GetAnnotations()
			if ann["helm.sh/resource-policy"] != "keep" {
				t.Errorf("%s: no annotation helm.sh/resource-policy: keep with crds.keep=true", k)
			}
			delete(ann, "helm.sh/resource-policy")
			if len(ann) == 0 {
				ann = nil
			}
			o.SetAnnotations(ann)
		}
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		switch {
		case g == nil:
			t.Errorf("%s: in config/default, not in the chart", k)
		case w == nil:
			t.Errorf("%s: in the chart, not in config/default", k)
		default:
			if diff := cmp.Diff(w.Object, g.Object); diff != "" {
				t.Errorf("%s differs (-config/default +chart):\n%s", k, diff)
			}
		}
	}
	if len(got) < 30 {
		t.Errorf("the chart renders %d objects; config/default has %d besides its Namespace", len(got), len(want))
	}
}

func TestHelmLint(t *testing.T) {
	for _, args := range [][]string{
		{"--strict"},
		{"--strict", "--set-json", `evaluator.keys.jwks={"keys":[]}`, "--set", "manager.audit.sinks={https://audit.example/in}"},
	} {
		out, stderr, err := helm(t, append([]string{"lint", chartDir, "--namespace", namespace}, args...)...)
		if err != nil {
			t.Errorf("helm lint %v: %v\n%s%s", args, err, out, stderr)
		}
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %v: want 0 chart(s) failed, got:\n%s", args, out)
		}
	}
}

// find returns the object of kind and name in objs, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// container is the first container of the Deployment name.
func container(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	d := find(objs, "Deployment", name)
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no container", name)
	}
	return cs[0].(map[string]any)
}

func args(t *testing.T, objs []*unstructured.Unstructured, name string) []string {
	t.Helper()
	a, _, _ := unstructured.NestedStringSlice(container(t, objs, name), "args")
	return a
}

func podSpec(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	d := find(objs, "Deployment", name)
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	s, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	return s
}

func countKind(objs []*unstructured.Unstructured, kinds ...string) int {
	n := 0
	for _, o := range objs {
		if slices.Contains(kinds, o.GetKind()) {
			n++
		}
	}
	return n
}

const manager, evaluator = "flagops-controller-manager", "flagops-evaluator"

// TestChartValues renders the chart with values other than the defaults, and with values
// that are wrong, which must fail with an error that names the value.
func TestChartValues(t *testing.T) {
	tests := []struct {
		name    string
		ns      string
		args    []string
		wantErr []string // substrings of the error
		check   func(t *testing.T, objs []*unstructured.Unstructured, text string)
	}{{
		name: "another namespace: every namespace and reference is the release's",
		ns:   "feature-flags",
		check: func(t *testing.T, objs []*unstructured.Unstructured, text string) {
			if strings.Contains(text, namespace) {
				t.Errorf("the rendering in namespace feature-flags still names %s", namespace)
			}
			if n := strings.Count(text, "namespace: feature-flags"); n < 20 {
				t.Errorf("want at least 20 objects and references in feature-flags, found %d", n)
			}
			vwc := find(objs, "ValidatingWebhookConfiguration", "flagops-validating-webhook-configuration")
			hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
			for _, h := range hooks {
				if ns, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "service", "namespace"); ns != "feature-flags" {
					t.Errorf("webhook service namespace %q, want feature-flags", ns)
				}
			}
		},
	}, {
		name: "image, pull policy and pull secrets, on both Deployments",
		args: []string{"--set", "image.repository=registry.example:5000/team/flagops", "--set", "image.tag=v1.2.3",
			"--set", "image.pullPolicy=Always", "--set", "imagePullSecrets[0].name=regcred"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			for _, d := range []string{manager, evaluator} {
				c := container(t, objs, d)
				if c["image"] != "registry.example:5000/team/flagops:v1.2.3" || c["imagePullPolicy"] != "Always" {
					t.Errorf("%s: image %v, pull policy %v", d, c["image"], c["imagePullPolicy"])
				}
				if s := podSpec(t, objs, d)["imagePullSecrets"]; fmt.Sprint(s) != "[map[name:regcred]]" {
					t.Errorf("%s: imagePullSecrets %v", d, s)
				}
			}
		},
	}, {
		name: "replicas, resources, scheduling and extra arguments",
		args: []string{"--set", "manager.replicas=3", "--set", "evaluator.replicas=5",
			"--set", "evaluator.resources.limits.memory=2Gi", "--set", "manager.nodeSelector.pool=system",
			"--set", "evaluator.tolerations[0].key=dedicated", "--set", `evaluator.extraArgs[0]=--namespaces=shop\,billing`},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			for d, want := range map[string]string{manager: "3", evaluator: "5"} {
				if r, _, _ := unstructured.NestedFieldNoCopy(find(objs, "Deployment", d).Object, "spec", "replicas"); fmt.Sprint(r) != want {
					t.Errorf("%s: replicas %v, want %s", d, r, want)
				}
			}
			if m, _, _ := unstructured.NestedString(container(t, objs, evaluator), "resources", "limits", "memory"); m != "2Gi" {
				t.Errorf("evaluator memory limit %q, want 2Gi", m)
			}
			if m, _, _ := unstructured.NestedString(container(t, objs, evaluator), "resources", "limits", "cpu"); m != "1" {
				t.Errorf("evaluator cpu limit %q, want the default 1 kept", m)
			}
			if s := podSpec(t, objs, manager)["nodeSelector"]; fmt.Sprint(s) != "map[pool:system]" {
				t.Errorf("manager nodeSelector %v", s)
			}
			if s := podSpec(t, objs, evaluator)["tolerations"]; fmt.Sprint(s) != "[map[key:dedicated]]" {
				t.Errorf("evaluator tolerations %v", s)
			}
			if a := args(t, objs, evaluator); a[len(a)-1] != "--namespaces=shop,billing" {
				t.Errorf("evaluator args %v", a)
			}
		},
	}, {
		name: "leader election off with one replica",
		args: []string{"--set", "manager.leaderElection=false", "--set", "manager.replicas=1"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			if a := args(t, objs, manager); slices.Contains(a, "--leader-elect") {
				t.Errorf("manager args %v have --leader-elect", a)
			}
		},
	}, {
		name:    "leader election off with two replicas",
		args:    []string{"--set", "manager.leaderElection=false"},
		wantErr: []string{"manager.leaderElection: must be true when manager.replicas is more than 1 (it is 2)"},
	}, {
		name: "audit sinks: an HTTP sink spools on a volume, egress for its port",
		args: []string{"--set", "manager.audit.sinks={stdout,http://audit.example:8080/in}", "--set", "manager.audit.stampKeySecret=my-stamp-key",
			"--set", "manager.networkPolicy.extraEgress[0].ports[0].port=8080"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			a := args(t, objs, manager)
			if !slices.Contains(a, "--audit-sink=stdout") || !slices.Contains(a, "--audit-sink=http://audit.example:8080/in") {
				t.Errorf("manager args %v lack the sinks", a)
			}
			spec := podSpec(t, objs, manager)
			if !strings.Contains(fmt.Sprint(spec["volumes"]), "map[emptyDir:map[sizeLimit:160Mi] name:audit-spool]") ||
				!strings.Contains(fmt.Sprint(spec["volumes"]), "secretName:my-stamp-key") {
				t.Errorf("manager volumes %v", spec["volumes"])
			}
			if m := fmt.Sprint(container(t, objs, manager)["volumeMounts"]); !strings.Contains(m, "mountPath:/var/lib/flagops/audit-spool name:audit-spool") {
				t.Errorf("manager volume mounts %v", m)
			}
			egress, _, _ := unstructured.NestedSlice(find(objs, "NetworkPolicy", manager).Object, "spec", "egress")
			if len(egress) != 3 || fmt.Sprint(egress[2]) != "map[ports:[map[port:8080]]]" {
				t.Errorf("manager egress %v", egress)
			}
		},
	}, {
		name: "audit to stdout only: no spool volume",
		args: []string{"--set", "manager.audit.sinks={stdout}"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			if v := fmt.Sprint(podSpec(t, objs, manager)["volumes"]); strings.Contains(v, "audit-spool") {
				t.Errorf("manager volumes %v", v)
			}
		},
	}, {
		name: "inline JWKS, a string: the chart creates the keys Secret",
		args: []string{"--set-json", `evaluator.keys.jwks="{\"keys\":[{\"kty\":\"oct\"}]}"`, "--set", "evaluator.keys.secretName=my-keys"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			s := find(objs, "Secret", "my-keys")
			if s == nil {
				t.Fatal("no Secret my-keys")
			}
			b64, _, _ := unstructured.NestedString(s.Object, "data", "jwks.json")
			if jwks, _ := base64.StdEncoding.DecodeString(b64); string(jwks) != `{"keys":[{"kty":"oct"}]}` {
				t.Errorf("jwks.json is %q", jwks)
			}
			if v := fmt.Sprint(podSpec(t, objs, evaluator)["volumes"]); !strings.Contains(v, "secretName:my-keys") {
				t.Errorf("evaluator volumes %v", v)
			}
		},
	}, {
		name: "inline JWKS, an object",
		args: []string{"--set-json", `evaluator.keys.jwks={"keys":[{"kty":"oct"}]}`},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			s := find(objs, "Secret", "flagops-evaluator-keys")
			if s == nil {
				t.Fatal("no Secret flagops-evaluator-keys")
			}
			b64, _, _ := unstructured.NestedString(s.Object, "data", "jwks.json")
			if jwks, _ := base64.StdEncoding.DecodeString(b64); string(jwks) != `{"keys":[{"kty":"oct"}]}` {
				t.Errorf("jwks.json is %q", jwks)
			}
		},
	}, {
		name:    "inline JWKS that is not a key set",
		args:    []string{"--set-json", `evaluator.keys.jwks={"kty":"oct"}`},
		wantErr: []string{`evaluator.keys.jwks: must be a JSON Web Key Set, a JSON object with a "keys" array`},
	}, {
		name: "CRDs off: no CRD, no admission policy",
		args: []string{"--set", "crds.enabled=false"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			if n := countKind(objs, "CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"); n != 0 {
				t.Errorf("%d CRDs and policies with crds.enabled=false", n)
			}
			if find(objs, "Deployment", manager) == nil {
				t.Error("no manager")
			}
		},
	}, {
		name: "CRDs not kept",
		args: []string{"--set", "crds.keep=false"},
		check: func(t *testing.T, objs []*unstructured.Unstructured, text string) {
			if n := countKind(objs, "CustomResourceDefinition"); n != 4 {
				t.Errorf("%d CRDs, want 4", n)
			}
			if strings.Contains(text, "helm.sh/resource-policy") {
				t.Error("helm.sh/resource-policy with crds.keep=false")
			}
		},
	}, {
		name: "evaluator off",
		args: []string{"--set", "evaluator.enabled=false", "--set-json", `evaluator.keys.jwks={"keys":[]}`},
		check: func(t *testing.T, objs []*unstructured.Unstructured, _ string) {
			for _, o := range objs {
				if o.GetLabels()["app.kubernetes.io/component"] == "evaluator" {
					t.Errorf("%s with evaluator.enabled=false", key(o))
				}
			}
			if find(objs, "Deployment", manager) == nil {
				t.Error("no manager")
			}
		},
	}, {
		name:    "replicas of the wrong type",
		args:    []string{"--set", "manager.replicas=two"},
		wantErr: []string{"/manager/replicas", "want integer"},
	}, {
		name:    "an unknown value",
		args:    []string{"--set", "evaluator.replica=3"},
		wantErr: []string{"/evaluator", "additional properties 'replica' not allowed"},
	}, {
		name:    "an audit sink of an unknown scheme",
		args:    []string{"--set", "manager.audit.sinks={ftp://audit.example}"},
		wantErr: []string{"/manager/audit/sinks/0", "does not match pattern"},
	}, {
		name:    "a pull policy that does not exist",
		args:    []string{"--set", "image.pullPolicy=Sometimes"},
		wantErr: []string{"/image/pullPolicy"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.ns
			if ns == "" {
				ns = namespace
			}
			out, err := helmTemplate(t, ns, tt.args...)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error with %q, got none", tt.wantErr)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error does not contain %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, decode(t, out), out)
		})
	}
}

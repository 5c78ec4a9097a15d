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
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/test/testenv"
)

// manifest decodes the object of kind named name from the YAML files of config/<dir> into
// out.
func manifest(t *testing.T, dir, kind, name string, out any) {
	t.Helper()
	files, err := testenv.YAMLFiles(filepath.Join("..", "..", "config", dir))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.ReadObjects(files...)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("%s %s in config/%s: %v", kind, name, dir, err)
			}
			return
		}
	}
	t.Fatalf("no %s %s in config/%s", kind, name, dir)
}

// flagValue returns the value of --name=value in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container %s", d.Name, name)
	return nil
}

// kustomizeBuild runs `kustomize build dir` with the kustomize that `make test` installs
// (its path in $KUSTOMIZE) and returns the objects.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	bin := os.Getenv("KUSTOMIZE")
	if bin == "" {
		t.Fatal("KUSTOMIZE is not set: run the tests with `make test`, which installs kustomize")
	}
	out, err := exec.Command(bin, "build", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, out)
	}
	f := filepath.Join(t.TempDir(), "built.yaml")
	writeFileAtomic(t, f, string(out))
	objs, err := testenv.ReadObjects(f)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// sidecarApp builds, as a user would, an application's kustomization in a directory
// outside this repository that uses the component config/sidecar: two Deployments, one
// annotated flagops.dev/sidecar: "true". It returns the built objects by kind and name.
func sidecarApp(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	component, err := filepath.Abs(filepath.Join("..", "..", "config", "sidecar"))
	if err != nil {
		t.Fatal(err)
	}
	app := t.TempDir()
	rel, err := filepath.Rel(app, component)
	if err != nil {
		t.Fatal(err)
	}
	deployment := func(name, annotations string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + annotations + `
spec:
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
      - name: app
        image: ` + name + `:1.0.0
`
	}
	writeFileAtomic(t, filepath.Join(app, "deployment.yaml"), deployment("my-app", "\n  annotations:\n    flagops.dev/sidecar: \"true\"")+
		"---\n"+deployment("other-app", ""))
	writeFileAtomic(t, filepath.Join(app, "kustomization.yaml"), "namespace: shop\nresources:\n- deployment.yaml\ncomponents:\n- "+rel+"\n")
	out := map[string]*unstructured.Unstructured{}
	for _, o := range kustomizeBuild(t, app) {
		if o.GetNamespace() != "shop" {
			t.Errorf("%s %s: namespace %q, want the app's, shop", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		out[o.GetKind()+"/"+o.GetName()] = o
	}
	return out
}

func deploymentOf(t *testing.T, objs map[string]*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	o, ok := objs["Deployment/"+name]
	if !ok {
		t.Fatalf("no Deployment %s in the built app", name)
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestSidecarComponent builds an application's kustomization outside this repository with
// the component config/sidecar: the annotated Deployment gets the sidecar as a native
// sidecar that must be ready before the application starts, the other is untouched, and
// the ServiceAccount, Role and RoleBinding land in the app's namespace.
func TestSidecarComponent(t *testing.T) {
	objs := sidecarApp(t)
	for _, k := range []string{"ServiceAccount/flagops-sidecar", "Role/flagops-sidecar", "RoleBinding/flagops-sidecar"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("the built app has no %s", k)
		}
	}
	other := deploymentOf(t, objs, "other-app")
	if len(other.Spec.Template.Spec.InitContainers) != 0 || other.Spec.Template.Spec.ServiceAccountName != "" || len(other.Spec.Template.Spec.Volumes) != 0 {
		t.Errorf("the Deployment without the annotation was changed: %+v", other.Spec.Template.Spec)
	}
	d := deploymentOf(t, objs, "my-app")
	if got := d.Spec.Template.Spec.ServiceAccountName; got != "flagops-sidecar" {
		t.Errorf("serviceAccountName = %q, want flagops-sidecar", got)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 || d.Spec.Template.Spec.Containers[0].Name != "app" {
		t.Errorf("the application's containers changed: %+v", d.Spec.Template.Spec.Containers)
	}
	c := initContainer(t, d, "flagops")
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the sidecar is not a native sidecar (restartPolicy %v)", c.RestartPolicy)
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("the sidecar's startup probe %+v does not wait for /readyz, so the application could start before the flags are loaded", c.StartupProbe)
	}
}

func initContainer(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.InitContainers {
		if c := &d.Spec.Template.Spec.InitContainers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("Deployment %s has no init container %s", d.Name, name)
	return nil
}

// TestSidecarPatch checks the sidecar that config/sidecar adds: its evaluator listens on the
// loopback interface only, and the kubelet probes a separate probe server.
func TestSidecarPatch(t *testing.T) {
	d := deploymentOf(t, sidecarApp(t), "my-app")
	c := initContainer(t, d, "flagops")
	addr, set := flagValue(c.Args, "evaluator-bind-address")
	if !set {
		addr = "127.0.0.1:8080" // the default, pinned by TestBindDefaults
	}
	probes, _ := flagValue(c.Args, "health-probe-bind-address")
	tests := []struct {
		name string
		ok   bool
	}{
		{"runs the sidecar", len(c.Args) > 0 && c.Args[0] == "sidecar"},
		{fmt.Sprintf("the evaluator binds 127.0.0.1 (%s)", addr), strings.HasPrefix(addr, "127.0.0.1:")},
		{"a probe server for the kubelet", probes != "" && probes != "0" && !strings.HasPrefix(probes, "127.")},
		{"probes on the probe server", c.ReadinessProbe != nil && c.LivenessProbe != nil && c.StartupProbe != nil &&
			c.ReadinessProbe.HTTPGet.Port.String() == "flagops-probes" && c.LivenessProbe.HTTPGet.Port.String() == "flagops-probes" &&
			c.StartupProbe.HTTPGet.Port.String() == "flagops-probes"},
		{"no port for the evaluator", !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 8080 })},
		{"authentication on: no --insecure-no-auth", !slices.ContainsFunc(c.Args, func(a string) bool { return strings.Contains(a, "insecure-no-auth") })},
		{"the keys file is in the mounted keys Secret", keysFromSecret(d, c, "flagops-sidecar-keys")},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("config/sidecar: %s: no", tt.name)
		}
	}

	// The shipped arguments start the sidecar once the keys file exists.
	keys, _ := flagValue(c.Args, "context-token-keys-file")
	args := slices.Clone(c.Args[1:])
	for i, a := range args {
		if strings.Contains(a, "context-token-keys-file") {
			jwks := filepath.Join(t.TempDir(), "jwks.json")
			writeFileAtomic(t, jwks, jwksOf(t, newTestKey(t, "k1")))
			args[i] = "--context-token-keys-file=" + jwks
		}
	}
	if keys == "" {
		t.Fatal("config/sidecar: no --context-token-keys-file")
	}
	t.Setenv("POD_NAMESPACE", "shop")
	if o, err := parseSidecarFlags(args, osSidecarEnv, io.Discard, io.Discard); err != nil || o.access.auth == nil {
		t.Errorf("the shipped sidecar arguments (keys at a test path): %v; want a sidecar that requires tokens", err)
	}
}

// keysFromSecret reports whether the container's --context-token-keys-file lies in a
// directory mounted, without subPath (so that rotation reaches it), from the Secret named
// secret, which the pod does not start without.
func keysFromSecret(d *appsv1.Deployment, c *corev1.Container, secret string) bool {
	file, ok := flagValue(c.Args, "context-token-keys-file")
	if !ok {
		return false
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || !strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret &&
				(v.Secret.Optional == nil || !*v.Secret.Optional) {
				return true
			}
		}
	}
	return false
}

// TestManagerManifest checks that the shipped manager serves no evaluator.
func TestManagerManifest(t *testing.T) {
	var d appsv1.Deployment
	manifest(t, "manager", "Deployment", "flagops-controller-manager", &d)
	c := container(t, &d, "manager")
	if addr, _ := flagValue(c.Args, "evaluator-bind-address"); addr != "0" {
		t.Errorf("the manager's --evaluator-bind-address = %q, want 0 (its args: %q)", addr, c.Args)
	}
	for _, p := range c.Ports {
		if p.Name == "http" || p.ContainerPort == 8080 {
			t.Errorf("the manager exposes the evaluator's port %s/%d", p.Name, p.ContainerPort)
		}
	}
	// The manager runs the webhooks, so it needs the audit stamp key, from its Secret.
	keyFile, _ := flagValue(c.Args, "audit-stamp-key-file")
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "flagops-audit-stamp-key" &&
				strings.HasPrefix(keyFile, m.MountPath+"/") && m.ReadOnly {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("--audit-stamp-key-file = %q is not in a read-only mount of the Secret flagops-audit-stamp-key", keyFile)
	}
	var evaluator appsv1.Deployment
	manifest(t, "evaluator", "Deployment", "flagops-evaluator", &evaluator)
	for _, v := range evaluator.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "flagops-audit-stamp-key" {
			t.Error("the evaluator mounts the audit stamp key; only the manager may")
		}
	}
}

// TestEvaluatorManifests checks the Deployment, Service, NetworkPolicy and RBAC of
// config/evaluator, and that config/default deploys them.
func TestEvaluatorManifests(t *testing.T) {
	var (
		d       appsv1.Deployment
		manager appsv1.Deployment
		svc     corev1.Service
		np      networkingv1.NetworkPolicy
		role    rbacv1.ClusterRole
		binding rbacv1.ClusterRoleBinding
		sa      corev1.ServiceAccount
	)
	manifest(t, "evaluator", "Deployment", "flagops-evaluator", &d)
	manifest(t, "manager", "Deployment", "flagops-controller-manager", &manager)
	manifest(t, "evaluator", "Service", "flagops-evaluator", &svc)
	manifest(t, "evaluator", "NetworkPolicy", "flagops-evaluator", &np)
	manifest(t, "evaluator", "ClusterRole", "flagops-evaluator", &role)
	manifest(t, "evaluator", "ClusterRoleBinding", "flagops-evaluator", &binding)
	manifest(t, "evaluator", "ServiceAccount", "flagops-evaluator", &sa)

	pod := &d.Spec.Template.Spec
	c := container(t, &d, "evaluator")
	podLabels := labels.Set(d.Spec.Template.Labels)
	port := func(name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		return 0
	}
	addr, _ := flagValue(c.Args, "evaluator-bind-address")
	_, addrPort, _ := net.SplitHostPort(addr)
	keysFile, _ := flagValue(c.Args, "context-token-keys-file")
	gomemlimit := func() bool {
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
				r := e.ValueFrom.ResourceFieldRef
				return r.Resource == "limits.memory" && (r.Divisor.IsZero() || r.Divisor.Cmp(resource.MustParse("1")) == 0)
			}
		}
		return false
	}
	keysVolume := func() bool {
		for _, v := range pod.Volumes {
			s := v.Secret
			if s == nil || s.SecretName != "flagops-evaluator-keys" {
				continue
			}
			mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == v.Name && m.ReadOnly && filepath.Join(m.MountPath, "jwks.json") == keysFile
			})
			return mounted && (s.Optional == nil || !*s.Optional) &&
				slices.ContainsFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Key == "jwks.json" && k.Path == "jwks.json" })
		}
		return false
	}
	// clientsOnly: every rule admitting the http port admits only pods labelled
	// flagops.dev/evaluator-client=true (of any namespace), and one such rule exists.
	clientsOnly := func() bool {
		found := false
		for _, r := range np.Spec.Ingress {
			http := len(r.Ports) == 0 || slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool {
				return p.Port != nil && (p.Port.String() == "http" || p.Port.IntValue() == int(port("http")))
			})
			if !http {
				continue
			}
			if len(r.From) == 0 {
				return false
			}
			for _, from := range r.From {
				if from.IPBlock != nil || from.PodSelector == nil || from.NamespaceSelector == nil ||
					len(from.NamespaceSelector.MatchLabels)+len(from.NamespaceSelector.MatchExpressions) != 0 ||
					len(from.PodSelector.MatchExpressions) != 0 ||
					!maps.Equal(from.PodSelector.MatchLabels, map[string]string{"flagops.dev/evaluator-client": "true"}) {
					return false
				}
			}
			found = true
		}
		return found
	}
	readOnly := len(role.Rules) == 1 &&
		slices.Equal(role.Rules[0].APIGroups, []string{"flagops.dev"}) &&
		slices.Equal(slices.Sorted(slices.Values(role.Rules[0].Resources)), []string{"deviceflagoverrides", "featureflags", "userflagoverrides"}) &&
		slices.Equal(slices.Sorted(slices.Values(role.Rules[0].Verbs)), []string{"get", "list", "watch"})

	tests := []struct {
		name string
		ok   bool
	}{
		{"2 replicas", d.Spec.Replicas != nil && *d.Spec.Replicas == 2},
		{"runs flagops evaluator", len(c.Args) > 0 && c.Args[0] == "evaluator"},
		{"as the ServiceAccount flagops-evaluator", pod.ServiceAccountName == sa.Name},
		{"non-root", pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot},
		{"seccomp RuntimeDefault", pod.SecurityContext != nil && pod.SecurityContext.SeccompProfile != nil &&
			pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"read-only root file system, no privilege escalation, no capabilities", c.SecurityContext != nil &&
			c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem &&
			c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation &&
			c.SecurityContext.Capabilities != nil && slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"})},
		{"a memory limit", !c.Resources.Limits.Memory().IsZero()},
		{"GOMEMLIMIT from the memory limit", gomemlimit()},
		{"the http port is the evaluator's", port("http") != 0 && addrPort == fmt.Sprint(port("http"))},
		{"probes on the probe port", c.LivenessProbe != nil && c.ReadinessProbe != nil &&
			c.LivenessProbe.HTTPGet.Path == "/healthz" && c.ReadinessProbe.HTTPGet.Path == "/readyz" &&
			c.LivenessProbe.HTTPGet.Port.String() == "probes" && c.ReadinessProbe.HTTPGet.Port.String() == "probes" && port("probes") != 0},
		{"context tokens checked against /etc/flagops/keys/jwks.json", keysFile == "/etc/flagops/keys/jwks.json"},
		{"which the Secret flagops-evaluator-keys provides, not optionally", keysVolume()},
		{"the Service selects the evaluator's pods", labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) && len(svc.Spec.Selector) > 0},
		{"the Service does not select the manager's pods", !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(manager.Spec.Template.Labels))},
		{"the Service's http port", len(svc.Spec.Ports) == 1 && svc.Spec.Ports[0].TargetPort.String() == "http"},
		{"the NetworkPolicy selects the evaluator's pods", labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(podLabels) &&
			len(np.Spec.PodSelector.MatchExpressions) == 0},
		{"the NetworkPolicy isolates ingress", slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)},
		{"the NetworkPolicy admits the http port from evaluator clients only", clientsOnly()},
		{"the ClusterRole only reads flags and overrides", readOnly},
		{"bound to the ServiceAccount", binding.RoleRef.Name == role.Name && binding.RoleRef.Kind == "ClusterRole" &&
			len(binding.Subjects) == 1 && binding.Subjects[0].Kind == "ServiceAccount" &&
			binding.Subjects[0].Name == sa.Name && binding.Subjects[0].Namespace == sa.Namespace},
		{"in the namespace of the manager", d.Namespace == manager.Namespace && svc.Namespace == d.Namespace && np.Namespace == d.Namespace},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("config/evaluator: %s: no", tt.name)
		}
	}

	// Every file is in the kustomization, and config/default includes it.
	kustomization := func(dir string) []string {
		b, err := os.ReadFile(filepath.Join("..", "..", "config", dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Fatal(err)
		}
		return k.Resources
	}
	files, err := testenv.YAMLFiles(filepath.Join("..", "..", "config", "evaluator"))
	if err != nil {
		t.Fatal(err)
	}
	listed := kustomization("evaluator")
	for _, f := range files {
		if !slices.Contains(listed, filepath.Base(f)) {
			t.Errorf("config/evaluator/kustomization.yaml does not list %s", filepath.Base(f))
		}
	}
	if !slices.Contains(kustomization("default"), "../evaluator") {
		t.Error("config/default does not include ../evaluator")
	}

	// The shipped arguments start an evaluator that requires tokens, once the keys file
	// exists (here at a test path).
	args := slices.Clone(c.Args[1:])
	for i, a := range args {
		if strings.Contains(a, "context-token-keys-file") {
			jwks := filepath.Join(t.TempDir(), "jwks.json")
			writeFileAtomic(t, jwks, jwksOf(t, newTestKey(t, "k1")))
			args[i] = "--context-token-keys-file=" + jwks
		}
	}
	if o, err := parseEvaluatorFlags(args, io.Discard, io.Discard); err != nil || o.access.auth == nil {
		t.Errorf("the shipped evaluator arguments %q: %v; want an evaluator that requires tokens", args, err)
	}
}

// TestConsoleManifests checks config/console: the console's Deployment serves HTTPS with the
// certificate and session key of its Secrets and impersonates; its ClusterRole holds
// constrained impersonation for flagops objects and the three request extras only (no legacy
// impersonate verb, no wildcard); config/default does not include it.
func TestConsoleManifests(t *testing.T) {
	var (
		d       appsv1.Deployment
		np      networkingv1.NetworkPolicy
		role    rbacv1.ClusterRole
		binding rbacv1.ClusterRoleBinding
		sa      corev1.ServiceAccount
		svc     corev1.Service
	)
	manifest(t, "console", "Deployment", "flagops-console", &d)
	manifest(t, "console", "NetworkPolicy", "flagops-console", &np)
	manifest(t, "console", "ClusterRole", "flagops-console", &role)
	manifest(t, "console", "ClusterRoleBinding", "flagops-console", &binding)
	manifest(t, "console", "ServiceAccount", "flagops-console", &sa)
	manifest(t, "console", "Service", "flagops-console", &svc)
	c := container(t, &d, "console")
	pod := &d.Spec.Template.Spec

	// The shipped arguments parse, with the Secrets' files at test paths.
	args := slices.Clone(c.Args[1:])
	dir := t.TempDir()
	mounted := map[string]string{}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && m.ReadOnly {
				mounted[m.MountPath] = v.Secret.SecretName
			}
		}
	}
	for i, a := range args {
		name, file, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasSuffix(name, "-file") {
			continue
		}
		if mounted[filepath.Dir(file)] == "" {
			t.Errorf("--%s=%s is not in a mounted Secret", name, file)
		}
		if name == "session-key-file" {
			writeFileAtomic(t, filepath.Join(dir, "key"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
			args[i] = "--session-key-file=" + filepath.Join(dir, "key")
		}
	}
	o, err := parseConsoleFlags(args, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("the shipped console arguments %q: %v", args, err)
	}

	extras := []string{"userextras/" + audit.ExtraRoute, "userextras/" + audit.ExtraSourceIP, "userextras/" + audit.ExtraUserAgent}
	constrained := func() bool {
		for _, r := range role.Rules {
			for _, v := range r.Verbs {
				switch {
				case v == "*" || v == "impersonate" || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") || len(r.ResourceNames) > 0:
					return false
				case strings.HasPrefix(v, "impersonate-on:"):
					// flagops objects, and the list of Events that the flag page's history reads.
					events := slices.Equal(r.APIGroups, []string{""}) && slices.Equal(r.Resources, []string{"events"}) && strings.HasSuffix(v, ":list")
					if !slices.Equal(r.APIGroups, []string{"flagops.dev"}) && !events {
						return false
					}
				case strings.HasPrefix(v, "impersonate:"):
					for _, res := range r.Resources {
						if strings.HasPrefix(res, "userextras") && !slices.Contains(extras, res) {
							return false
						}
					}
				}
			}
		}
		return true
	}
	grants := func(group, resource, verb string) bool {
		return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
		})
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"runs flagops console", len(c.Args) > 0 && c.Args[0] == "console"},
		{"over HTTPS, impersonating, for the console's audience", !o.insecureHTTP && o.identity == "impersonate" && o.tokenAudience == defaultConsoleAudience},
		{"with the Secrets flagops-console-tls and flagops-console-session", slices.Contains(slices.Collect(maps.Values(mounted)), "flagops-console-tls") &&
			slices.Contains(slices.Collect(maps.Values(mounted)), "flagops-console-session")},
		{"as the ServiceAccount flagops-console", pod.ServiceAccountName == sa.Name},
		{"probes over HTTPS", c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Scheme == corev1.URISchemeHTTPS && c.LivenessProbe.HTTPGet.Scheme == corev1.URISchemeHTTPS},
		{"read-only root file system, no privilege escalation", c.SecurityContext != nil && *c.SecurityContext.ReadOnlyRootFilesystem && !*c.SecurityContext.AllowPrivilegeEscalation},
		{"reviews tokens and access", grants("authentication.k8s.io", "tokenreviews", "create") && grants("authorization.k8s.io", "subjectaccessreviews", "create")},
		{"impersonates users with their groups and the request extras", grants("authentication.k8s.io", "users", "impersonate:user-info") &&
			grants("authentication.k8s.io", "groups", "impersonate:user-info") && !slices.ContainsFunc(extras, func(e string) bool { return !grants("authentication.k8s.io", e, "impersonate:user-info") })},
		{"and writes flagops objects as them", grants("flagops.dev", "userflagoverrides", "impersonate-on:user-info:create") &&
			grants("flagops.dev", "featureflags", "impersonate-on:user-info:patch") && grants("flagops.dev", "deviceflagoverrides", "impersonate-on:serviceaccount:delete")},
		{"and lists Events as them", grants("", "events", "impersonate-on:user-info:list") && grants("", "events", "impersonate-on:serviceaccount:list")},
		{"constrained impersonation only, for flagops objects and listing Events only", constrained()},
		{"bound to the ServiceAccount", binding.RoleRef.Name == role.Name && len(binding.Subjects) == 1 &&
			binding.Subjects[0].Name == sa.Name && binding.Subjects[0].Namespace == sa.Namespace},
		{"the NetworkPolicy admits the https port only", len(np.Spec.Ingress) == 1 && len(np.Spec.Ingress[0].Ports) == 1 &&
			np.Spec.Ingress[0].Ports[0].Port.String() == "https"},
		{"the Service's https port", len(svc.Spec.Ports) == 1 && svc.Spec.Ports[0].TargetPort.String() == "https"},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("config/console: %s: no", tt.name)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "default", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "../console") {
		t.Error("config/default includes the console: it is off by default")
	}
}

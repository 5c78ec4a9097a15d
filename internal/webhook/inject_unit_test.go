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

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestWantsSidecar(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		byNamespace bool
		want        bool
		err         string
	}{
		{name: "pod webhook, no annotation", want: false},
		{name: "namespace webhook, no annotation", byNamespace: true, want: true},
		{name: "annotated true", annotations: map[string]string{AnnotationInject: "true"}, want: true},
		{name: "annotated true, namespace webhook", annotations: map[string]string{AnnotationInject: "true"}, byNamespace: true, want: true},
		{name: "declined in a namespace that opted in", annotations: map[string]string{AnnotationInject: "false"}, byNamespace: true, want: false},
		{name: "typo", annotations: map[string]string{AnnotationInject: "yes"}, byNamespace: true,
			err: `metadata.annotations[flagops.dev/inject]: "yes" is not "true" or "false"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wantsSidecar(tt.annotations, tt.byNamespace)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("wantsSidecar = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseSidecarAnnotations(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        sidecarConfig
		errs        []string
	}{
		{name: "defaults", want: sidecarConfig{keysSecret: DefaultSidecarKeysSecret, port: 8080, probePort: 8081}},
		{name: "no auth", annotations: map[string]string{AnnotationSidecarAuth: "none"},
			want: sidecarConfig{noAuth: true, keysSecret: DefaultSidecarKeysSecret, port: 8080, probePort: 8081}},
		{name: "tokens, another Secret, other ports",
			annotations: map[string]string{AnnotationSidecarAuth: "tokens", AnnotationSidecarKeysSecret: "issuer-keys",
				AnnotationSidecarPort: "18080", AnnotationSidecarProbePort: "18081"},
			want: sidecarConfig{keysSecret: "issuer-keys", port: 18080, probePort: 18081}},
		{name: "unknown auth", annotations: map[string]string{AnnotationSidecarAuth: "jwt"},
			errs: []string{`metadata.annotations[flagops.dev/sidecar-auth]: "jwt" is not "tokens" or "none"`}},
		{name: "keys without auth", annotations: map[string]string{AnnotationSidecarAuth: "none", AnnotationSidecarKeysSecret: "k"},
			errs: []string{"metadata.annotations[flagops.dev/sidecar-keys-secret]: there are no keys to read"}},
		{name: "empty Secret name", annotations: map[string]string{AnnotationSidecarKeysSecret: ""},
			errs: []string{`metadata.annotations[flagops.dev/sidecar-keys-secret]: "" is not a Secret name`}},
		{name: "bad ports, both named",
			annotations: map[string]string{AnnotationSidecarPort: "http", AnnotationSidecarProbePort: "70000"},
			errs: []string{`metadata.annotations[flagops.dev/sidecar-port]: "http" is not a port number`,
				`metadata.annotations[flagops.dev/sidecar-probe-port]: "70000" is not a port number`}},
		{name: "zero port", annotations: map[string]string{AnnotationSidecarPort: "0"},
			errs: []string{`metadata.annotations[flagops.dev/sidecar-port]: "0" is not a port number`}},
		{name: "one port for both", annotations: map[string]string{AnnotationSidecarPort: "8081"},
			errs: []string{"metadata.annotations[flagops.dev/sidecar-port]: port 8081 is the sidecar's probe port too"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSidecarAnnotations(tt.annotations)
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.errs)
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q does not contain %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func appPod() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate", Image: "app"}},
		Containers:     []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{ContainerPort: 9000}}}},
		Volumes:        []corev1.Volume{{Name: "kube-api-access-x"}},
	}}
}

func TestInjectSidecar(t *testing.T) {
	cfg := sidecarConfig{keysSecret: "keys", port: 8080, probePort: 8081, image: "registry.example/flagops:v1", pullPolicy: corev1.PullIfNotPresent}
	pod := appPod()
	if err := injectSidecar(pod, cfg); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.InitContainers) != 2 || pod.Spec.InitContainers[0].Name != SidecarContainerName || pod.Spec.InitContainers[1].Name != "migrate" {
		t.Fatalf("init containers: want the sidecar first, then the pod's own: %+v", pod.Spec.InitContainers)
	}
	c := pod.Spec.InitContainers[0]
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("restartPolicy = %v, want Always (a native sidecar)", c.RestartPolicy)
	}
	if c.Image != cfg.image || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image = %s (%s)", c.Image, c.ImagePullPolicy)
	}
	wantArgs := []string{"sidecar", "--evaluator-bind-address=127.0.0.1:8080", "--health-probe-bind-address=:8081",
		"--context-token-keys-file=/etc/flagops/keys/jwks.json"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q, want %q", c.Args, wantArgs)
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet.Path != "/readyz" || c.StartupProbe.HTTPGet.Port.StrVal != "flagops-probes" {
		t.Errorf("startup probe = %+v", c.StartupProbe)
	}
	if c.Ports[0].ContainerPort != 8081 {
		t.Errorf("probe port = %d", c.Ports[0].ContainerPort)
	}
	lim := c.Resources.Limits
	if lim.Cpu().Cmp(resource.MustParse("500m")) != 0 || lim.Memory().Cmp(resource.MustParse("256Mi")) != 0 || lim.StorageEphemeral().IsZero() {
		t.Errorf("limits = %v", lim)
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context = %+v", sc)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "GOMEMLIMIT" && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
	}) {
		t.Errorf("no GOMEMLIMIT from the memory limit: %+v", c.Env)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
		if !m.ReadOnly || m.SubPath != "" {
			t.Errorf("mount %+v: want read-only, without subPath", m)
		}
	}
	if mounts[sidecarTokenVolume] != serviceAccountDir || mounts[sidecarKeysVolume] != "/etc/flagops/keys" {
		t.Errorf("mounts = %v", mounts)
	}
	var names []string
	for _, v := range pod.Spec.Volumes {
		names = append(names, v.Name)
		if v.Name == sidecarKeysVolume && v.Secret.SecretName != "keys" {
			t.Errorf("keys volume from Secret %q, want keys", v.Secret.SecretName)
		}
		if v.Name == sidecarTokenVolume && v.Projected.Sources[0].ServiceAccountToken == nil {
			t.Errorf("token volume %+v has no service account token", v)
		}
	}
	if !slices.Equal(names, []string{"kube-api-access-x", sidecarTokenVolume, sidecarKeysVolume}) {
		t.Errorf("volumes = %q", names)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("the application's container changed: %+v", pod.Spec.Containers)
	}
}

func TestInjectSidecarNoAuth(t *testing.T) {
	pod := appPod()
	if err := injectSidecar(pod, sidecarConfig{noAuth: true, port: 7000, probePort: 7001, image: "i"}); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.InitContainers[0]
	if !slices.Contains(c.Args, "--insecure-no-auth") || !slices.Contains(c.Args, "--evaluator-bind-address=127.0.0.1:7000") {
		t.Errorf("args = %q", c.Args)
	}
	if slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == sidecarKeysVolume }) {
		t.Error("a keys volume without token authentication")
	}
}

func TestInjectSidecarRefuses(t *testing.T) {
	cfg := sidecarConfig{keysSecret: "k", port: 8080, probePort: 8081, image: "i"}
	tests := []struct {
		name   string
		change func(*corev1.Pod)
		err    string
	}{
		{name: "host network", change: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, err: "spec.hostNetwork"},
		{name: "port taken by the app", change: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 },
			err: `container "app" declares port 8080, which the flagops sidecar uses; set flagops.dev/sidecar-port or flagops.dev/sidecar-probe-port`},
		{name: "probe port taken by an init container", change: func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8081}}
		}, err: `container "migrate" declares port 8081`},
		{name: "volume name taken", change: func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: sidecarKeysVolume}) },
			err: `spec.volumes: the pod already has a volume "flagops-sidecar-keys"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod()
			tt.change(pod)
			before := pod.DeepCopy()
			err := injectSidecar(pod, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			if len(pod.Spec.InitContainers) != len(before.Spec.InitContainers) {
				t.Error("the pod was changed although it was refused")
			}
		})
	}
}

func TestImageSource(t *testing.T) {
	self := types.NamespacedName{Namespace: "flagops-system", Name: "manager-0"}
	managerPod := &corev1.Pod{}
	managerPod.Namespace, managerPod.Name = self.Namespace, self.Name
	managerPod.Spec.Containers = []corev1.Container{{Name: "kube-rbac-proxy", Image: "proxy"},
		{Name: "manager", Image: "localhost/flagops:dev", ImagePullPolicy: corev1.PullNever}}
	reader := fake.NewClientBuilder().WithObjects(managerPod).Build()
	ctx := context.Background()

	t.Run("the manager's own", func(t *testing.T) {
		s := newImageSource(InjectOptions{Self: self, ManagerContainer: "manager"})
		image, pull, err := s.get(ctx, reader)
		if err != nil || image != "localhost/flagops:dev" || pull != corev1.PullNever {
			t.Fatalf("get = %q, %q, %v", image, pull, err)
		}
		// Read once: a second call does not need the API server.
		image, _, err = s.get(ctx, failingReader{})
		if err != nil || image != "localhost/flagops:dev" {
			t.Fatalf("second get = %q, %v", image, err)
		}
	})
	t.Run("configured", func(t *testing.T) {
		s := newImageSource(InjectOptions{Image: "registry.example/flagops:v1"})
		if image, _, err := s.get(ctx, failingReader{}); err != nil || image != "registry.example/flagops:v1" {
			t.Fatalf("get = %q, %v", image, err)
		}
	})
	for _, tt := range []struct {
		name string
		opts InjectOptions
		err  string
	}{
		{name: "no pod", opts: InjectOptions{ManagerContainer: "manager"}, err: "set --sidecar-image, or POD_NAME and POD_NAMESPACE"},
		{name: "pod not found", opts: InjectOptions{Self: types.NamespacedName{Namespace: "x", Name: "y"}, ManagerContainer: "manager"},
			err: "failed to read the manager's pod x/y"},
		{name: "no such container", opts: InjectOptions{Self: self, ManagerContainer: "controller"},
			err: `has no container "controller"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newImageSource(tt.opts).get(ctx, reader)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
		})
	}
}

// failingReader fails every read.
type failingReader struct{ client.Reader }

func (failingReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("no reads expected")
}

func TestSidecarInjectorHandle(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	podRaw := func(annotations map[string]string) []byte {
		p := appPod()
		p.Annotations = annotations
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	request := func(kind string, op admissionv1.Operation, raw []byte) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, Operation: op, Namespace: "shop",
			Object: runtime.RawExtension{Raw: raw}, DryRun: ptrTo(true),
		}}
	}
	injector := func(image InjectOptions) *sidecarInjector {
		c := fake.NewClientBuilder().WithScheme(scheme).Build()
		return &sidecarInjector{decoder: admission.NewDecoder(scheme), client: c, reader: c, image: newImageSource(image)}
	}
	tests := []struct {
		name    string
		h       *sidecarInjector
		req     admission.Request
		allowed bool
		code    int32
		patched bool
		msg     string
	}{
		{name: "not a pod", h: injector(InjectOptions{Image: "i"}), req: request("Secret", admissionv1.Create, []byte(`{}`)),
			allowed: true, msg: "not a pod creation"},
		{name: "an update", h: injector(InjectOptions{Image: "i"}), req: request("Pod", admissionv1.Update, podRaw(nil)),
			allowed: true, msg: "not a pod creation"},
		{name: "undecodable", h: injector(InjectOptions{Image: "i"}), req: request("Pod", admissionv1.Create, []byte(`{"spec":7}`)),
			code: http.StatusBadRequest, msg: "failed to decode the pod"},
		{name: "not asked", h: injector(InjectOptions{Image: "i"}), req: request("Pod", admissionv1.Create, podRaw(nil)),
			allowed: true, msg: "does not ask"},
		{name: "no image", h: injector(InjectOptions{ManagerContainer: "manager"}),
			req:  request("Pod", admissionv1.Create, podRaw(map[string]string{AnnotationInject: "true"})),
			code: http.StatusInternalServerError, msg: "set --sidecar-image"},
		{name: "dry run", h: injector(InjectOptions{Image: "i"}),
			req:     request("Pod", admissionv1.Create, podRaw(map[string]string{AnnotationInject: "true"})),
			allowed: true, patched: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.h.Handle(context.Background(), tt.req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v: %+v", resp.Allowed, resp.Result)
			}
			if tt.code != 0 && resp.Result.Code != tt.code {
				t.Errorf("code = %d, want %d", resp.Result.Code, tt.code)
			}
			if tt.msg != "" && !strings.Contains(resp.Result.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tt.msg)
			}
			if (len(resp.Patches) > 0) != tt.patched {
				t.Errorf("patches = %v, want patched %v", resp.Patches, tt.patched)
			}
		})
	}
}

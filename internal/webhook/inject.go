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
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Sidecar injection: a mutating webhook on pod creation adds `flagops sidecar` to pods that
// ask for it, as a native sidecar. Two webhook entries call it, and only for the pods that
// opted in, so that it can fail closed for them without ever blocking another pod
// (config/default/webhook_inject_patch.yaml):
//   - minjectpod: pods annotated flagops.dev/inject: "true", in any namespace but one
//     labelled flagops.dev/inject=enabled (a match condition selects them);
//   - minjectnamespace: every pod of a namespace labelled flagops.dev/inject=enabled, but
//     those annotated flagops.dev/inject: "false".
//
// The sidecar reads the three kinds of its namespace as the pod's service account. The
// webhook grants that, before it admits the pod, with one RoleBinding per namespace that it
// owns (SidecarRoleBindingName, binding the ClusterRole SidecarClusterRoleName to the
// service accounts of injected pods): no object that something else manages is edited.
//
// +kubebuilder:webhook:path=/mutate-v1-pod-flagops-sidecar,mutating=true,failurePolicy=fail,sideEffects=NoneOnDryRun,groups="",resources=pods,verbs=create,versions=v1,name=minjectpod.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,reinvocationPolicy=Never,serviceName=flagops-webhook-service,serviceNamespace=flagops-system
// +kubebuilder:webhook:path=/mutate-v1-pod-flagops-sidecar-namespace,mutating=true,failurePolicy=fail,sideEffects=NoneOnDryRun,groups="",resources=pods,verbs=create,versions=v1,name=minjectnamespace.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,reinvocationPolicy=Never,serviceName=flagops-webhook-service,serviceNamespace=flagops-system
//
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;create;update

const (
	// PathInjectPod injects the sidecar into a pod annotated flagops.dev/inject: "true".
	PathInjectPod = "/mutate-v1-pod-flagops-sidecar"
	// PathInjectNamespace injects the sidecar into a pod of a namespace labelled
	// flagops.dev/inject=enabled.
	PathInjectNamespace = "/mutate-v1-pod-flagops-sidecar-namespace"

	// AnnotationInject on a pod: "true" asks for the sidecar, "false" declines it in a
	// namespace that opted in.
	AnnotationInject = "flagops.dev/inject"
	// LabelInject on a namespace, with the value LabelInjectEnabled, injects the sidecar
	// into every pod created there.
	LabelInject = "flagops.dev/inject"
	// LabelInjectEnabled is the value of LabelInject that opts a namespace in.
	LabelInjectEnabled = "enabled"
	// AnnotationSidecarAuth is "tokens" (the default: context tokens verified with the keys
	// of a Secret) or "none" (--insecure-no-auth; the sidecar binds to localhost only).
	AnnotationSidecarAuth = "flagops.dev/sidecar-auth"
	// AnnotationSidecarKeysSecret names the Secret with the public keys (key jwks.json) of
	// the context tokens; the default is DefaultSidecarKeysSecret.
	AnnotationSidecarKeysSecret = "flagops.dev/sidecar-keys-secret"
	// AnnotationSidecarPort is the port the sidecar serves on 127.0.0.1; the default is
	// DefaultSidecarPort.
	AnnotationSidecarPort = "flagops.dev/sidecar-port"
	// AnnotationSidecarProbePort is the port of the sidecar's /healthz and /readyz, for the
	// kubelet; the default is DefaultSidecarProbePort.
	AnnotationSidecarProbePort = "flagops.dev/sidecar-probe-port"

	// SidecarContainerName is the name of the injected init container.
	SidecarContainerName = "flagops"
	// SidecarRoleBindingName is the RoleBinding the webhook writes in each namespace where
	// it injects the sidecar.
	SidecarRoleBindingName = "flagops-sidecar-injected"
	// SidecarClusterRoleName is the ClusterRole that RoleBinding refers to: read access to
	// the three kinds (config/rbac/sidecar_role.yaml).
	SidecarClusterRoleName = "flagops-sidecar"
	// DefaultSidecarKeysSecret is the Secret of the context-token keys by default.
	DefaultSidecarKeysSecret = "flagops-sidecar-keys"
	// DefaultSidecarPort is the sidecar's port on 127.0.0.1 by default.
	DefaultSidecarPort = 8080
	// DefaultSidecarProbePort is the sidecar's probe port by default.
	DefaultSidecarProbePort = 8081

	sidecarTokenVolume = "flagops-sidecar-token"
	sidecarKeysVolume  = "flagops-sidecar-keys"
	sidecarKeysDir     = "/etc/flagops/keys"
	sidecarProbePort   = "flagops-probes"
	// The path at which client-go's in-cluster configuration looks for the token.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// The user and group of the image (65532, distroless's nonroot).
	sidecarUID = 65532
)

// InjectOptions configure sidecar injection.
type InjectOptions struct {
	// Image of the sidecar. Empty means the image of the manager's own container
	// (ManagerContainer of the pod Self), read once, at the first injection.
	Image string
	// PullPolicy of the sidecar's image when Image is set; empty leaves the default.
	PullPolicy corev1.PullPolicy
	// Self is the manager's own pod, to read its image from.
	Self types.NamespacedName
	// ManagerContainer is the name of the manager's container in Self.
	ManagerContainer string
	// Resources of the sidecar container; zero means SidecarResources.
	Resources corev1.ResourceRequirements
}

// SidecarResources are the sidecar's default requests and limits. The memory limit also
// sets GOMEMLIMIT, from which the sidecar sizes its stream budget.
func SidecarResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse("50m"),
			corev1.ResourceMemory:           resource.MustParse("64Mi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("16Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse("500m"),
			corev1.ResourceMemory:           resource.MustParse("256Mi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("64Mi"),
		},
	}
}

// sidecarInjector is the handler of both injection webhooks; byNamespace tells them apart.
type sidecarInjector struct {
	decoder     admission.Decoder
	byNamespace bool
	client      client.Client
	// reader reads from the API server: the RoleBindings and the manager's pod are not in
	// the manager's cache.
	reader client.Reader
	image  *imageSource
	// resources of the sidecar container; zero means SidecarResources.
	resources corev1.ResourceRequirements
}

// Handle implements admission.Handler.
func (h *sidecarInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return admission.Allowed("not a pod creation")
	}
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("failed to decode the pod: %w", err))
	}
	want, err := wantsSidecar(pod.Annotations, h.byNamespace)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if !want {
		return admission.Allowed("the pod does not ask for the flagops sidecar")
	}
	if hasSidecar(pod) {
		return admission.Allowed("the pod already has the flagops sidecar")
	}
	cfg, err := parseSidecarAnnotations(pod.Annotations)
	if err != nil {
		return admission.Denied(err.Error())
	}
	image, pull, err := h.image.get(ctx, h.reader)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	cfg.image, cfg.pullPolicy, cfg.resources = image, pull, h.resources
	mutated := pod.DeepCopy()
	if err := injectSidecar(mutated, cfg); err != nil {
		return admission.Denied(err.Error())
	}
	// The pod's namespace is in the request; a pod created from a template may have none.
	ns := req.Namespace
	if !isDryRun(req) {
		if err := ensureReadAccess(ctx, h.client, h.reader, ns, serviceAccountOf(pod)); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	raw, err := json.Marshal(mutated)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("failed to encode the pod: %w", err))
	}
	logf.FromContext(ctx).V(1).Info("Injecting the flagops sidecar", "namespace", ns, "pod", podName(pod), "serviceAccount", serviceAccountOf(pod))
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

func isDryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

// podName names a pod in logs: its name, or its generateName prefix before the API server
// completes it.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}

// serviceAccountOf returns the pod's service account. The ServiceAccount admission plugin,
// which runs before webhooks, sets "default" when the pod names none.
func serviceAccountOf(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName == "" {
		return "default"
	}
	return pod.Spec.ServiceAccountName
}

// wantsSidecar says whether a pod gets the sidecar, from its flagops.dev/inject annotation:
// through the pod webhook only when it is "true"; through the namespace webhook unless it is
// "false". Any other value is an error, so that a typo is not taken for a choice.
func wantsSidecar(annotations map[string]string, byNamespace bool) (bool, error) {
	v, ok := annotations[AnnotationInject]
	switch {
	case !ok:
		return byNamespace, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, fmt.Errorf("metadata.annotations[%s]: %q is not \"true\" or \"false\"", AnnotationInject, v)
	}
}

// hasSidecar reports whether the pod already has a container named like the sidecar.
func hasSidecar(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == SidecarContainerName })
}

// sidecarConfig is what a pod's annotations and the webhook's options make of the sidecar.
type sidecarConfig struct {
	noAuth     bool
	keysSecret string
	port       int32
	probePort  int32
	image      string
	pullPolicy corev1.PullPolicy
	resources  corev1.ResourceRequirements
}

// parseSidecarAnnotations reads the sidecar's settings from the pod's annotations, naming
// the annotation in every error.
func parseSidecarAnnotations(annotations map[string]string) (sidecarConfig, error) {
	cfg := sidecarConfig{keysSecret: DefaultSidecarKeysSecret, port: DefaultSidecarPort, probePort: DefaultSidecarProbePort}
	var errs []error
	switch v, ok := annotations[AnnotationSidecarAuth]; {
	case !ok || v == "tokens":
	case v == "none":
		cfg.noAuth = true
	default:
		errs = append(errs, fmt.Errorf("metadata.annotations[%s]: %q is not \"tokens\" or \"none\"", AnnotationSidecarAuth, v))
	}
	if v, ok := annotations[AnnotationSidecarKeysSecret]; ok {
		if cfg.noAuth {
			errs = append(errs, fmt.Errorf("metadata.annotations[%s]: there are no keys to read with %s: \"none\"", AnnotationSidecarKeysSecret, AnnotationSidecarAuth))
		} else if v == "" || len(v) > 253 {
			errs = append(errs, fmt.Errorf("metadata.annotations[%s]: %q is not a Secret name", AnnotationSidecarKeysSecret, v))
		}
		cfg.keysSecret = v
	}
	port := func(key string, into *int32) {
		v, ok := annotations[key]
		if !ok {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("metadata.annotations[%s]: %q is not a port number (1 to 65535)", key, v))
			return
		}
		*into = int32(n)
	}
	port(AnnotationSidecarPort, &cfg.port)
	port(AnnotationSidecarProbePort, &cfg.probePort)
	if len(errs) == 0 && cfg.port == cfg.probePort {
		errs = append(errs, fmt.Errorf("metadata.annotations[%s]: port %d is the sidecar's probe port too; set %s to another",
			AnnotationSidecarPort, cfg.port, AnnotationSidecarProbePort))
	}
	return cfg, errors.Join(errs...)
}

// injectSidecar adds the sidecar to pod: a native sidecar (an init container with
// restartPolicy Always) first among the init containers, so that the kubelet starts the
// others and the application's containers only once its startup probe passes, that is once
// it has loaded the namespace's flags. It refuses pods it cannot serve correctly: a pod on
// the host's network (127.0.0.1 would be the node's), or one whose containers already use
// the sidecar's ports or volume names.
func injectSidecar(pod *corev1.Pod, cfg sidecarConfig) error {
	if pod.Spec.HostNetwork {
		return errors.New("spec.hostNetwork: the flagops sidecar serves on 127.0.0.1, which is the node's with the host's network; " +
			"annotate the pod " + AnnotationInject + `: "false"`)
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, p := range c.Ports {
				if p.ContainerPort == cfg.port || p.ContainerPort == cfg.probePort {
					return fmt.Errorf("container %q declares port %d, which the flagops sidecar uses; set %s or %s to a free port",
						c.Name, p.ContainerPort, AnnotationSidecarPort, AnnotationSidecarProbePort)
				}
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == sidecarTokenVolume || v.Name == sidecarKeysVolume {
			return fmt.Errorf("spec.volumes: the pod already has a volume %q, a name the flagops sidecar uses", v.Name)
		}
	}

	resources := cfg.resources
	if resources.Requests == nil && resources.Limits == nil {
		resources = SidecarResources()
	}
	args := []string{
		"sidecar",
		fmt.Sprintf("--evaluator-bind-address=127.0.0.1:%d", cfg.port),
		fmt.Sprintf("--health-probe-bind-address=:%d", cfg.probePort),
	}
	mounts := []corev1.VolumeMount{{Name: sidecarTokenVolume, MountPath: serviceAccountDir, ReadOnly: true}}
	if cfg.noAuth {
		args = append(args, "--insecure-no-auth")
	} else {
		args = append(args, "--context-token-keys-file="+sidecarKeysDir+"/jwks.json")
		mounts = append(mounts, corev1.VolumeMount{Name: sidecarKeysVolume, MountPath: sidecarKeysDir, ReadOnly: true})
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(sidecarProbePort)}}}
	}
	startup, readiness, liveness := probe("/readyz"), probe("/readyz"), probe("/healthz")
	// The application's containers start once the startup probe passes: at most 5 minutes
	// for the initial sync.
	startup.PeriodSeconds, startup.FailureThreshold = 1, 300
	readiness.PeriodSeconds = 5
	liveness.PeriodSeconds = 20
	always := corev1.ContainerRestartPolicyAlways
	sidecar := corev1.Container{
		Name:            SidecarContainerName,
		Image:           cfg.image,
		ImagePullPolicy: cfg.pullPolicy,
		RestartPolicy:   &always,
		Args:            args,
		Env: []corev1.EnvVar{
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
		},
		Ports:          []corev1.ContainerPort{{Name: sidecarProbePort, ContainerPort: cfg.probePort, Protocol: corev1.ProtocolTCP}},
		StartupProbe:   startup,
		ReadinessProbe: readiness,
		LivenessProbe:  liveness,
		Resources:      resources,
		VolumeMounts:   mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptrTo(true),
			RunAsUser:                ptrTo(int64(sidecarUID)),
			RunAsGroup:               ptrTo(int64(sidecarUID)),
			AllowPrivilegeEscalation: ptrTo(false),
			ReadOnlyRootFilesystem:   ptrTo(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	pod.Spec.InitContainers = append([]corev1.Container{sidecar}, pod.Spec.InitContainers...)

	// The sidecar's own token, mounted into the sidecar only: the ServiceAccount admission
	// plugin ran before this webhook and mounted its token into the containers that existed
	// then (or none, with automountServiceAccountToken: false).
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: sidecarTokenVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptrTo(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}},
	}})
	if !cfg.noAuth {
		// Without subPath, so that a key rotation (an edit of the Secret) reaches the sidecar,
		// which re-reads the file every 2 s. The pod does not start without the Secret.
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: sidecarKeysVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: cfg.keysSecret}}})
	}
	return nil
}

// bindingRetry paces the retries of concurrent writers of one RoleBinding: every round one
// of them succeeds, so a burst of pods of as many service accounts needs as many rounds.
// client-go's DefaultRetry gives up after 5, which 12 pods of 6 service accounts created at
// once exhausted on a busy machine. This allows 30, a few seconds in all, well within the
// webhook's 10 s timeout.
var bindingRetry = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.3, Jitter: 1, Cap: 200 * time.Millisecond}

// ensureReadAccess makes sure that the service account sa of namespace ns may read the
// namespace's flags and overrides: it creates the RoleBinding SidecarRoleBindingName there,
// or adds sa to its subjects. Pods created at once race for it, hence the retries.
func ensureReadAccess(ctx context.Context, c client.Client, reader client.Reader, ns, sa string) error {
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}
	roleRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: SidecarClusterRoleName}
	key := types.NamespacedName{Namespace: ns, Name: SidecarRoleBindingName}
	retriable := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(bindingRetry, retriable, func() error {
		rb := &rbacv1.RoleBinding{}
		err := reader.Get(ctx, key, rb)
		if apierrors.IsNotFound(err) {
			rb = &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: SidecarRoleBindingName, Labels: map[string]string{
					"app.kubernetes.io/name":       "flagops",
					"app.kubernetes.io/component":  "sidecar",
					"app.kubernetes.io/managed-by": "flagops",
				}},
				RoleRef:  roleRef,
				Subjects: []rbacv1.Subject{subject},
			}
			return c.Create(ctx, rb)
		}
		if err != nil {
			return err
		}
		if rb.RoleRef != roleRef {
			// roleRef cannot change; the binding is somebody else's.
			return fmt.Errorf("the RoleBinding %s/%s refers to %s %s, not to the ClusterRole %s; delete or rename it",
				ns, SidecarRoleBindingName, rb.RoleRef.Kind, rb.RoleRef.Name, SidecarClusterRoleName)
		}
		if slices.Contains(rb.Subjects, subject) {
			return nil
		}
		rb.Subjects = append(rb.Subjects, subject)
		return c.Update(ctx, rb)
	})
	if err != nil {
		return fmt.Errorf("failed to let the service account %s/%s read the namespace's flags: %w", ns, sa, err)
	}
	return nil
}

// imageSource is the sidecar's image: InjectOptions.Image, or the manager's own, looked up
// once.
type imageSource struct {
	opts InjectOptions

	mu     sync.Mutex
	image  string
	policy corev1.PullPolicy
}

func newImageSource(opts InjectOptions) *imageSource {
	s := &imageSource{opts: opts, image: opts.Image, policy: opts.PullPolicy}
	return s
}

// get returns the image and its pull policy, reading the manager's pod the first time when
// no image was configured.
func (s *imageSource) get(ctx context.Context, reader client.Reader) (string, corev1.PullPolicy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.image != "" {
		return s.image, s.policy, nil
	}
	if s.opts.Self.Name == "" || s.opts.Self.Namespace == "" {
		return "", "", errors.New("the sidecar's image is unknown: set --sidecar-image, or POD_NAME and POD_NAMESPACE to the manager's pod")
	}
	pod := &corev1.Pod{}
	if err := reader.Get(ctx, s.opts.Self, pod); err != nil {
		return "", "", fmt.Errorf("failed to read the manager's pod %s for the sidecar's image (or set --sidecar-image): %w", s.opts.Self, err)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == s.opts.ManagerContainer {
			s.image, s.policy = c.Image, c.ImagePullPolicy
			return s.image, s.policy, nil
		}
	}
	return "", "", fmt.Errorf("the manager's pod %s has no container %q to take the sidecar's image from; set --sidecar-image", s.opts.Self, s.opts.ManagerContainer)
}

func ptrTo[T any](v T) *T { return &v }

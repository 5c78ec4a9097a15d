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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
	"github.com/flagops/flagops/test/testenv"
)

var (
	testEnv  *envtest.Environment
	cfg      *rest.Config
	scheme   = runtime.NewScheme()
	ctx      context.Context
	repoRoot = filepath.Join("..", "..")

	// k8sClient is the envtest administrator.
	k8sClient client.Client
	// Clients of people, each a member of system:masters under their own name.
	alice, bob, carol, dave client.Client

	// auditLog receives the audit records of the manager under test.
	auditLog = audit.NewMemory()
	// stampKeys sign and verify the actor stamps, in the webhooks and controllers alike.
	stampKeys = func() *stamp.Keys {
		k, err := stamp.ParseKeys([]byte("webhook-suite-stamp-key-0123456789abcdef"))
		if err != nil {
			panic(err)
		}
		return k
	}()
)

func TestWebhook(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Webhook Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)

	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1.AddToScheme(scheme)).To(Succeed())

	testEnv = testenv.New(repoRoot)
	testEnv.WebhookInstallOptions = envtest.WebhookInstallOptions{
		Paths: []string{filepath.Join(repoRoot, "config", "webhook")},
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	alice, bob, carol, dave = userClient("alice"), userClient("bob"), userClient("carol"), userClient("dave")

	// Install what config/default adds to the generated webhook configurations.
	installMatchConditions()
	Expect(testenv.InstallPolicies(ctx, k8sClient, repoRoot)).To(Succeed())

	startManager()
	waitForWebhooks()
	testenv.WaitForPolicies(ctx, k8sClient)
})

// userClient returns a client that authenticates as name, a member of system:masters.
func userClient(name string) client.Client {
	GinkgoHelper()
	user, err := testEnv.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	c, err := client.New(user.Config(), client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// matchConditionsPatch reads the match conditions that config/default adds to the validating
// webhooks, keyed by webhook name.
func matchConditionsPatch() map[string][]admissionregistrationv1.MatchCondition {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "default", "webhook_matchconditions_patch.yaml"))
	Expect(err).NotTo(HaveOccurred())
	patch := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	Expect(utilyaml.Unmarshal(raw, patch)).To(Succeed())
	out := map[string][]admissionregistrationv1.MatchCondition{}
	for _, w := range patch.Webhooks {
		out[w.Name] = w.MatchConditions
	}
	Expect(out).To(HaveLen(3), "one entry per fail-closed validating webhook")
	return out
}

// installMatchConditions adds the match conditions from config/default to the installed
// validating webhooks and to the fail-closed mutating one, as kustomize does for a
// deployment.
func installMatchConditions() {
	GinkgoHelper()
	conditions := matchConditionsPatch()
	cfgObj := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "flagops-validating-webhook-configuration"}, cfgObj)).To(Succeed())
	patched := 0
	for i := range cfgObj.Webhooks {
		if mc, ok := conditions[cfgObj.Webhooks[i].Name]; ok {
			cfgObj.Webhooks[i].MatchConditions = mc
			patched++
		}
	}
	Expect(patched).To(Equal(len(conditions)), "every patched webhook exists in config/webhook")
	Expect(k8sClient.Update(ctx, cfgObj)).To(Succeed())

	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "default", "webhook_entries_matchconditions_patch.yaml"))
	Expect(err).NotTo(HaveOccurred())
	patch := &admissionregistrationv1.MutatingWebhookConfiguration{}
	Expect(utilyaml.Unmarshal(raw, patch)).To(Succeed())
	Expect(patch.Webhooks).To(HaveLen(1), "the fail-closed mutating webhook")
	Expect(patch.Webhooks[0].MatchConditions).To(Equal(conditions["vuserflagoverride.flagops.dev"]),
		"the same condition as the validating webhooks, which the match-conditions spec checks")
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Name: patch.Name}, mutating)).To(Succeed())
	idx := slices.IndexFunc(mutating.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == patch.Webhooks[0].Name })
	Expect(idx).To(BeNumerically(">=", 0), "the patched webhook exists in config/webhook")
	Expect(*mutating.Webhooks[idx].FailurePolicy).To(Equal(admissionregistrationv1.Fail))
	mutating.Webhooks[idx].MatchConditions = patch.Webhooks[0].MatchConditions
	installInjectSelectors(mutating)
	Expect(k8sClient.Update(ctx, mutating)).To(Succeed())
}

// installInjectSelectors gives the two sidecar injection webhooks in mutating the namespace
// selectors and match conditions of config/default/webhook_inject_patch.yaml.
func installInjectSelectors(mutating *admissionregistrationv1.MutatingWebhookConfiguration) {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "default", "webhook_inject_patch.yaml"))
	Expect(err).NotTo(HaveOccurred())
	patch := &admissionregistrationv1.MutatingWebhookConfiguration{}
	Expect(utilyaml.Unmarshal(raw, patch)).To(Succeed())
	Expect(patch.Webhooks).To(HaveLen(2), "the pod and namespace injection webhooks")
	for _, p := range patch.Webhooks {
		idx := slices.IndexFunc(mutating.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == p.Name })
		Expect(idx).To(BeNumerically(">=", 0), "the patched webhook %s exists in config/webhook", p.Name)
		Expect(p.NamespaceSelector).NotTo(BeNil())
		Expect(p.MatchConditions).NotTo(BeEmpty())
		mutating.Webhooks[idx].NamespaceSelector = p.NamespaceSelector
		mutating.Webhooks[idx].MatchConditions = p.MatchConditions
	}
}

// startManager runs the flagops controllers and webhooks, as `flagops manager` does.
func startManager() {
	GinkgoHelper()
	wio := testEnv.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: controllers.StripForCache, ByObject: isolated("")},
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    wio.LocalServingHost,
			Port:    wio.LocalServingPort,
			CertDir: wio.LocalServingCertDir,
		}),
	})
	Expect(err).NotTo(HaveOccurred())
	_, err = controllers.Setup(ctx, mgr, controllers.Options{
		Store:     evaluator.NewStore(),
		Audit:     auditLog,
		Self:      audit.Actor{Username: "system:serviceaccount:flagops-system:flagops-controller-manager"},
		StampKeys: stampKeys,
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(Setup(mgr, Options{StampKeys: stampKeys, Inject: &InjectOptions{Image: sidecarImage, PullPolicy: corev1.PullIfNotPresent}})).To(Succeed())
	mgr.GetWebhookServer().Register(observePath, &admission.Webhook{Handler: observed})

	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	DeferCleanup(func() {
		stop()
		Eventually(done).Should(BeClosed())
	})
}

// waitForWebhooks blocks until the API server reaches both the validating and the mutating
// webhooks, probing with dry-run requests.
func waitForWebhooks() {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		bad := boolFlag("default", "webhook.probe")
		bad.Spec.Rules = []v1.Rule{{Name: "probe", Match: []v1.Condition{{Attribute: "email", Operator: v1.OperatorMatches, Values: []string{"("}}}}}
		err := alice.Create(ctx, bad, client.DryRunAll)
		g.Expect(err).To(MatchError(ContainSubstring(`admission webhook "vfeatureflag.flagops.dev" denied the request`)))
	}).Should(Succeed())
	Eventually(func(g Gomega) {
		good := boolFlag("default", "webhook.probe")
		g.Expect(alice.Create(ctx, good, client.DryRunAll)).To(Succeed())
		g.Expect(good.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))
	}).Should(Succeed())
}

// newNamespace creates a namespace for one spec and deletes it when the spec ends.
func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "wh-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(context.Background(), ns))).To(Succeed())
	})
	return ns.Name
}

// js marshals v into the JSON wrapper used for flag values.
func js(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &apiextensionsv1.JSON{Raw: raw}
}

func boolFlag(ns, name string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true},
	}
}

// limitsFlag is an Object flag whose schema caps maxStudents at 100.
func limitsFlag(ns, name string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.FeatureFlagSpec{
			Type:    v1.FlagTypeObject,
			Enabled: true,
			Value:   js(map[string]any{"maxStudents": 1}),
			Schema: js(map[string]any{
				"type":                 "object",
				"required":             []string{"maxStudents"},
				"additionalProperties": false,
				"properties": map[string]any{
					"maxStudents": map[string]any{"type": "integer", "minimum": 1, "maximum": 100},
				},
			}),
		},
	}
}

func stringFlag(ns, name, value string) *v1.FeatureFlag {
	return &v1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: js(value)},
	}
}

func on(key string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptrTo(true)}
}

func valued(key string, value any) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Value: js(value)}
}

func userOverride(ns, name, user string, entries ...v1.FlagOverrideEntry) *v1.UserFlagOverride {
	return &v1.UserFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.UserFlagOverrideSpec{
			UserID:           user,
			FlagOverrideSpec: v1.FlagOverrideSpec{Reason: "test", Flags: entries},
		},
	}
}

func deviceOverride(ns, name, device string, entries ...v1.FlagOverrideEntry) *v1.DeviceFlagOverride {
	return &v1.DeviceFlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.DeviceFlagOverrideSpec{
			DeviceID:         device,
			FlagOverrideSpec: v1.FlagOverrideSpec{Reason: "test", Flags: entries},
		},
	}
}

// annotation reads one annotation of the stored object.
func annotation(obj client.Object, key string) func(g Gomega) string {
	return func(g Gomega) string {
		fresh := obj.DeepCopyObject().(client.Object)
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), fresh)).To(Succeed())
		return fresh.GetAnnotations()[key]
	}
}

// warningRecorder collects the warnings the API server returns.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.warnings, "\n")
}

// warningClient returns a client authenticated as the administrator that records warnings.
func warningClient() (client.Client, *warningRecorder) {
	GinkgoHelper()
	rec := &warningRecorder{}
	c := rest.CopyConfig(cfg)
	c.WarningHandlerWithContext = rec
	cl, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl, rec
}

func init() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(2 * time.Second)
	SetDefaultConsistentlyPollingInterval(100 * time.Millisecond)
}

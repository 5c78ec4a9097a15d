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

package controllers

import (
	"context"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
	"github.com/flagops/flagops/test/testenv"
)

var (
	cfg       *rest.Config
	k8sClient client.Client
	testEnv   *envtest.Environment
	scheme    = runtime.NewScheme()
	ctx       context.Context
	repoRoot  = filepath.Join("..")

	// The manager under test and what it feeds.
	store     *evaluator.Store
	syncer    *Syncer
	auditSink *audit.Memory
)

// testActor is the field manager of the test client: the actor that audit records name when
// no webhook stamps flagops.dev/changed-by.
const testActor = "alice-kubectl"

// managerActor is the actor of automatic changes, which are always verified.
var managerActor = audit.Actor{Username: "system:serviceaccount:flagops-system:flagops-controller-manager", Verified: true}

// testStampKeys are the actor stamp keys of the test managers. No webhooks run in this
// suite, so only stamps that a spec signs itself verify.
var testStampKeys = func() *stamp.Keys {
	k, err := stamp.ParseKeys([]byte("controllers-suite-stamp-key-0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return k
}()

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)

	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1.AddToScheme(scheme)).To(Succeed())

	testEnv = testenv.New(repoRoot)
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	k8sClient = client.WithFieldOwner(c, testActor)
	Expect(testenv.InstallPolicies(ctx, k8sClient, repoRoot)).To(Succeed())

	m := startManager(ctx, managerConfig{})
	store, syncer, auditSink = m.store, m.syncer, m.audit
})

// testManager is a running manager with every flagops controller.
type testManager struct {
	store  *evaluator.Store
	syncer *Syncer
	audit  *audit.Memory
	// stop stops the manager and waits until it has stopped.
	stop func()
	// elected is closed when the manager becomes the leader (at once without leader election).
	elected <-chan struct{}
	// leaseHeld is what the manager's Auditor is told of its Lease.
	leaseHeld func() bool
}

// isolationLabel marks objects that belong to one spec's own managers. The suite's shared
// manager ignores them, and an isolated manager sees only its own.
const isolationLabel = "flagops.dev/test-isolation"

// managerConfig adjusts a test manager.
type managerConfig struct {
	// isolation, when set, makes the manager see only objects labelled isolationLabel=isolation.
	isolation string
	// sink receives the audit records; nil means a new Memory sink.
	sink *audit.Memory
	// leaderElection, when set, is the lease name; the manager then competes for leadership.
	leaderElection string
	// newClient, when set, creates the manager's client (to intercept its writes).
	newClient client.NewClientFunc
}

// startManager starts a manager with every flagops controller against the test API server,
// and returns once its initial sync is complete. The manager stops when ctx is done, when
// stop is called, or when the spec ends.
func startManager(ctx context.Context, mc managerConfig) *testManager {
	GinkgoHelper()
	selector := labels.NewSelector()
	if mc.isolation != "" {
		r, err := labels.NewRequirement(isolationLabel, selection.Equals, []string{mc.isolation})
		Expect(err).NotTo(HaveOccurred())
		selector = selector.Add(*r)
	} else {
		r, err := labels.NewRequirement(isolationLabel, selection.DoesNotExist, nil)
		Expect(err).NotTo(HaveOccurred())
		selector = selector.Add(*r)
	}
	byObject := map[client.Object]cache.ByObject{}
	for _, k := range Kinds {
		byObject[k.NewObject()] = cache.ByObject{Label: selector}
	}
	o := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: StripForCache, ByObject: byObject},
		// Several managers run in one test process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	// As cmd/flagops does: a manager alone certainly leads.
	leaseHeld := func() bool { return true }
	if mc.leaderElection != "" {
		o.LeaderElection = true
		o.LeaderElectionID = mc.leaderElection
		o.LeaderElectionNamespace = "default"
		o.LeaderElectionReleaseOnCancel = true
		o.LeaseDuration = ptr.To(2 * time.Second)
		o.RenewDeadline = ptr.To(time.Second)
		o.RetryPeriod = ptr.To(100 * time.Millisecond)
		fence, stopEvents, err := NewLeaseFence(cfg, o)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stopEvents)
		o.LeaderElectionResourceLockInterface, leaseHeld = fence, fence.Held
	}
	o.NewClient = mc.newClient
	mgr, err := ctrl.NewManager(cfg, o)
	Expect(err).NotTo(HaveOccurred())
	m := &testManager{store: evaluator.NewStore(), audit: mc.sink, elected: mgr.Elected(), leaseHeld: leaseHeld}
	if m.audit == nil {
		m.audit = audit.NewMemory()
	}
	m.syncer, err = Setup(ctx, mgr, Options{Store: m.store, Audit: m.audit, Self: managerActor, StampKeys: testStampKeys,
		LeaseHeld: leaseHeld})
	Expect(err).NotTo(HaveOccurred())

	m.stop = runManager(ctx, mgr)
	Eventually(m.syncer.Synced).Should(BeTrue())
	return m
}

// runManager starts mgr until ctx is done, stop is called or the spec ends; stop stops it
// and waits until it has stopped.
func runManager(ctx context.Context, mgr ctrl.Manager) (stop func()) {
	GinkgoHelper()
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	stop = func() {
		cancel()
		Eventually(done).Should(BeClosed(), goroutines)
	}
	DeferCleanup(stop)
	return stop
}

// goroutines describes a manager that did not stop: the stacks of every goroutine.
func goroutines() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return "the manager did not stop; its goroutines:\n" + b.String()
}

// newNamespace creates a namespace for one spec.
func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ctrl-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func init() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)
	SetDefaultConsistentlyPollingInterval(50 * time.Millisecond)
}

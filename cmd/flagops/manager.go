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
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	flagopsv1alpha1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/certs"
	"github.com/flagops/flagops/internal/stamp"
	flagopswebhook "github.com/flagops/flagops/internal/webhook"
)

// selfActor asks the API server who the manager is (a SelfSubjectReview, which every
// authenticated identity may create), to name it as the actor of automatic changes.
func selfActor(ctx context.Context, cfg *rest.Config) audit.Actor {
	fallback := audit.Actor{Username: controllers.FieldOwner}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fallback
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username == "" {
		ctrl.Log.WithName("setup").Info("Unable to learn the manager's own identity; automatic changes are audited as the field owner", "actor", fallback.Username, "reason", fmt.Sprint(err))
		return fallback
	}
	return audit.Actor{Username: review.Status.UserInfo.Username, Groups: review.Status.UserInfo.Groups}
}

// managerOptions are the flags of `flagops manager`.
type managerOptions struct {
	metricsAddr      string
	secureMetrics    bool
	probeAddr        string
	pprofAddr        string
	leaderElect      bool
	leaderElectionNS string
	watchNamespaces  string
	auditSinks       stringList
	auditSpoolDir    string
	auditEventSource string
	auditEventBatch  bool
	enableWebhooks   bool
	stampKeyFile     string
	webhookPort      int
	webhookCertDir   string
	injectSidecars   bool
	sidecarImage     string
	certs            certs.Options
	evaluatorAddr    string
	defaultNamespace string
	access           deviceAccess
	streams          streamLimits
	zap              zap.Options
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(flagopsv1alpha1.AddToScheme(s))
	return s
}

// parseManagerFlags parses the manager's flags. Help output goes to stdout.
func parseManagerFlags(args []string, stdout, stderr io.Writer) (*managerOptions, error) {
	o := &managerOptions{zap: zap.Options{Development: false}}
	fs := flag.NewFlagSet("flagops manager", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to, e.g. :8443. Use 0 to disable it.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, authenticated and authorised with the Kubernetes API.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader among replicas; only the leader writes status, events and audit records.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader-election lease. Empty means the namespace the manager runs in.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch. Empty means all namespaces.")
	fs.Var(&o.auditSinks, "audit-sink",
		"Where audit records go; repeat for several: stdout, file:PATH or http(s)://URL. Default stdout.")
	fs.StringVar(&o.auditSpoolDir, "audit-spool-dir", audit.DefaultSpoolDir,
		"Existing directory where HTTP audit sinks spool records until the receiver acknowledges them. Mount a persistent volume here so that records survive a restart.")
	fs.StringVar(&o.auditEventSource, "audit-event-source", audit.DefaultEventSource,
		"CloudEvents source of the records that HTTP audit sinks send, a URI reference; each event's source is this followed by /<namespace>. Set one per cluster, e.g. flagops.dev/prod-eu.")
	fs.BoolVar(&o.auditEventBatch, "audit-cloudevents-batch", false,
		"Send HTTP audit records as batches of CloudEvents (application/cloudevents-batch+json) rather than one structured event (application/cloudevents+json) per request.")
	fs.BoolVar(&o.enableWebhooks, "enable-webhooks", true,
		"Serve the admission webhooks (changed-by and deleted-by stamps, validation). Disable when the webhook configurations are not installed, e.g. when running outside the cluster.")
	fs.StringVar(&o.stampKeyFile, "audit-stamp-key-file", "",
		"File of the key that signs and verifies the audit actor stamps (flagops.dev/changed-by-stamp, deleted-by-stamp): one key of at least 32 bytes per line; the first signs, all verify. Required with --enable-webhooks. Without it the audit trail marks every actor unverified (docs/audit.md).")
	fs.IntVar(&o.webhookPort, "webhook-port", webhook.DefaultPort,
		"Port the admission webhook server listens on.")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "",
		"Directory holding the webhook server's tls.crt and tls.key. Empty means controller-runtime's default, <temp-dir>/k8s-webhook-server/serving-certs.")
	fs.BoolVar(&o.injectSidecars, "sidecar-injection", true,
		"Serve the sidecar injection webhooks: pods annotated flagops.dev/inject: \"true\", and the pods of namespaces labelled flagops.dev/inject=enabled, get `flagops sidecar` as a native sidecar (docs/sidecar.md). Needs --enable-webhooks.")
	fs.StringVar(&o.sidecarImage, "sidecar-image", "",
		"Image of the injected sidecar. Empty means the image of this manager's own container, read from its pod (POD_NAME and POD_NAMESPACE).")
	o.certs.Bind(fs)
	fs.StringVar(&o.evaluatorAddr, "evaluator-bind-address", "0",
		"Address the evaluator's HTTP API (OFREP, native API, event streams, /readyz) binds to on every replica, e.g. 127.0.0.1:8080 for development. 0, the default, disables it: devices are served by `flagops evaluator`, which can only read the cluster (docs/deploy.md).")
	o.access.bind(fs)
	o.streams.bind(fs)
	fs.StringVar(&o.defaultNamespace, "default-namespace", "default",
		"Namespace the evaluator's unprefixed routes serve.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address Go's profiling endpoints (/debug/pprof/, plain HTTP, unauthenticated) bind to, e.g. 127.0.0.1:6060, for measuring it (hack/scale). Use 0, the default, to disable them.")
	o.zap.BindFlags(fs)
	if err := parseCommand(fs, "Usage: flagops manager [flags]\n\nRun the flagops controller manager against the cluster in KUBECONFIG or in-cluster config.\n\n", args, stdout, stderr); err != nil {
		return nil, err
	}
	if o.enableWebhooks && (o.webhookPort < 1 || o.webhookPort > 65535) {
		return nil, fmt.Errorf("--webhook-port: %d is not a port number (1 to 65535)", o.webhookPort)
	}
	if o.enableWebhooks {
		if err := o.certs.Validate(); err != nil {
			return nil, err
		}
	}
	if o.sidecarImage != "" && strings.TrimSpace(o.sidecarImage) != o.sidecarImage || strings.ContainsAny(o.sidecarImage, " \t\n") {
		return nil, fmt.Errorf("--sidecar-image: %q is not an image reference", o.sidecarImage)
	}
	if o.evaluatorAddr == "" {
		return nil, errors.New("--evaluator-bind-address: empty address (use 0 to disable the evaluator server)")
	}
	if strings.TrimSpace(o.defaultNamespace) == "" {
		return nil, errors.New("--default-namespace: empty namespace")
	}
	if err := audit.CheckEventSource(o.auditEventSource); err != nil {
		return nil, err
	}
	// The evaluator serves devices from the cluster: it needs keys unless
	// it is disabled or --insecure-no-auth says otherwise.
	if err := o.access.load(o.evaluatorAddr != "0"); err != nil {
		return nil, err
	}
	if err := o.streams.load(); err != nil {
		return nil, err
	}
	return o, nil
}

// errNoStampKey is returned when the webhooks are on without a stamp key.
var errNoStampKey = errors.New("--audit-stamp-key-file is required when the webhooks are enabled: " +
	"without a key the audit trail cannot tell a name the webhook stamped from one written by hand " +
	"(create the Secret flagops-audit-stamp-key, docs/audit.md), or run with --enable-webhooks=false")

// stampKeys loads the actor stamp keys. The webhooks need them: they are the only writers
// of the stamps, so serving them without a key would write names that nothing can verify.
// Without webhooks (outside the cluster) no stamps are made, and no key is needed: every
// audited actor is then unverified, which the caller warns about.
func (o *managerOptions) stampKeys() (*stamp.Keys, error) {
	if o.stampKeyFile == "" {
		if o.enableWebhooks {
			return nil, errNoStampKey
		}
		return nil, nil
	}
	return stamp.LoadKeys(o.stampKeyFile)
}

// webhookCertDirOrDefault is --webhook-cert-dir, or controller-runtime's default directory
// when the flag is empty. The webhook server and the certificate mirror both take this one
// value, so they cannot disagree.
func (o *managerOptions) webhookCertDirOrDefault() string {
	if o.webhookCertDir != "" {
		return o.webhookCertDir
	}
	return filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
}

// namespaces returns the cache's namespaces of --watch-namespaces: nil for every namespace.
func (o *managerOptions) namespaces() (map[string]cache.Config, error) {
	list, err := splitNamespaces("--watch-namespaces", o.watchNamespaces)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	out := make(map[string]cache.Config, len(list))
	for _, ns := range list {
		out[ns] = cache.Config{}
	}
	return out, nil
}

func runManager(args []string, stdout, stderr io.Writer) int {
	o, err := parseManagerFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, "flagops manager: %v\n", err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap), zap.WriteTo(stderr)))
	log := ctrl.Log.WithName("setup")

	namespaces, err := o.namespaces()
	if err != nil {
		return fail(stderr, 2, "flagops manager: %v\n", err)
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		// HTTP/2 is disabled to avoid the HTTP/2 Stream Cancellation and Rapid Reset CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	sinks := o.auditSinks
	if len(sinks) == 0 {
		sinks = []string{"stdout"}
	}
	sink, err := audit.ParseAll(sinks, audit.Options{
		Stdout:      stdout,
		SpoolDir:    o.auditSpoolDir,
		EventSource: o.auditEventSource,
		EventBatch:  o.auditEventBatch,
		Registerer:  ctrlmetrics.Registry,
		Logger:      ctrl.Log.WithName("audit"),
	})
	if err != nil {
		return fail(stderr, 2, "flagops manager: %v\n", err)
	}
	defer func() {
		if err := sink.Close(); err != nil {
			log.Error(err, "Unable to close the audit sinks")
		}
	}()

	keys, err := o.stampKeys()
	if err != nil {
		return fail(stderr, 2, "flagops manager: %v\n", err)
	}
	if keys == nil {
		log.Info("WARNING: no --audit-stamp-key-file: every audit record's actor is unverified (actor.verified false, the field manager as a hint)")
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Unable to load the Kubernetes client configuration")
		return 1
	}

	mgrOpts := ctrl.Options{
		Scheme:                  newScheme(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "flagops-manager.flagops.dev",
		LeaderElectionNamespace: o.leaderElectionNS,
		// A leader that stops releases the Lease, so that the other replica takes over within
		// its retry period instead of waiting out the Lease. It is safe because the manager
		// releases it only after every leader-only runnable has returned (the Auditor waits
		// for its workers, the controllers for their reconciles), and the process then exits.
		LeaderElectionReleaseOnCancel: true,
		// controller-runtime's defaults, stated because the Auditor's LeaseFence reckons with
		// them (controllers.NewLeaseFence).
		LeaseDuration: ptr.To(15 * time.Second),
		RenewDeadline: ptr.To(10 * time.Second),
		Cache:         cache.Options{DefaultNamespaces: namespaces, DefaultTransform: controllers.StripForCache},
	}
	// Without leader election the manager runs alone, and nothing else leads.
	leaseHeld := func() bool { return true }
	if o.leaderElect {
		fence, stopEvents, err := controllers.NewLeaseFence(cfg, mgrOpts)
		if err != nil {
			log.Error(err, "Unable to set up leader election")
			return 1
		}
		defer stopEvents()
		mgrOpts.LeaderElectionResourceLockInterface, leaseHeld = fence, fence.Held
	}
	// certsReady is closed once the webhook server's certificate is on disk; with
	// --webhook-certs=external it is there from the start.
	certsReady := make(chan struct{})
	if !o.certs.Self() {
		close(certsReady)
	}
	if o.enableWebhooks {
		mgrOpts.WebhookServer = certs.WaitFor(webhook.NewServer(webhook.Options{
			Port:    o.webhookPort,
			CertDir: o.webhookCertDirOrDefault(),
			// HTTP/2 is disabled for the same reason as for metrics.
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		}), certsReady)
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		log.Error(err, "Unable to create the manager")
		return 1
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up the health check")
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	store := evaluator.NewStore()
	syncer, err := controllers.Setup(ctx, mgr, controllers.Options{Store: store, Audit: sink, Self: selfActor(ctx, cfg), StampKeys: keys,
		LeaseHeld: leaseHeld})
	if err != nil {
		log.Error(err, "Unable to set up the controllers")
		return 1
	}
	if o.evaluatorAddr != "0" {
		elog := ctrl.Log.WithName("evaluator")
		r := &evaluatorRunnable{srv: newEvaluatorHTTPServer(o.evaluatorAddr, o.defaultNamespace, store, syncer, &o.access, &o.streams, elog), log: elog, access: &o.access}
		if err := mgr.Add(r); err != nil {
			log.Error(err, "Unable to set up the evaluator server")
			return 1
		}
	}
	if o.enableWebhooks && o.certs.Self() {
		ns, err := certs.Namespace()
		if err != nil {
			log.Error(err, "Unable to set up the webhook certificates")
			return 1
		}
		if err := certs.Setup(mgr, o.certs, ns, o.webhookCertDirOrDefault(), certsReady); err != nil {
			log.Error(err, "Unable to set up the webhook certificates")
			return 1
		}
	}
	if o.enableWebhooks {
		// After controllers.Setup, which registers the cache indexes the webhooks query.
		webhookOpts := flagopswebhook.Options{StampKeys: keys}
		if o.injectSidecars {
			webhookOpts.Inject = &flagopswebhook.InjectOptions{
				Image:            o.sidecarImage,
				Self:             types.NamespacedName{Namespace: os.Getenv("POD_NAMESPACE"), Name: os.Getenv("POD_NAME")},
				ManagerContainer: "manager",
			}
		}
		if err := flagopswebhook.Setup(mgr, webhookOpts); err != nil {
			log.Error(err, "Unable to set up the webhooks")
			return 1
		}
		// A replica receives admission requests only once its webhook server is serving.
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			log.Error(err, "Unable to set up the webhook readiness check")
			return 1
		}
	}

	log.Info("Starting the manager", "version", version, "watchNamespaces", o.watchNamespaces, "leaderElect", o.leaderElect, "webhooks", o.enableWebhooks, "evaluator", o.evaluatorAddr)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "The manager stopped with an error")
		return 1
	}
	return 0
}

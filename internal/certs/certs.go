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

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;update,resourceNames=flagops-mutating-webhook-configuration;flagops-validating-webhook-configuration

// Package certs gives the manager's admission webhooks their TLS certificates without
// cert-manager. Each manager replica runs open-policy-agent/cert-controller's rotator,
// which keeps a CA and a serving certificate for the webhook Service in one Secret,
// renews them before they expire. Each replica follows the Secret: it writes the CA into the
// caBundle of the webhook configurations, keeping the earlier CAs there until they expire,
// and only then writes the certificate into its certificate directory (an emptyDir). So the
// caBundle trusts every certificate a replica may serve, also while a new CA replaces the
// old one. The webhook server starts once the certificate is there, and reloads it when it
// changes.
package certs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// The defaults: the names in config/default, and the validity periods.
const (
	DefaultSecret           = "flagops-webhook-server-cert"
	DefaultService          = "flagops-webhook-service"
	DefaultMutatingConfig   = "flagops-mutating-webhook-configuration"
	DefaultValidatingConfig = "flagops-validating-webhook-configuration"
	DefaultCAValidity       = 10 * 365 * 24 * time.Hour
	DefaultCertValidity     = 365 * 24 * time.Hour
	DefaultRenewBefore      = 90 * 24 * time.Hour
	DefaultCheckInterval    = 12 * time.Hour
)

// The values of --webhook-certs.
const (
	ModeSelf     = "self"
	ModeExternal = "external"
)

const (
	serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
	namespaceEnv            = "POD_NAMESPACE"
	caName                  = "flagops-webhook-ca"
	caOrganization          = "flagops"
	fieldOwner              = "flagops-webhook-certs"

	flagMode       = "webhook-certs"
	flagCAValidity = "webhook-ca-validity"
	flagValidity   = "webhook-cert-validity"
	flagRenew      = "webhook-cert-renew-before"
	flagCheck      = "webhook-cert-check-interval"
)

// Options are the manager's flags for the webhook certificates.
type Options struct {
	// Mode is self (the manager provisions the certificates) or external (something else,
	// such as cert-manager, writes them into CertDir and the caBundles).
	Mode string
	// Secret holds the CA and the serving certificate, in the manager's namespace.
	Secret string
	// Service is the webhook Service, in the manager's namespace: the certificate is for
	// its DNS names.
	Service string
	// MutatingConfig and ValidatingConfig are the webhook configurations whose caBundle
	// the manager sets.
	MutatingConfig, ValidatingConfig string
	// CAValidity and CertValidity are how long a new CA and a new serving certificate are
	// valid; each is renewed when less than RenewBefore of it is left, which the manager
	// checks every CheckInterval (and whenever the Secret changes).
	CAValidity, CertValidity, RenewBefore, CheckInterval time.Duration
}

// Bind registers the flags on fs, with the defaults of config/default.
func (o *Options) Bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Mode, flagMode, ModeSelf,
		"Who provides the webhook server's certificates: self, the manager (a CA and a serving certificate in --webhook-cert-secret, renewed before they expire, the CA written into the webhook configurations), or external (e.g. cert-manager writes them into --webhook-cert-dir and the caBundles).")
	fs.StringVar(&o.Secret, "webhook-cert-secret", DefaultSecret,
		"With --webhook-certs=self: the Secret, in the manager's namespace, that holds the CA and the serving certificate; the manager writes the certificate into --webhook-cert-dir.")
	fs.StringVar(&o.Service, "webhook-service", DefaultService,
		"With --webhook-certs=self: the webhook Service, in the manager's namespace; the certificate is for <service>.<namespace>.svc.")
	fs.StringVar(&o.MutatingConfig, "mutating-webhook-configuration", DefaultMutatingConfig,
		"With --webhook-certs=self: the MutatingWebhookConfiguration whose caBundle the manager sets.")
	fs.StringVar(&o.ValidatingConfig, "validating-webhook-configuration", DefaultValidatingConfig,
		"With --webhook-certs=self: the ValidatingWebhookConfiguration whose caBundle the manager sets.")
	fs.DurationVar(&o.CAValidity, flagCAValidity, DefaultCAValidity,
		"With --webhook-certs=self: how long a new CA is valid.")
	fs.DurationVar(&o.CertValidity, flagValidity, DefaultCertValidity,
		"With --webhook-certs=self: how long a new serving certificate is valid.")
	fs.DurationVar(&o.RenewBefore, flagRenew, DefaultRenewBefore,
		"With --webhook-certs=self: renew the CA or the serving certificate when less than this is left of it.")
	fs.DurationVar(&o.CheckInterval, flagCheck, DefaultCheckInterval,
		"With --webhook-certs=self: how often to check whether a certificate is due for renewal.")
}

// Self reports whether the manager provisions the certificates.
func (o *Options) Self() bool { return o.Mode == ModeSelf }

// Validate checks the flags, naming the one at fault.
func (o *Options) Validate() error {
	switch o.Mode {
	case ModeSelf:
	case ModeExternal:
		return nil
	default:
		return fmt.Errorf("--%s: %q is neither %s nor %s", flagMode, o.Mode, ModeSelf, ModeExternal)
	}
	for _, n := range []struct{ flag, name string }{
		{"--webhook-cert-secret", o.Secret},
		{"--webhook-service", o.Service},
		{"--mutating-webhook-configuration", o.MutatingConfig},
		{"--validating-webhook-configuration", o.ValidatingConfig},
	} {
		if errs := validation.IsDNS1123Subdomain(n.name); len(errs) > 0 {
			return fmt.Errorf("%s: %q is not a valid name: %s", n.flag, n.name, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1035Label(o.Service); len(errs) > 0 {
		return fmt.Errorf("--webhook-service: %q is not a valid Service name: %s", o.Service, strings.Join(errs, "; "))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{flagCAValidity, o.CAValidity}, {flagValidity, o.CertValidity}, {flagRenew, o.RenewBefore}, {flagCheck, o.CheckInterval}} {
		if d.v <= 0 {
			return fmt.Errorf("--%s: %s is not a positive duration", d.flag, d.v)
		}
	}
	switch {
	case o.CertValidity > o.CAValidity:
		return fmt.Errorf("--%s: %s is longer than --%s (%s): the serving certificate would outlive its CA", flagValidity, o.CertValidity, flagCAValidity, o.CAValidity)
	case o.RenewBefore >= o.CertValidity:
		return fmt.Errorf("--%s: %s is not shorter than --%s (%s): every new certificate would be due for renewal at once", flagRenew, o.RenewBefore, flagValidity, o.CertValidity)
	case o.CheckInterval >= o.RenewBefore:
		return fmt.Errorf("--%s: %s is not shorter than --%s (%s): a certificate could expire between two checks", flagCheck, o.CheckInterval, flagRenew, o.RenewBefore)
	}
	return nil
}

// Namespace returns the namespace the manager runs in: $POD_NAMESPACE, else its service
// account's namespace.
func Namespace() (string, error) {
	if ns := strings.TrimSpace(os.Getenv(namespaceEnv)); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return "", fmt.Errorf("the manager cannot tell its namespace, which holds the webhook certificate Secret: set %s, run in a pod with a service account, or pass --webhook-certs=external with certificates of your own: %w", namespaceEnv, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Setup adds the certificate rotator to mgr, for the Secret and Service in namespace, and
// the mirror that writes the certificate into certDir. It closes ready once the serving
// certificate is on disk and the CA is in the webhook configurations.
func Setup(mgr manager.Manager, o Options, namespace, certDir string, ready chan struct{}) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if !o.Self() {
		return errors.New("the webhook certificates are external (--webhook-certs=external)")
	}
	svc := o.Service + "." + namespace + ".svc"
	err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey: types.NamespacedName{Namespace: namespace, Name: o.Secret},
		// One controller name per Secret: controller-runtime refuses a name twice in one
		// process, where the tests run two managers.
		ControllerName: "cert-rotator-" + o.Secret,
		CertDir:        certDir,
		CAName:         caName,
		CAOrganization: caOrganization,
		DNSName:        svc,
		ExtraDNSNames:  []string{o.Service, o.Service + "." + namespace, svc + ".cluster.local"},
		IsReady:        ready,
		// No Webhooks: the rotator would set each caBundle to the new CA alone, at once,
		// while the replicas still serve certificates of the old one. The mirror sets them.
		// Every replica serves the webhooks, so every replica needs the certificate before
		// it starts serving: each runs the rotator. They agree through the Secret's
		// resourceVersion; the loser of a race re-reads the winner's certificate.
		RequireLeaderElection:  false,
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.CertValidity,
		LookaheadInterval:      o.RenewBefore,
		RotationCheckFrequency: o.CheckInterval,
	})
	if err != nil {
		return fmt.Errorf("failed to set up the webhook certificate rotator: %w", err)
	}
	return addMirror(mgr, types.NamespacedName{Namespace: namespace, Name: o.Secret}, o.MutatingConfig, o.ValidatingConfig, certDir)
}

// WaitFor returns srv, started only once ready is closed: the webhook server reads its
// certificate when it starts, so it must not start before the certificate is mounted. Its
// StartedChecker fails until then, which keeps the replica out of the webhook Service.
func WaitFor(srv webhook.Server, ready <-chan struct{}) webhook.Server {
	return &waitingServer{Server: srv, ready: ready}
}

type waitingServer struct {
	webhook.Server
	ready <-chan struct{}
}

func (s *waitingServer) Start(ctx context.Context) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil
	}
	return s.Server.Start(ctx)
}

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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
)

// evaluatorOptions are the flags of `flagops evaluator`.
type evaluatorOptions struct {
	namespaces       []string // empty: every namespace
	defaultNamespace string
	evaluatorAddr    string
	metricsAddr      string
	probeAddr        string
	pprofAddr        string
	access           deviceAccess
	streams          streamLimits
	zap              zap.Options
}

// parseEvaluatorFlags parses the evaluator's flags. Help output goes to stdout.
func parseEvaluatorFlags(args []string, stdout, stderr io.Writer) (*evaluatorOptions, error) {
	o := &evaluatorOptions{zap: zap.Options{Development: false}}
	var namespaces string
	fs := flag.NewFlagSet("flagops evaluator", flag.ContinueOnError)
	fs.StringVar(&namespaces, "namespaces", "",
		"Comma-separated namespaces whose flags and overrides to serve. Empty means every namespace.")
	fs.StringVar(&o.defaultNamespace, "default-namespace", "",
		"Namespace the unprefixed routes serve. Empty means the one namespace of --namespaces when it names exactly one, else default.")
	fs.StringVar(&o.evaluatorAddr, "evaluator-bind-address", ":8080",
		"Address the evaluator's HTTP API (OFREP, native API, event streams, /healthz, /readyz) binds to.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"Address a separate /healthz and /readyz probe server binds to, for the kubelet. Use 0 to disable it; the evaluator serves both paths too.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the Prometheus metrics endpoint (plain HTTP, /metrics) binds to, e.g. :8082. Use 0 to disable it.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address Go's profiling endpoints (/debug/pprof/, plain HTTP, unauthenticated) bind to, e.g. 127.0.0.1:6060, for measuring it (hack/scale). Use 0, the default, to disable them.")
	o.access.bind(fs)
	o.streams.bind(fs)
	o.zap.BindFlags(fs)
	if err := parseCommand(fs, "Usage: flagops evaluator [flags]\n\nServe flags and overrides to devices and applications from an in-memory evaluator. It only reads\nFeatureFlags, UserFlagOverrides and DeviceFlagOverrides (of every namespace, or of --namespaces): it\nwrites nothing to the cluster, serves no webhooks and needs no leader election, so every replica serves.\n\n", args, stdout, stderr); err != nil {
		return nil, err
	}
	if o.evaluatorAddr == "" || o.evaluatorAddr == "0" {
		return nil, errors.New("--evaluator-bind-address: the evaluator needs an address to serve on")
	}
	var err error
	if o.namespaces, err = splitNamespaces("--namespaces", namespaces); err != nil {
		return nil, err
	}
	o.defaultNamespace = strings.TrimSpace(o.defaultNamespace)
	switch {
	case o.defaultNamespace == "" && len(o.namespaces) == 1:
		o.defaultNamespace = o.namespaces[0]
	case o.defaultNamespace == "":
		o.defaultNamespace = "default"
	case len(o.namespaces) > 0 && !slices.Contains(o.namespaces, o.defaultNamespace):
		return nil, fmt.Errorf("--default-namespace: %q is not one of --namespaces %q", o.defaultNamespace, namespaces)
	}
	// The evaluator serves devices from the cluster: without keys it needs --insecure-no-auth.
	if err := o.access.load(true); err != nil {
		return nil, err
	}
	if err := o.streams.load(); err != nil {
		return nil, err
	}
	return o, nil
}

// splitNamespaces splits a comma-separated list of namespaces, rejecting empty items such
// as "a,,b". An empty or blank list is nil: every namespace.
func splitNamespaces(flagName, list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []string
	for ns := range strings.SplitSeq(list, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			return nil, fmt.Errorf("%s: empty namespace in %q", flagName, list)
		}
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func runEvaluator(args []string, stdout, stderr io.Writer) int {
	o, err := parseEvaluatorFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, "flagops evaluator: %v\n", err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap), zap.WriteTo(stderr)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Unable to load the Kubernetes client configuration")
		return 1
	}
	mgr, err := newServingManager(cfg, o.serving(), nil)
	if err != nil {
		log.Error(err, "Unable to set up the evaluator")
		return 1
	}
	log.Info("Starting the evaluator", "version", version, "namespaces", o.namespaces, "defaultNamespace", o.defaultNamespace, "evaluator", o.evaluatorAddr)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "The evaluator stopped with an error")
		return 1
	}
	return 0
}

func (o *evaluatorOptions) serving() servingConfig {
	return servingConfig{
		namespaces:       o.namespaces,
		defaultNamespace: o.defaultNamespace,
		evaluatorAddr:    o.evaluatorAddr,
		metricsAddr:      o.metricsAddr,
		probeAddr:        o.probeAddr,
		pprofAddr:        o.pprofAddr,
		access:           &o.access,
		streams:          &o.streams,
	}
}

// servingConfig configures a serving manager.
type servingConfig struct {
	// namespaces are the namespaces to watch; empty means every namespace.
	namespaces []string
	// defaultNamespace is the namespace of the evaluator's unprefixed routes.
	defaultNamespace string
	// evaluatorAddr, metricsAddr and probeAddr are the listeners' addresses; "0" disables
	// metrics and the probe server.
	evaluatorAddr, metricsAddr, probeAddr string
	// pprofAddr is the address of the profiling endpoints; empty or "0" disables them.
	pprofAddr string
	access    *deviceAccess
	streams   *streamLimits
}

// newServingManager returns the manager of `flagops evaluator` and `flagops sidecar`: the
// flags' sync controller over a cache, and the overrides' feeds, of c.namespaces (of every
// namespace when empty) feeding an in-memory store, and the evaluator server over it, on ln when it is not nil. It only
// reads the cluster: no leader election, no webhooks, no status, events or audit records,
// no lifecycle controllers. /healthz answers while it runs and /readyz once the initial
// sync is complete, on the probe server and on the evaluator's listener.
func newServingManager(cfg *rest.Config, c servingConfig, ln net.Listener) (ctrl.Manager, error) {
	var namespaces map[string]cache.Config
	if len(c.namespaces) > 0 {
		namespaces = make(map[string]cache.Config, len(c.namespaces))
		for _, ns := range c.namespaces {
			namespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsserver.Options{BindAddress: c.metricsAddr},
		HealthProbeBindAddress: c.probeAddr,
		PprofBindAddress:       c.pprofAddr,
		Cache: cache.Options{
			DefaultNamespaces: namespaces,
			// The Syncer is the only reader: keep only what it reads.
			DefaultTransform: controllers.ServingTransform,
		},
		// The sync controllers are named after their kinds, so two serving managers in one
		// process (as in the tests) share names, and their metrics add up.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("failed to add the health check: %w", err)
	}
	store := evaluator.NewStore()
	// SetupServingSync adds the readiness check of the initial sync, and runs the store's
	// clock so that override expiries and schedule steps reach the streams when they happen.
	// Overrides reach the store from their watch, without a cache (only the Syncer reads them).
	syncer, err := controllers.SetupServingSync(mgr, store, c.namespaces)
	if err != nil {
		return nil, err
	}
	log := ctrl.Log.WithName("evaluator")
	r := &evaluatorRunnable{srv: newEvaluatorHTTPServer(c.evaluatorAddr, c.defaultNamespace, store, syncer, c.access, c.streams, log), log: log, access: c.access}
	if ln != nil {
		r.listen = func() (net.Listener, error) { return ln, nil }
	}
	if err := mgr.Add(r); err != nil {
		return nil, fmt.Errorf("failed to add the evaluator server: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		releaseStartMemory(ctx, syncer.WhenSynced())
		return nil
	})); err != nil {
		return nil, fmt.Errorf("failed to add the release of the start's memory: %w", err)
	}
	return mgr, nil
}

// releaseStartMemory returns the heap that the start freed to the operating system once
// synced is closed. The start decodes every object and builds the store, and its garbage
// is several times the heap that stays live; a serving replica makes little garbage after
// it, so without this its RSS would stay near the start's peak until the runtime's
// scavenger, paced by later collections, gives it back (docs/capacity.md).
func releaseStartMemory(ctx context.Context, synced <-chan struct{}) {
	select {
	case <-synced:
		debug.FreeOSMemory()
	case <-ctx.Done():
	}
}

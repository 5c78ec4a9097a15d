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
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// serviceAccountNamespaceFile holds the namespace of the pod's service account.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// sidecarOptions are the flags of `flagops sidecar`.
type sidecarOptions struct {
	namespace     string
	evaluatorAddr string
	metricsAddr   string
	probeAddr     string
	access        deviceAccess
	streams       streamLimits
	zap           zap.Options
}

// sidecarEnv is where the sidecar looks for its namespace when --namespace is not given.
type sidecarEnv struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
}

var osSidecarEnv = sidecarEnv{getenv: os.Getenv, readFile: os.ReadFile}

// errNoNamespace is returned when no namespace is given or found.
var errNoNamespace = errors.New("no namespace: set --namespace, or POD_NAMESPACE (e.g. from the downward API), or run in a pod with a service account token mounted")

// parseSidecarFlags parses the sidecar's flags. Help output goes to stdout.
func parseSidecarFlags(args []string, env sidecarEnv, stdout, stderr io.Writer) (*sidecarOptions, error) {
	o := &sidecarOptions{zap: zap.Options{Development: false}}
	fs := flag.NewFlagSet("flagops sidecar", flag.ContinueOnError)
	fs.StringVar(&o.namespace, "namespace", "",
		"Namespace whose flags and overrides the sidecar serves. Default: $POD_NAMESPACE, else the namespace of the pod's service account.")
	fs.StringVar(&o.evaluatorAddr, "evaluator-bind-address", "127.0.0.1:8080",
		"Address the evaluator's HTTP API (OFREP, native API, event streams, /healthz, /readyz) binds to. The default is reachable from the pod's own containers only.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the Prometheus metrics endpoint (plain HTTP, /metrics) binds to. Use 0 to disable it.")
	o.access.bind(fs)
	o.streams.bind(fs)
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", "0",
		"Address a separate /healthz and /readyz probe server binds to, e.g. :8081, for when the evaluator binds to localhost only. Use 0 to disable it; the evaluator serves both paths too.")
	o.zap.BindFlags(fs)
	if err := parseCommand(fs, "Usage: flagops sidecar [flags]\n\nServe the flags and overrides of one namespace from an in-memory evaluator, next to an application.\n\n", args, stdout, stderr); err != nil {
		return nil, err
	}
	if o.evaluatorAddr == "" || o.evaluatorAddr == "0" {
		return nil, errors.New("--evaluator-bind-address: the sidecar needs an address to serve on")
	}
	if err := o.access.load(true); err != nil {
		return nil, err
	}
	if err := o.streams.load(); err != nil {
		return nil, err
	}
	o.namespace = strings.TrimSpace(o.namespace)
	if o.namespace == "" {
		o.namespace = strings.TrimSpace(env.getenv("POD_NAMESPACE"))
	}
	if o.namespace == "" {
		if b, err := env.readFile(serviceAccountNamespaceFile); err == nil {
			o.namespace = strings.TrimSpace(string(b))
		}
	}
	if o.namespace == "" {
		return nil, errNoNamespace
	}
	return o, nil
}

func runSidecar(args []string, stdout, stderr io.Writer) int {
	o, err := parseSidecarFlags(args, osSidecarEnv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, "flagops sidecar: %v\n", err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap), zap.WriteTo(stderr)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Unable to load the Kubernetes client configuration")
		return 1
	}
	mgr, err := newSidecarManager(cfg, o, nil)
	if err != nil {
		log.Error(err, "Unable to set up the sidecar")
		return 1
	}
	log.Info("Starting the sidecar", "version", version, "namespace", o.namespace, "evaluator", o.evaluatorAddr)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "The sidecar stopped with an error")
		return 1
	}
	return 0
}

// newSidecarManager returns the sidecar's manager: a serving manager of o.namespace, whose
// unprefixed routes serve that namespace, on ln when it is not nil.
func newSidecarManager(cfg *rest.Config, o *sidecarOptions, ln net.Listener) (ctrl.Manager, error) {
	return newServingManager(cfg, servingConfig{
		namespaces:       []string{o.namespace},
		defaultNamespace: o.namespace,
		evaluatorAddr:    o.evaluatorAddr,
		metricsAddr:      o.metricsAddr,
		probeAddr:        o.probeAddr,
		access:           &o.access,
		streams:          &o.streams,
	}, ln)
}

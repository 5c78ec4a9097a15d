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
	"errors"
	"flag"
	"fmt"
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
	zap           zap.Options
}

// deviceAccess holds the flags guarding the evaluator's device-facing routes, shared by the
// manager, the sidecar and serve.
type deviceAccess struct {
	tokenKeyFile string
	corsOrigins  string
	// maxSubscribers caps the open event streams; 0 means no cap.
	maxSubscribers int
	// Set by load.
	tokenKey []byte
	origins  []string
}

func (d *deviceAccess) bind(fs *flag.FlagSet) {
	fs.StringVar(&d.tokenKeyFile, "context-token-key-file", "",
		"File holding the HS256 secret of context tokens (surrounding whitespace is trimmed). When set, the device-facing routes (streams, OFREP, /v1/evaluate, /v1/users/{userId}/flags, /v1/flags/{key}/explain) require Authorization: Bearer <JWT>, whose userId, orgId, role, deviceId and deviceClass claims replace the request's. Empty leaves them open to anyone who can reach the address.")
	fs.StringVar(&d.corsOrigins, "cors-allowed-origins", "",
		"Comma-separated origins browsers may call the evaluator from, or * for any. Empty disables CORS.")
	fs.IntVar(&d.maxSubscribers, "max-subscribers", defaultMaxSubscribers,
		"Most event streams (/v1/stream, /ofrep/v1/sse) open at once; beyond it new ones get 503 with Retry-After. 0 means no cap.")
}

// defaultMaxSubscribers bounds the open streams, and so the file descriptors and memory
// (about 30 KiB each) they hold, well above the 10,000 the fan-out benchmark runs.
const defaultMaxSubscribers = 50000

// load reads the token key file and splits the CORS origins.
func (d *deviceAccess) load() error {
	if d.maxSubscribers < 0 {
		return fmt.Errorf("--max-subscribers: %d is negative; use 0 for no cap", d.maxSubscribers)
	}
	if d.tokenKeyFile != "" {
		b, err := os.ReadFile(d.tokenKeyFile)
		if err != nil {
			return fmt.Errorf("--context-token-key-file: %w", err)
		}
		key := bytes.TrimSpace(b)
		if len(key) == 0 {
			return fmt.Errorf("--context-token-key-file: %s is empty; it must hold the HS256 secret", d.tokenKeyFile)
		}
		d.tokenKey = key
	}
	d.origins = nil
	if strings.TrimSpace(d.corsOrigins) == "" {
		return nil
	}
	for o := range strings.SplitSeq(d.corsOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			return fmt.Errorf("--cors-allowed-origins: empty origin in %q", d.corsOrigins)
		}
		d.origins = append(d.origins, o)
	}
	return nil
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
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", "0",
		"Address a separate /healthz and /readyz probe server binds to, e.g. :8081, for when the evaluator binds to localhost only. Use 0 to disable it; the evaluator serves both paths too.")
	o.zap.BindFlags(fs)
	if err := parseCommand(fs, "Usage: flagops sidecar [flags]\n\nServe the flags and overrides of one namespace from an in-memory evaluator, next to an application.\n\n", args, stdout, stderr); err != nil {
		return nil, err
	}
	if o.evaluatorAddr == "" || o.evaluatorAddr == "0" {
		return nil, errors.New("--evaluator-bind-address: the sidecar needs an address to serve on")
	}
	if err := o.access.load(); err != nil {
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
		fmt.Fprintf(stderr, "flagops sidecar: %v\n", err)
		return 2
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
	}, ln)
}

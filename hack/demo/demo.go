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

// Command demo runs flagops on a local control plane, for `make demo`: the self-built
// kube-apiserver and etcd (hack/setup-envtest.sh), the CRDs, the admission policy and the
// webhooks, the flagops manager and the flagops evaluator as processes (as in a cluster,
// the manager serves no devices; the evaluator does), and the samples. It prints
// ready-to-paste commands and runs until Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// options configure a demo run.
type options struct {
	// root is the repository root.
	root string
	// evaluatorPort is the evaluator's local port; probePort the manager's. 0 picks a free
	// port just before the process starts (after the control plane has taken its own).
	evaluatorPort, probePort int
	// namespace receives the samples.
	namespace string
	// out receives the instructions; logs receives the processes' output.
	out, logs io.Writer
}

// demo is a running demo.
type demo struct {
	env *envtest.Environment
	// manager and evaluator are the flagops processes.
	manager, evaluator *process
	// exited is closed when the first of them has exited.
	exited     chan struct{}
	exitOnce   sync.Once
	kubeconfig string
	workDir    string
	// evaluatorPort and probePort are the ports in use.
	evaluatorPort, probePort int
}

// Free ports are picked in [freePortMin, freePortMin+freePortCount), below the ranges the
// kernel assigns to sockets that do not name a port (from 32768 on Linux, 49152 on macOS),
// so that no outgoing connection of another process takes the port first.
const (
	freePortMin   = 20000
	freePortCount = 12000
)

// port returns p, or a free local port when p is 0. A port found free may still be taken
// before the process binds it, but only by a process that names it: picking it only just
// before the start keeps that window small, and waitReady reports the process's exit if it
// happens.
func port(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	var err error
	for range 100 {
		candidate := freePortMin + mrand.IntN(freePortCount)
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(candidate)); err == nil {
			_ = ln.Close()
			return candidate, nil
		}
	}
	return 0, fmt.Errorf("failed to find a free port from %d to %d: %w", freePortMin, freePortMin+freePortCount-1, err)
}

// process is a running flagops process.
type process struct {
	name string
	cmd  *exec.Cmd
	// exited is closed when the process has exited, with err set.
	exited chan struct{}
	err    error
}

// run starts bin with args as the demo's process name.
func (d *demo) run(name, bin string, logs io.Writer, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig)
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
		d.exitOnce.Do(func() { close(d.exited) })
	}()
	return p, nil
}

// firstExited returns the process that has exited, if any.
func (d *demo) firstExited() *process {
	for _, p := range []*process{d.manager, d.evaluator} {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			return p
		default:
		}
	}
	return nil
}

// start brings the demo up and returns once the manager is ready and the samples applied.
func start(ctx context.Context, o options) (d *demo, err error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make demo`, which builds the control plane first")
	}
	d = &demo{exited: make(chan struct{})}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	if d.workDir, err = os.MkdirTemp("", "flagops-demo-"); err != nil {
		return d, fmt.Errorf("failed to create a work directory: %w", err)
	}

	bin := filepath.Join(d.workDir, "flagops")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/flagops")
	build.Dir, build.Stdout, build.Stderr = o.root, o.logs, o.logs
	if err := build.Run(); err != nil {
		return d, fmt.Errorf("failed to build flagops: %w", err)
	}

	d.env = testenv.New(o.root)
	d.env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(o.root, "config", "webhook")}}
	cfg, err := d.env.Start()
	if err != nil {
		return d, fmt.Errorf("failed to start the control plane: %w", err)
	}
	admin, err := d.env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return d, fmt.Errorf("failed to add the demo user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return d, fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	d.kubeconfig = filepath.Join(d.workDir, "kubeconfig")
	if err := os.WriteFile(d.kubeconfig, kubeconfig, 0o600); err != nil {
		return d, fmt.Errorf("failed to write the kubeconfig: %w", err)
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return d, err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return d, err
	}
	c, err := client.New(admin.Config(), client.Options{Scheme: scheme})
	if err != nil {
		return d, fmt.Errorf("failed to create a client: %w", err)
	}
	if err := testenv.InstallPolicies(ctx, c, o.root); err != nil {
		return d, err
	}

	// The webhooks sign the audit actor stamps with a key of the demo's own (docs/audit.md).
	stampKey := filepath.Join(d.workDir, "audit-stamp-key")
	if err := testenv.WriteStampKey(stampKey); err != nil {
		return d, err
	}

	wh := d.env.WebhookInstallOptions
	if d.probePort, err = port(o.probePort); err != nil {
		return d, err
	}
	// The manager serves no evaluator (its default): the evaluator does, below.
	d.manager, err = d.run("manager", bin, o.logs, "manager",
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(d.probePort),
		"--webhook-port="+strconv.Itoa(wh.LocalServingPort),
		"--webhook-cert-dir="+wh.LocalServingCertDir,
		// envtest made the serving certificate and put its CA into the webhook configurations.
		"--webhook-certs=external",
		"--audit-sink=file:"+filepath.Join(d.workDir, "audit.ndjson"),
		"--audit-stamp-key-file="+stampKey,
	)
	if err != nil {
		return d, err
	}
	if err := waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(d.probePort)+"/readyz", d); err != nil {
		return d, err
	}
	// The evaluator answers /readyz on its own listener once its initial sync is done.
	if d.evaluatorPort, err = port(o.evaluatorPort); err != nil {
		return d, err
	}
	d.evaluator, err = d.run("evaluator", bin, o.logs, "evaluator",
		"--evaluator-bind-address=127.0.0.1:"+strconv.Itoa(d.evaluatorPort),
		"--health-probe-bind-address=0",
		"--default-namespace="+o.namespace,
		// A local demo on loopback: no context tokens (docs/security.md).
		"--insecure-no-auth",
	)
	if err != nil {
		return d, err
	}
	if err := waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(d.evaluatorPort)+"/readyz", d); err != nil {
		return d, err
	}

	files, err := testenv.YAMLFiles(filepath.Join(o.root, "config", "samples"))
	if err != nil {
		return d, err
	}
	objs, err := testenv.ReadObjects(files...)
	if err != nil {
		return d, err
	}
	// The webhooks check overrides against flags, so flags go first; the manager's cache may
	// take a moment to see a new flag, so each object is retried briefly.
	for _, kind := range []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"} {
		for _, obj := range objs {
			if obj.GetKind() != kind {
				continue
			}
			obj.SetNamespace(o.namespace)
			if err := retry(ctx, func() error { return client.IgnoreAlreadyExists(c.Create(ctx, obj)) }); err != nil {
				return d, fmt.Errorf("failed to apply sample %s %s: %w", kind, obj.GetName(), err)
			}
		}
	}
	return d, nil
}

// waitReady polls url until it answers 200, a process of the demo exits, or ctx ends.
func waitReady(ctx context.Context, url string, d *demo) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			// Only the status matters; a body that fails to close costs a connection, not
			// the answer.
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.exited:
			p := d.firstExited()
			return fmt.Errorf("the %s exited before %s was ready: %v", p.name, url, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%s was not ready within 2 minutes", url)
		case <-tick.C:
		}
	}
}

func retry(ctx context.Context, f func() error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var err error
	for range 50 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return err
}

// stop stops the evaluator, the manager and the control plane, and removes the work
// directory.
func (d *demo) stop() {
	for _, p := range []*process{d.evaluator, d.manager} {
		if p == nil {
			continue
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if d.env != nil {
		_ = d.env.Stop()
	}
	if d.workDir != "" {
		_ = os.RemoveAll(d.workDir)
	}
}

// instructions are the commands printed once the demo is up.
func (d *demo) instructions(o options) string {
	base := "http://127.0.0.1:" + strconv.Itoa(d.evaluatorPort)
	return fmt.Sprintf(`
flagops demo is running: a local kube-apiserver and etcd, the flagops CRDs, admission policy
and webhooks, the manager, the evaluator (which serves the commands below), and the samples
in namespace %[2]q. The evaluator runs with --insecure-no-auth on loopback; in a cluster it
needs context tokens (docs/security.md).

  export KUBECONFIG=%[3]s        # for kubectl, if you have it

Evaluate every flag for a user (user-42 has a user override; staff-ada is allow-listed):
  curl -s %[1]s/v1/evaluate -d '{"context":{"userId":"user-42","role":"user"}}'

The user's effective flags, with the source, expiry and reason of each override:
  curl -s '%[1]s/v1/users/user-42/flags?role=user'
  curl -s '%[1]s/v1/devices/tablet-7f3a/flags?deviceClass=tablet&userId=user-42&role=user'

OFREP, as an OpenFeature provider sees it:
  curl -s %[1]s/ofrep/v1/evaluate/flags/billing.enabled -d '{"context":{"targetingKey":"staff-ada"}}'

Why a value was served:
  curl -s '%[1]s/v1/flags/checkout.layout/explain?userId=u1&role=user&attr.email=ada@flagops.dev'

A device's live stream (then change a flag, e.g. with kubectl patch, and watch it arrive):
  curl -N '%[1]s/v1/stream?userId=user-42&deviceId=tablet-7f3a&deviceClass=tablet'

Audit records are written to %[4]s.
Press Ctrl-C to stop.
`, base, o.namespace, d.kubeconfig, filepath.Join(d.workDir, "audit.ndjson"))
}

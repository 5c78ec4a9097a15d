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
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flagops/flagops/test/testenv"
)

// plane is the control plane, a kube-apiserver and etcd from KUBEBUILDER_ASSETS started by
// envtest with a fixed certificate directory and data directory, so that either can be
// stopped and started again on the same ports with the same certificates and data.
type plane struct {
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig string
	logs       []*os.File
}

// startPlane starts the control plane; with webhooks, envtest installs config/webhook, its
// configurations pointed at a local address (see webhookSetup) with a CA of its own.
func startPlane(root, dir string, webhooks bool) (*plane, error) {
	p := &plane{env: testenv.New(root)}
	if webhooks {
		p.env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}}
	}
	apiLog, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	etcdLog, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	p.logs = []*os.File{apiLog, etcdLog}
	for _, d := range []string{"apiserver", "etcd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	p.env.ControlPlane.APIServer = &envtest.APIServer{CertDir: filepath.Join(dir, "apiserver"), Out: apiLog, Err: apiLog}
	p.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(dir, "etcd"), Out: etcdLog, Err: etcdLog}
	p.env.ControlPlaneStartTimeout, p.env.ControlPlaneStopTimeout = 2*time.Minute, 20*time.Second
	if p.cfg, err = p.env.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the control plane: %w", err)
	}
	user, err := p.env.AddUser(envtest.User{Name: adminUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return p, fmt.Errorf("failed to add the kubeconfig user: %w", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return p, fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	p.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(p.kubeconfig, b, 0o600); err != nil {
		return p, err
	}
	p.cfg = rest.CopyConfig(user.Config())
	return p, nil
}

// webhookSetup is what the replicas and the proxy need to serve the admission webhooks.
type webhookSetup struct {
	// addr is where the webhook configurations send the API server's calls: the proxy's
	// address.
	addr string
	// certDir holds the serving certificate (tls.crt, tls.key) that envtest made, signed
	// by the CA in the configurations.
	certDir string
	// stampKey is the file of the audit stamp key, shared by the replicas.
	stampKey string
}

// webhookSetup writes the audit stamp key and returns where the webhooks are served.
func (p *plane) webhookSetup(dir string) (*webhookSetup, error) {
	wh := p.env.WebhookInstallOptions
	key := filepath.Join(dir, "audit-stamp-key")
	if err := testenv.WriteStampKey(key); err != nil {
		return nil, err
	}
	return &webhookSetup{addr: net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort)), certDir: wh.LocalServingCertDir, stampKey: key}, nil
}

// restartAPIServer stops the API server (SIGTERM; SIGKILL when it has not exited after
// 20 s) and starts it again on its port. It reports whether the stop was graceful.
func (p *plane) restartAPIServer() (bool, error) {
	api := p.env.ControlPlane.GetAPIServer()
	graceful, err := stopProcess("kube-apiserver", api.Stop)
	if err != nil {
		return graceful, err
	}
	if err := api.Start(); err != nil {
		return graceful, fmt.Errorf("failed to start the API server again: %w", err)
	}
	return graceful, nil
}

// restartEtcd stops etcd (as restartAPIServer stops the API server) and starts it again on
// its ports and data directory.
func (p *plane) restartEtcd() (bool, error) {
	graceful, err := stopProcess("etcd", p.env.ControlPlane.Etcd.Stop)
	if err != nil {
		return graceful, err
	}
	if err := p.env.ControlPlane.Etcd.Start(); err != nil {
		return graceful, fmt.Errorf("failed to start etcd again: %w", err)
	}
	return graceful, nil
}

// stopProcess calls stop, which sends SIGTERM and, after the stop timeout, SIGKILL (and
// then fails), and waits until the process named name is gone.
func stopProcess(name string, stop func() error) (graceful bool, err error) {
	pid := childPID(name)
	err = stop()
	if err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		return false, fmt.Errorf("failed to stop %s: %w", name, err)
	}
	for range 300 {
		if pid == 0 || childPID(name) != pid {
			return err == nil, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, pid)
}

func (p *plane) stop() error {
	err := p.env.Stop()
	for _, f := range p.logs {
		_ = f.Close()
	}
	return err
}

// childPID returns the process of this one whose command's base name is name (the current
// kube-apiserver or etcd), or 0.
func childPID(name string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || filepath.Base(strings.SplitN(string(cmd), "\x00", 2)[0]) != name {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	return 0
}

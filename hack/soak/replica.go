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
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replica is one `flagops manager` process with leader election, on fixed loopback ports,
// started again by its supervisor whenever it exits (killed by a fault, or after losing
// its lease, which makes a manager exit) until the run stops.
type replica struct {
	index                     int
	bin, kubeconfig, dir      string
	probe, metrics, evaluator string // host:port
	webhook                   string // host:port; empty without the webhooks
	args                      []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	starts   int
	exits    []string // how each process ended
	stopping bool
	paused   bool
}

// newReplica prepares replica index; with wh, it serves the admission webhooks on a port of
// its own (the proxy in front of the replicas stands in for their Service).
func newReplica(index int, bin, kubeconfig, dir, sink string, wh *webhookSetup) (*replica, error) {
	r := &replica{index: index, bin: bin, kubeconfig: kubeconfig, dir: dir}
	addrs := []*string{&r.probe, &r.metrics, &r.evaluator}
	if wh != nil {
		addrs = append(addrs, &r.webhook)
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("failed to find a free port: %w", err)
		}
		*a = ln.Addr().String()
		_ = ln.Close()
	}
	spool := filepath.Join(dir, fmt.Sprintf("spool-%d", index))
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, err
	}
	webhookArgs := []string{"--enable-webhooks=false"}
	if wh != nil {
		_, port, _ := net.SplitHostPort(r.webhook) // from a listener's address
		webhookArgs = []string{"--enable-webhooks=true", "--webhook-certs=external", "--webhook-port=" + port,
			"--webhook-cert-dir=" + wh.certDir, "--audit-stamp-key-file=" + wh.stampKey}
	}
	r.args = append([]string{"manager", "--leader-elect", "--leader-election-namespace=" + leaseNS}, webhookArgs...)
	r.args = append(r.args, "--health-probe-bind-address="+r.probe, "--metrics-bind-address="+r.metrics, "--metrics-secure=false",
		"--evaluator-bind-address="+r.evaluator, "--insecure-no-auth", "--default-namespace="+soakNS,
		"--max-subscribers="+strconv.Itoa(maxSubscribers), "--audit-sink="+sink, "--audit-spool-dir="+spool)
	return r, nil
}

func (r *replica) name() string { return fmt.Sprintf("manager-%d", r.index) }

// start starts the process; the caller holds no lock.
func (r *replica) start() error {
	log, err := os.OpenFile(filepath.Join(r.dir, r.name()+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+r.kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("failed to start %s: %w", r.name(), err)
	}
	exited := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.exited, r.paused = cmd, exited, false
	r.starts++
	r.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = log.Close()
		r.mu.Lock()
		r.exits = append(r.exits, fmt.Sprint(err))
		r.mu.Unlock()
		close(exited)
	}()
	return nil
}

// supervise starts the process again whenever it exits, until ctx ends.
func (r *replica) supervise(ctx context.Context, logf func(string, ...any)) {
	for {
		r.mu.Lock()
		exited := r.exited
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-exited:
		}
		r.mu.Lock()
		stopping, last := r.stopping, r.exits[len(r.exits)-1]
		r.mu.Unlock()
		if stopping {
			return
		}
		logf("%s exited (%s); starting it again in 2 s", r.name(), last)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			err := r.start()
			if err == nil {
				break
			}
			logf("%s: %v", r.name(), err)
		}
	}
}

func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	select {
	case <-r.exited:
		return 0
	default:
		return r.cmd.Process.Pid
	}
}

// signal sends sig to the current process.
func (r *replica) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return fmt.Errorf("%s is not running", r.name())
	}
	switch sig {
	case syscall.SIGSTOP:
		r.paused = true
	case syscall.SIGCONT:
		r.paused = false
	}
	return r.cmd.Process.Signal(sig)
}

// stop ends the process for good: SIGCONT in case it is paused, SIGTERM, and SIGKILL after
// 20 s.
func (r *replica) stop() {
	r.mu.Lock()
	r.stopping = true
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// metricsText returns the replica's Prometheus metrics, with a short timeout (a paused
// replica does not answer).
func (r *replica) metricsText(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.metrics+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metrics of %s: %s %v", r.name(), resp.Status, err)
	}
	return string(b), nil
}

// gauge returns the value of the first sample of metric in a Prometheus text exposition
// whose line starts with metric (and optional labels), or false.
func gauge(text, metric string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, metric) {
			continue
		}
		rest := line[len(metric):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// isLeader reports whether the replica says it leads (controller-runtime's
// leader_election_master_status).
func (r *replica) isLeader(ctx context.Context) bool {
	text, err := r.metricsText(ctx)
	if err != nil {
		return false
	}
	v, ok := gauge(text, "leader_election_master_status")
	return ok && v == 1
}

// ready reports whether the replica's evaluator answers /readyz with 200.
func (r *replica) ready(ctx context.Context) bool {
	return getOK(ctx, "http://"+r.evaluator+"/readyz", 3*time.Second)
}

// probeReady reports whether the replica's probe server answers /readyz with 200 within a
// second, as a kubelet's readiness probe asks: it includes the webhook server's.
func (r *replica) probeReady(ctx context.Context) bool {
	return getOK(ctx, "http://"+r.probe+"/readyz", time.Second)
}

// getOK reports whether a GET of url answers 200 within timeout.
func getOK(ctx context.Context, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

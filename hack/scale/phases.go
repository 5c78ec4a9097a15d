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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/atomicfile"
)

const (
	scaleNS = "scale"
	// probeDevice is the device whose stream the leader phase watches: it has no override,
	// so the only events it gets are those of flag changes.
	probeDevice = "scale-probe"
)

// flagKey is the key (and name) of flag i.
func flagKey(flags, i int) string { return fmt.Sprintf("scale.flag-%03d", i%flags) }

// overrideEntries are the entries of override i: flag i on and flag i+1 off.
func overrideEntries(flags, i int) v1.FlagOverrideSpec {
	return v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{
		{Key: flagKey(flags, i), Enabled: ptr.To(true)},
		{Key: flagKey(flags, i+1), Enabled: ptr.To(false)},
	}}
}

// harness holds the control plane's clients and what the processes need.
type harness struct {
	p                    params
	c                    client.Client
	cs                   kubernetes.Interface
	bin, kubeconfig, dir string
	// managerArgs are the manager's webhook flags: --enable-webhooks=false unless -webhooks.
	managerArgs []string
}

func newHarness(cfg *rest.Config, p params, bin, kubeconfig, dir string) (*harness, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create the clientset: %w", err)
	}
	return &harness{p: p, c: c, cs: cs, bin: bin, kubeconfig: kubeconfig, dir: dir, managerArgs: []string{"--enable-webhooks=false"}}, nil
}

// prepare creates the namespace and the flags: flag i is on when i is even.
func (h *harness) prepare(ctx context.Context) error {
	if err := h.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS}}); err != nil {
		return fmt.Errorf("failed to create namespace %s: %w", scaleNS, err)
	}
	for i := range h.p.Flags {
		f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: flagKey(h.p.Flags, i)},
			Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: i%2 == 0}}
		if err := h.c.Create(ctx, f); err != nil {
			return fmt.Errorf("failed to create flag %s: %w", f.Name, err)
		}
	}
	return nil
}

// populated is the result of creating the overrides.
type populated struct {
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
}

// populate creates the user overrides, then the device overrides, from p.Workers workers:
// override i has two entries, flag i on and flag i+1 off. halfway, when not nil, is called
// once half of them are created.
func (h *harness) populate(ctx context.Context, halfway func()) (*populated, error) {
	total := int64(h.p.Users + h.p.Devices)
	var next, done atomic.Int64
	var once sync.Once
	errs := make(chan error, h.p.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	for range h.p.Workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if int64(i) >= total {
					return
				}
				var o client.Object
				if i < h.p.Users {
					o = &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: fmt.Sprintf("user-%06d", i)},
						Spec: v1.UserFlagOverrideSpec{UserID: fmt.Sprintf("user-%06d", i), FlagOverrideSpec: overrideEntries(h.p.Flags, i)}}
				} else {
					i -= h.p.Users
					o = &v1.DeviceFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: fmt.Sprintf("device-%06d", i)},
						Spec: v1.DeviceFlagOverrideSpec{DeviceID: fmt.Sprintf("device-%06d", i), FlagOverrideSpec: overrideEntries(h.p.Flags, i)}}
				}
				if err := h.c.Create(ctx, o); err != nil {
					errs <- fmt.Errorf("failed to create %s: %w", o.GetName(), err)
					return
				}
				if done.Add(1) == total/2 && halfway != nil {
					once.Do(func() { go halfway() })
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return &populated{Seconds: took.Seconds(), PerSecond: float64(total) / took.Seconds()}, nil
}

// ---- leader ----

type leaderResult struct {
	CountedSeconds    float64          `json:"countedSeconds"`
	AuditedSeconds    float64          `json:"auditedSeconds"`
	ReconciledSeconds float64          `json:"reconciledSeconds"`
	QuietSeconds      float64          `json:"quietSeconds"`
	AuditRecords      int64            `json:"auditRecords"`
	FlipSeconds       float64          `json:"flipSeconds"`
	FlipWithin1s      bool             `json:"flipWithin1s"`
	FlipAt            float64          `json:"flipAtFraction"`
	ClientRequests    map[string]int64 `json:"clientRequests"`
	APIServerRequests map[string]int64 `json:"apiserverRequests"`
	RSSMB             float64          `json:"rssMB"`
	PeakRSSMB         float64          `json:"peakRSSMB"`
	// CPUSeconds is the CPU time (user and system) of the API server, etcd and the manager
	// from just before the first create until quiet: less sensitive to the machine's other
	// load than the times are.
	CPUSeconds map[string]float64 `json:"cpuSeconds"`
}

// leader runs the import with a manager running and measures its work.
func (h *harness) leader(ctx context.Context) (*leaderResult, *populated, error) {
	auditFile := filepath.Join(h.dir, "audit-leader.jsonl")
	mgr, addrs, err := h.startManager("manager-leader", "--audit-sink=file:"+auditFile)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err := mgr.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
		}
	}()
	if _, err := mgr.waitReady(ctx, "http://"+addrs.probe+"/readyz"); err != nil {
		return nil, nil, err
	}
	if h.p.Webhooks {
		if err := h.prepare(ctx); err != nil {
			return nil, nil, err
		}
	}
	audits := &lineCounter{path: auditFile}
	// The flags' own records, once the manager has caught up with them.
	if err := waitFor(ctx, func() (bool, error) { n, err := audits.count(); return n >= int64(h.p.Flags), err }); err != nil {
		return nil, nil, fmt.Errorf("the flags were never audited: %w", err)
	}
	stream, err := openStream(ctx, "http://"+addrs.evaluator+"/namespaces/"+scaleNS+"/v1/stream?deviceId="+probeDevice+"&deviceClass=phone")
	if err != nil {
		return nil, nil, err
	}
	defer stream.close()
	before, err := apiserverRequests(ctx, h.cs)
	if err != nil {
		return nil, nil, err
	}
	mgrBefore, err := scrape("http://" + addrs.metrics + "/metrics")
	if err != nil {
		return nil, nil, err
	}

	res := &leaderResult{}
	pids := map[string]int{"manager": mgr.cmd.Process.Pid}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if pids[name], err = childPID(name); err != nil {
			return nil, nil, err
		}
	}
	cpu0, err := cpuSeconds(pids)
	if err != nil {
		return nil, nil, err
	}
	flip := flagKey(h.p.Flags, 0)
	flipDone := make(chan error, 1)
	fmt.Fprintf(os.Stderr, "scale: creating %d user and %d device overrides with the manager running\n", h.p.Users, h.p.Devices)
	var profDone chan error
	if h.p.ProfileDir != "" {
		// The API server's CPU profile of the import's first 60 s.
		profDone = make(chan error, 1)
		go func() {
			profDone <- h.apiserverProfile(ctx, 60*time.Second, filepath.Join(h.p.ProfileDir, "apiserver-import.cpu.pprof"))
		}()
	}
	start := time.Now()
	pop, err := h.populate(ctx, func() {
		res.FlipAt = time.Since(start).Seconds()
		took, err := h.flipFlag(ctx, flip, stream)
		res.FlipSeconds, res.FlipWithin1s = took.Seconds(), err == nil && took <= time.Second
		flipDone <- err
	})
	if err != nil {
		return nil, nil, err
	}
	if res.FlipAt > 0 {
		res.FlipAt /= pop.Seconds
	}
	if err := <-flipDone; err != nil {
		return nil, pop, err
	}
	if profDone != nil {
		if err := <-profDone; err != nil {
			return nil, pop, err
		}
	}
	fmt.Fprintf(os.Stderr, "scale: created in %.1f s; waiting for the manager to be quiet\n", pop.Seconds)

	counted, lastList := false, time.Time{}
	want := int64(h.p.Flags + h.p.Users + h.p.Devices + 1) // a record per object, and the flip
	err = waitFor(ctx, func() (bool, error) {
		if !counted {
			ok, err := h.allCounted(ctx)
			if err != nil || !ok {
				return false, err
			}
			counted, res.CountedSeconds = true, time.Since(start).Seconds()
		}
		if res.AuditedSeconds == 0 {
			n, err := audits.count()
			if err != nil || n < want {
				return false, err
			}
			res.AuditRecords, res.AuditedSeconds = n, time.Since(start).Seconds()
		}
		// Listing every override is heavy for the API server: at most every 5 s.
		if time.Since(lastList) < 5*time.Second {
			return false, nil
		}
		lastList = time.Now()
		left, err := h.unreconciled(ctx)
		if err != nil || left > 0 {
			return false, err
		}
		res.ReconciledSeconds = time.Since(start).Seconds()
		return true, nil
	})
	if err != nil {
		return nil, pop, fmt.Errorf("the manager never went quiet (counted %t, %d audit records of %d): %w", counted, audits.n, want, err)
	}
	res.QuietSeconds = max(res.CountedSeconds, res.AuditedSeconds, res.ReconciledSeconds)
	cpu1, err := cpuSeconds(pids)
	if err != nil {
		return nil, pop, err
	}
	res.CPUSeconds = map[string]float64{}
	for name := range pids {
		res.CPUSeconds[name] = cpu1[name] - cpu0[name]
	}
	res.RSSMB, res.PeakRSSMB = mgr.memMB()
	if h.p.ProfileDir != "" {
		if err := fetchProfile(ctx, "http://"+addrs.pprof+"/debug/pprof/heap?gc=1", filepath.Join(h.p.ProfileDir, "manager-quiet.heap.pprof")); err != nil {
			return nil, pop, err
		}
	}
	after, err := apiserverRequests(ctx, h.cs)
	if err != nil {
		return nil, pop, err
	}
	mgrAfter, err := scrape("http://" + addrs.metrics + "/metrics")
	if err != nil {
		return nil, pop, err
	}
	res.APIServerRequests = diff(after, before)
	res.ClientRequests = diff(counters(mgrAfter, "rest_client_requests_total", "method"), counters(mgrBefore, "rest_client_requests_total", "method"))
	return res, pop, nil
}

// cpuSeconds reads the CPU time of each process of pids.
func cpuSeconds(pids map[string]int) (map[string]float64, error) {
	out := map[string]float64{}
	for name, pid := range pids {
		s, err := procCPUSeconds(pid)
		if err != nil {
			return nil, fmt.Errorf("failed to read the CPU time of %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// allCounted reports whether the flags' status counts every override: each override names
// two flags.
func (h *harness) allCounted(ctx context.Context) (bool, error) {
	var flags v1.FeatureFlagList
	if err := h.c.List(ctx, &flags, client.InNamespace(scaleNS)); err != nil {
		return false, fmt.Errorf("failed to list the flags: %w", err)
	}
	var users, devices int64
	for _, f := range flags.Items {
		users += int64(f.Status.UserOverrides)
		devices += int64(f.Status.DeviceOverrides)
	}
	return users == 2*int64(h.p.Users) && devices == 2*int64(h.p.Devices), nil
}

// unreconciled returns how many overrides the override controller has yet to reconcile:
// without the audit finalizer, or with a status of an older generation. It lists them in
// pages of 5,000; the leader phase does so at most every 5 s, which is the resolution of
// its reconciled time.
func (h *harness) unreconciled(ctx context.Context) (int, error) {
	left := 0
	check := func(obj metav1.Object, observed int64) {
		if !controllerutil.ContainsFinalizer(obj.(client.Object), v1.FinalizerAudit) || observed != obj.GetGeneration() {
			left++
		}
	}
	for _, list := range []client.ObjectList{&v1.UserFlagOverrideList{}, &v1.DeviceFlagOverrideList{}} {
		cont := ""
		for {
			if err := h.c.List(ctx, list, client.InNamespace(scaleNS), client.Limit(5000), client.Continue(cont)); err != nil {
				return 0, fmt.Errorf("failed to list the overrides: %w", err)
			}
			switch l := list.(type) {
			case *v1.UserFlagOverrideList:
				for i := range l.Items {
					check(&l.Items[i], l.Items[i].Status.ObservedGeneration)
				}
			case *v1.DeviceFlagOverrideList:
				for i := range l.Items {
					check(&l.Items[i], l.Items[i].Status.ObservedGeneration)
				}
			}
			if cont = list.(metav1.ListInterface).GetContinue(); cont == "" {
				break
			}
		}
	}
	return left, nil
}

// flipFlag turns flag key off (it is on) and returns the time from just before the patch
// until the stream has an event naming it.
func (h *harness) flipFlag(ctx context.Context, key string, s *stream) (time.Duration, error) {
	f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: key}}
	start := time.Now()
	if err := h.c.Patch(ctx, f, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"enabled":false}}`))); err != nil {
		return 0, fmt.Errorf("failed to flip flag %s: %w", key, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.waitFor(waitCtx, `"`+key+`"`); err != nil {
		return time.Since(start), fmt.Errorf("the change of flag %s never reached the device stream: %w", key, err)
	}
	return time.Since(start), nil
}

// ---- cold ----

type coldResult struct {
	Kind         string  `json:"kind"`
	ReadySeconds float64 `json:"readySeconds"`
	// CPUSecondsAtReady is the CPU time (user and system) the process used until Ready:
	// unlike ReadySeconds, it does not grow with the machine's load.
	CPUSecondsAtReady float64 `json:"cpuSecondsAtReady"`
	RSSAtReadyMB      float64 `json:"rssAtReadyMB"`
	PeakRSSMB         float64 `json:"peakRSSMB"`
	SteadyRSSMB       float64 `json:"steadyRSSMB"`
	// Load is what the clients of -settle-load sent while an evaluator settled.
	Load              *servingLoad     `json:"load,omitempty"`
	ClientRequests    map[string]int64 `json:"clientRequests"`
	APIServerRequests map[string]int64 `json:"apiserverRequests"`
}

// cold starts a manager or an evaluator against the objects and measures its start.
func (h *harness) cold(ctx context.Context, kind string) (*coldResult, error) {
	before, err := apiserverRequests(ctx, h.cs)
	if err != nil {
		return nil, err
	}
	var p *proc
	var addrs addrs
	var readyURL string
	if kind == "manager" {
		p, addrs, err = h.startManager("manager-cold", "--audit-sink=file:"+filepath.Join(h.dir, "audit-cold.jsonl"))
		readyURL = "http://" + addrs.probe + "/readyz"
	} else {
		p, addrs, err = h.startEvaluator("evaluator-cold")
		readyURL = "http://" + addrs.evaluator + "/readyz"
	}
	if err != nil {
		return nil, err
	}
	var cpuDone chan error
	if kind == "evaluator" && h.p.ProfileDir != "" {
		// The CPU profile of the start: its first 30 s.
		cpuDone = make(chan error, 1)
		go func() {
			cpuDone <- fetchProfile(ctx, "http://"+addrs.pprof+"/debug/pprof/profile?seconds=30", filepath.Join(h.p.ProfileDir, "evaluator-start.cpu.pprof"))
		}()
	}
	defer func() {
		if err := p.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
		}
	}()
	ready, err := p.waitReady(ctx, readyURL)
	if err != nil {
		return nil, err
	}
	res := &coldResult{Kind: kind, ReadySeconds: ready.Seconds()}
	if cpu, err := p.cpu(); err == nil {
		res.CPUSecondsAtReady = cpu.Seconds()
	}
	res.RSSAtReadyMB, _ = p.memMB()
	text, err := scrape("http://" + addrs.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	res.ClientRequests = counters(text, "rest_client_requests_total", "method")
	after, err := apiserverRequests(ctx, h.cs)
	if err != nil {
		return nil, err
	}
	res.APIServerRequests = diff(after, before)
	fmt.Fprintf(os.Stderr, "scale: %s ready in %.1f s; settling for %s\n", kind, ready.Seconds(), h.p.Settle)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan *servingLoad, 1)
	if kind == "evaluator" && h.p.SettleLoad > 0 {
		go func() { loaded <- evaluate(loadCtx, "http://"+addrs.evaluator, h.p.SettleLoad, h.p.Users, h.p.Flags) }()
	}
	select {
	case <-ctx.Done():
		stopLoad()
		return nil, ctx.Err()
	case <-p.exited:
		stopLoad()
		return nil, fmt.Errorf("%s exited: %v (see its log)", kind, p.waitErr)
	case <-time.After(h.p.Settle):
	}
	res.SteadyRSSMB, res.PeakRSSMB = p.memMB()
	stopLoad()
	if kind == "evaluator" && h.p.SettleLoad > 0 {
		res.Load = <-loaded
	}
	if cpuDone != nil {
		if err := <-cpuDone; err != nil {
			return nil, err
		}
		if err := fetchProfile(ctx, "http://"+addrs.pprof+"/debug/pprof/heap?gc=1", filepath.Join(h.p.ProfileDir, "evaluator-steady.heap.pprof")); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// apiserverProfile writes the API server's CPU profile of the next d to path.
func (h *harness) apiserverProfile(ctx context.Context, d time.Duration, path string) error {
	b, err := h.cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("failed to read the API server's CPU profile: %w", err)
	}
	return atomicfile.Write(path, b, 0o644)
}

// fetchProfile writes what a pprof endpoint answers to path, retrying until the endpoint
// listens.
func fetchProfile(ctx context.Context, url, path string) error {
	var b []byte
	err := waitFor(ctx, func() (bool, error) {
		var err error
		b, err = scrapeBytes(url)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("failed to read the profile %s: %w", url, err)
	}
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("failed to write the profile: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// ---- processes ----

type addrs struct{ probe, metrics, evaluator, pprof string }

func freeAddrs() (addrs, error) {
	var a addrs
	var err error
	for _, s := range []*string{&a.probe, &a.metrics, &a.evaluator, &a.pprof} {
		if *s, err = freeAddr(); err != nil {
			return a, err
		}
	}
	return a, nil
}

// startManager starts `flagops manager` as a developer runs it outside the cluster: no
// webhooks (unless -webhooks), plain-HTTP metrics, and its evaluator server open on
// loopback.
func (h *harness) startManager(name string, extra ...string) (*proc, addrs, error) {
	a, err := freeAddrs()
	if err != nil {
		return nil, a, err
	}
	args := append(append([]string{"manager"}, h.managerArgs...),
		"--health-probe-bind-address="+a.probe, "--metrics-bind-address="+a.metrics, "--metrics-secure=false",
		"--evaluator-bind-address="+a.evaluator, "--insecure-no-auth", "--default-namespace="+scaleNS)
	if h.p.LeaderElect {
		args = append(args, "--leader-elect", "--leader-election-namespace=default")
	}
	if h.p.ProfileDir != "" {
		args = append(args, "--pprof-bind-address="+a.pprof)
	}
	args = append(args, extra...)
	p, err := startProc(name, h.bin, h.kubeconfig, h.dir, nil, args...)
	return p, a, err
}

// startEvaluator starts `flagops evaluator`, the read-only mode, over every namespace.
func (h *harness) startEvaluator(name string) (*proc, addrs, error) {
	a, err := freeAddrs()
	if err != nil {
		return nil, a, err
	}
	args := []string{"evaluator", "--health-probe-bind-address=0", "--metrics-bind-address=" + a.metrics,
		"--evaluator-bind-address=" + a.evaluator, "--insecure-no-auth", "--default-namespace=" + scaleNS}
	if h.p.ProfileDir != "" {
		args = append(args, "--pprof-bind-address="+a.pprof)
	}
	var env []string
	if h.p.EvaluatorGoMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+h.p.EvaluatorGoMemLimit)
	}
	p, err := startProc(name, h.bin, h.kubeconfig, h.dir, env, args...)
	return p, a, err
}

// ---- helpers ----

// stream is an open event stream whose data lines are read into a channel.
type stream struct {
	resp  *http.Response
	lines chan string
}

// openStream opens an event stream and waits for its first event (the snapshot).
func openStream(ctx context.Context, url string) (*stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to open the stream %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return nil, fmt.Errorf("the stream %s answered %s: %s", url, resp.Status, b)
	}
	s := &stream{resp: resp, lines: make(chan string, 64)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				s.lines <- data
			}
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.waitFor(waitCtx, ""); err != nil {
		s.close()
		return nil, fmt.Errorf("the stream %s sent no snapshot: %w", url, err)
	}
	return s, nil
}

// waitFor waits for a data line that contains sub.
func (s *stream) waitFor(ctx context.Context, sub string) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-s.lines:
			if !ok {
				return errors.New("the stream ended")
			}
			if strings.Contains(line, sub) {
				return nil
			}
		}
	}
}

func (s *stream) close() { _ = s.resp.Body.Close() }

// lineCounter counts the lines of a file that only grows, reading each byte once.
type lineCounter struct {
	path string
	off  int64
	n    int64
}

func (l *lineCounter) count() (int64, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		l.off += int64(n)
		l.n += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return l.n, nil
		}
		if err != nil {
			return l.n, err
		}
	}
}

// waitFor polls cond every 250 ms until it holds, fails, or ctx ends.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) { return cond() })
}

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
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// ---- fleet: many evaluators on one API server (issue 16, part 2) ----

// fleetRound is one fleet of evaluators, measured.
type fleetRound struct {
	Evaluators int `json:"evaluators"`
	// ReadySeconds is the time from starting the fleet until every evaluator is Ready.
	ReadySeconds float64 `json:"readySeconds"`
	// Watches is the API server's WATCH requests the fleet added (apiserver_longrunning_requests).
	Watches int64 `json:"watches"`
	// IdleCPUSeconds is the API server's CPU time over IdleSeconds with the fleet running
	// and nothing written.
	IdleSeconds    float64 `json:"idleSeconds"`
	IdleCPUSeconds float64 `json:"idleCPUSeconds"`
	// Changes are flag flips, one at a time: each waits until every evaluator's device
	// stream has it. ChangeCPUSeconds is the API server's CPU time over them.
	Changes          int     `json:"changes"`
	ChangeSeconds    float64 `json:"changeSeconds"`
	ChangeCPUSeconds float64 `json:"changeCPUSeconds"`
	// Propagation to every evaluator: per change, the time from the patch until the last
	// stream had it (ms); PerStream is over every (change, stream).
	AllP50    float64 `json:"allP50Ms"`
	AllP99    float64 `json:"allP99Ms"`
	AllMax    float64 `json:"allMaxMs"`
	StreamP50 float64 `json:"streamP50Ms"`
	StreamP99 float64 `json:"streamP99Ms"`
	StreamMax float64 `json:"streamMaxMs"`
	// APIServerRSSMB is the API server's VmRSS after the changes; the evaluators' VmRSS
	// ranges from EvaluatorRSSMBMin to EvaluatorRSSMBMax.
	APIServerRSSMB    float64 `json:"apiserverRSSMB"`
	EvaluatorRSSMBMin float64 `json:"evaluatorRSSMBMin"`
	EvaluatorRSSMBMax float64 `json:"evaluatorRSSMBMax"`
}

// fleet runs a round for each size of p.Evaluators, in that order, each with p.Changes
// changes.
func (h *harness) fleet(ctx context.Context) ([]fleetRound, error) {
	apiserver, err := apiserverPID()
	if err != nil {
		return nil, err
	}
	var out []fleetRound
	for i, n := range h.p.Evaluators {
		r, err := h.fleetRound(ctx, apiserver, n, i)
		if r != nil {
			out = append(out, *r)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (h *harness) fleetRound(ctx context.Context, apiserver, n, round int) (*fleetRound, error) {
	r := &fleetRound{Evaluators: n}
	watchesBefore, err := apiserverWatches(ctx, h)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "scale: fleet of %d evaluator(s): starting\n", n)
	start := time.Now()
	procs := make([]*proc, 0, n)
	streams := make([]*stream, 0, n)
	defer func() {
		for _, s := range streams {
			s.close()
		}
		for _, p := range procs {
			if err := p.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "scale:", err)
			}
		}
	}()
	urls := make([]string, 0, n)
	for i := range n {
		p, a, err := h.startEvaluator(fmt.Sprintf("fleet%d-evaluator-%02d", round, i))
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		urls = append(urls, "http://"+a.evaluator)
	}
	for i := range procs {
		if err := h.readyOrRestart(ctx, procs, urls, i); err != nil {
			return nil, err
		}
	}
	r.ReadySeconds = time.Since(start).Seconds()
	for _, u := range urls {
		s, err := openStream(ctx, u+"/namespaces/"+scaleNS+"/v1/stream?deviceId="+probeDevice+"&deviceClass=phone")
		if err != nil {
			return nil, err
		}
		streams = append(streams, s)
	}
	watchesAfter, err := apiserverWatches(ctx, h)
	if err != nil {
		return nil, err
	}
	r.Watches = watchesAfter - watchesBefore

	// Idle: the fleet runs, nothing is written.
	cpu0, err := procCPUSeconds(apiserver)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(h.p.Idle):
	}
	cpu1, err := procCPUSeconds(apiserver)
	if err != nil {
		return nil, err
	}
	r.IdleSeconds, r.IdleCPUSeconds = time.Since(t0).Seconds(), cpu1-cpu0

	// Changes, one at a time.
	fmt.Fprintf(os.Stderr, "scale: fleet of %d evaluator(s): ready in %.1f s, %d watches; %d changes\n", n, r.ReadySeconds, r.Watches, h.p.Changes)
	var all, each []float64
	t0 = time.Now()
	for i := range h.p.Changes {
		key := flagKey(h.p.Flags, i)
		lat, err := h.toggle(ctx, key, streams)
		if err != nil {
			return r, fmt.Errorf("change %d: %w", i, err)
		}
		each = append(each, lat...)
		all = append(all, slices.Max(lat))
	}
	cpu2, err := procCPUSeconds(apiserver)
	if err != nil {
		return nil, err
	}
	r.Changes, r.ChangeSeconds, r.ChangeCPUSeconds = h.p.Changes, time.Since(t0).Seconds(), cpu2-cpu1
	r.AllP50, r.AllP99, r.AllMax = percentile(all, 50), percentile(all, 99), slices.Max(all)
	r.StreamP50, r.StreamP99, r.StreamMax = percentile(each, 50), percentile(each, 99), slices.Max(each)
	if rss, _, err := readStatus(fmt.Sprintf("/proc/%d/status", apiserver)); err == nil {
		r.APIServerRSSMB = float64(rss) / 1024
	}
	r.EvaluatorRSSMBMin = -1
	for _, p := range procs {
		rss, _ := p.memMB()
		if r.EvaluatorRSSMBMin < 0 || rss < r.EvaluatorRSSMBMin {
			r.EvaluatorRSSMBMin = rss
		}
		r.EvaluatorRSSMBMax = max(r.EvaluatorRSSMBMax, rss)
	}
	fmt.Fprintf(os.Stderr, "scale: fleet of %d evaluator(s): propagation to all p50 %.0f ms, p99 %.0f ms\n", n, r.AllP50, r.AllP99)
	return r, nil
}

// readyOrRestart waits until evaluator i is Ready. One that lost a port to another
// process (the harness picks free ports by probing, so another process may take one
// first) is started again on fresh ports, up to 3 times.
func (h *harness) readyOrRestart(ctx context.Context, procs []*proc, urls []string, i int) error {
	for attempt := 1; ; attempt++ {
		_, err := procs[i].waitReady(ctx, urls[i]+"/readyz")
		if err == nil {
			return nil
		}
		log, _ := os.ReadFile(filepath.Join(h.dir, procs[i].name+".log"))
		if attempt > 3 || !bytes.Contains(log, []byte("address already in use")) {
			return err
		}
		fmt.Fprintf(os.Stderr, "scale: %s lost a port to another process; starting it again\n", procs[i].name)
		p, a, err := h.startEvaluator(fmt.Sprintf("%s-again%d", procs[i].name, attempt))
		if err != nil {
			return err
		}
		procs[i], urls[i] = p, "http://"+a.evaluator
	}
}

// toggle switches flag key's enabled and returns, for each stream, the time from just
// before the patch until the stream had an event naming the key, in ms.
func (h *harness) toggle(ctx context.Context, key string, streams []*stream) ([]float64, error) {
	f := &v1.FeatureFlag{}
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: scaleNS, Name: key}, f); err != nil {
		return nil, fmt.Errorf("failed to read flag %s: %w", key, err)
	}
	patch := client.MergeFrom(f.DeepCopy())
	f.Spec.Enabled = !f.Spec.Enabled
	lat := make([]float64, len(streams))
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	start := time.Now()
	if err := h.c.Patch(ctx, f, patch); err != nil {
		return nil, fmt.Errorf("failed to flip flag %s: %w", key, err)
	}
	for i, s := range streams {
		wg.Go(func() {
			waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			errs[i] = s.waitFor(waitCtx, `"`+key+`"`)
			lat[i] = float64(time.Since(start).Microseconds()) / 1000
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the change of flag %s did not reach every evaluator: %w", key, err)
	}
	return lat, nil
}

// percentile returns the p-th percentile (nearest rank) of xs.
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// apiserverWatches returns the API server's open WATCH requests.
func apiserverWatches(ctx context.Context, h *harness) (int64, error) {
	b, err := h.cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("failed to read the API server's metrics: %w", err)
	}
	return gauge(string(b), "apiserver_longrunning_requests", `verb="WATCH"`), nil
}

// gauge sums the samples of a metric whose labels contain match.
func gauge(text, metric, match string) int64 {
	var sum float64
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, match) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64); err == nil {
			sum += v
		}
	}
	return int64(sum)
}

// apiserverPID finds envtest's kube-apiserver: a child of this process.
func apiserverPID() (int, error) { return childPID("kube-apiserver") }

// childPID finds the child of this process whose command contains name.
func childPID(name string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(strings.SplitN(string(cmd), "\x00", 2)[0], name) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if ppid, err := parentPID(pid); err == nil && ppid == os.Getpid() {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("found no %s started by this process", name)
}

// procStat returns the fields of /proc/<pid>/stat after the command name.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

func parentPID(pid int) (int, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 2 {
		return 0, fmt.Errorf("reading /proc/%d/stat: %v", pid, err)
	}
	return strconv.Atoi(f[1])
}

// clockTicks is USER_HZ, 100 on Linux for every architecture Go supports here.
const clockTicks = 100

// procCPUSeconds returns a process's user and system CPU time.
func procCPUSeconds(pid int) (float64, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 13 {
		return 0, fmt.Errorf("reading /proc/%d/stat: %v", pid, err)
	}
	// Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (u + s) / clockTicks, nil
}

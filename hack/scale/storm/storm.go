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
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/flagops/flagops/hack/internal/benchns"
)

// sample is a replica's usage at a time since the stop.
type sample struct {
	at time.Duration
	u  usage
}

// result is what one storm measured.
type result struct {
	load              string // load average before the run
	n                 int
	perReplicaBefore  []int
	perReplicaAfter   []int
	stopped           time.Duration // the stop's signal until the process had exited
	restarted         time.Duration // since the stop, when replica 0 was ready again
	allBack           time.Duration // since the stop, when every client had current values again
	outages           []time.Duration
	accepts, rejects  [][]time.Duration
	failures          [][]time.Duration
	samples           [][]sample // per replica (0 is the restarted one: not sampled)
	baseline          []usage
	final             bool
	missed            int
	settled           time.Duration
	clientCPU         time.Duration
	clientCPUInterval time.Duration
}

func storm(ctx context.Context, c config, f *fleet, dir string) (*result, error) {
	rec := newRecorder(len(f.addrs))
	sources := make([]*net.Dialer, c.sources)
	for i := range sources {
		sources[i] = &net.Dialer{Timeout: 10 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
	}
	var next sync.Mutex
	k := 0
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			next.Lock()
			d := sources[k%len(sources)]
			k++
			next.Unlock()
			return d.DialContext(ctx, network, addr)
		},
	}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()

	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	clients := make([]*client, c.n)
	// The first connections are let in 256 at a time (the listen backlog is finite); the
	// storm's are not held back.
	sem := make(chan struct{}, 256)
	for i := range clients {
		uid := "u" + fmt.Sprint(i)
		cl := &client{policy: c.policy, rec: rec,
			url: func(r int) string { return "http://" + f.addrs[r] + "/v1/stream?userId=" + uid }}
		clients[i] = cl
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.run(cctx, hc, f.pick, func() { <-sem })
		}()
	}
	if err := waitFor(ctx, 5*time.Minute, func() bool { return rec.ready.Load() == int64(c.n) }); err != nil {
		return nil, fmt.Errorf("%d of %d streams connected: %w", rec.ready.Load(), c.n, err)
	}
	if err := waitFor(ctx, time.Minute, func() bool { return count(clients, valueOff) == c.n }); err != nil {
		return nil, fmt.Errorf("before the storm, %d of %d clients hold %s off: %w", count(clients, valueOff), c.n, flipKeyName, err)
	}
	time.Sleep(2 * time.Second) // idle: the connection burst settles
	res := &result{n: c.n, perReplicaBefore: perReplica(clients, len(f.addrs))}
	for _, r := range f.replicas {
		u, err := r.usage()
		if err != nil {
			return nil, err
		}
		res.baseline = append(res.baseline, u)
	}

	// The storm.
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0) // zero on failure: then the figure is off, and says so by its size
	rec.reset()
	t0 := rec.start
	sampling := make(chan struct{})
	samplesDone := make(chan [][]sample, 1)
	go func() { samplesDone <- sampleUsage(f, t0, sampling) }()

	flipsDone := make(chan error, 1)
	go func() {
		on := false
		for i := range c.flips {
			time.Sleep(time.Until(t0.Add(time.Duration(i+1) * c.flipEvery)))
			on = !on
			if err := benchns.WriteFlip(dir, on); err != nil {
				flipsDone <- err
				return
			}
		}
		flipsDone <- nil
	}()
	res.final = c.flips%2 == 1

	var victims []*client // the clients of replica 0
	for _, cl := range clients {
		if cl.replica.Load() == 0 {
			victims = append(victims, cl)
		}
	}
	if c.endpoints == endpointsReady {
		f.out.Store(0) // the endpoints controller takes a terminating pod out at once
	}
	f.replicas[0].stop(c.stop == "term")
	res.stopped = time.Since(t0)
	restartDone := make(chan error, 1)
	go func() {
		time.Sleep(time.Until(t0.Add(c.down)))
		err := f.replicas[0].start()
		res.restarted = time.Since(t0)
		f.out.Store(-1) // ready: back in the endpoints
		restartDone <- err
	}()

	// Every client of the stopped replica drops (the process has exited), then all are back.
	back := func() bool {
		for _, cl := range victims {
			if d := cl.droppedAt.Load(); d < t0.UnixNano() || cl.backAt.Load() < d {
				return false
			}
		}
		return rec.ready.Load() == int64(c.n)
	}
	if err := waitFor(ctx, c.timeout, back); err != nil {
		return nil, fmt.Errorf("after the stop, %d of %d streams have current values: %w", rec.ready.Load(), c.n, err)
	}
	for _, cl := range victims {
		res.allBack = max(res.allBack, time.Duration(cl.backAt.Load()-t0.UnixNano()))
	}
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	res.clientCPU = time.Duration(cpu1.Utime.Nano()+cpu1.Stime.Nano()-cpu0.Utime.Nano()-cpu0.Stime.Nano()) * time.Nanosecond
	res.clientCPUInterval = res.allBack
	if err := <-restartDone; err != nil {
		return nil, fmt.Errorf("restarting replica 0: %w", err)
	}
	if err := <-flipsDone; err != nil {
		return nil, fmt.Errorf("writing %s: %w", flipKeyName, err)
	}
	// 0 missed: every client ends with the last value written.
	want := valueOff
	if res.final {
		want = valueOn
	}
	settleErr := waitFor(ctx, c.settle, func() bool { return count(clients, want) == c.n })
	res.settled = time.Since(t0)
	res.missed = c.n - count(clients, want)
	if settleErr != nil && ctx.Err() != nil {
		return nil, settleErr
	}
	close(sampling)
	res.samples = <-samplesDone

	rec.mu.Lock()
	res.accepts, res.rejects, res.failures = rec.accepts, rec.rejects, rec.failures
	rec.mu.Unlock()
	for _, cl := range clients {
		d, b := cl.droppedAt.Load(), cl.backAt.Load()
		if d >= t0.UnixNano() && b >= d {
			res.outages = append(res.outages, time.Duration(b-d))
		}
	}
	res.perReplicaAfter = perReplica(clients, len(f.addrs))
	return res, nil
}

// sampleUsage samples every replica but the stopped one every 100 ms until done is closed.
func sampleUsage(f *fleet, t0 time.Time, done <-chan struct{}) [][]sample {
	out := make([][]sample, len(f.replicas))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, r := range f.replicas[1:] {
			if u, err := r.usage(); err == nil {
				out[i+1] = append(out[i+1], sample{at: time.Since(t0), u: u})
			}
		}
		select {
		case <-done:
			return out
		case <-tick.C:
		}
	}
}

func count(clients []*client, v int32) int {
	n := 0
	for _, c := range clients {
		if c.value.Load() == v {
			n++
		}
	}
	return n
}

func perReplica(clients []*client, replicas int) []int {
	out := make([]int, replicas)
	for _, c := range clients {
		out[c.replica.Load()]++
	}
	return out
}

// waitFor polls cond every 10 ms until it holds, for at most d.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

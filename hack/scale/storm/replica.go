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
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/flagops/flagops/hack/internal/benchns"
	"github.com/flagops/flagops/hack/internal/machine"
	"github.com/flagops/flagops/test/servetest"
)

const flipKeyName = benchns.FlipKey

func writeNamespace(dir string) error { return benchns.WriteDir(dir) }

// replica is one `flagops serve --dir` process, started again on the same address.
type replica struct {
	bin, dir, addr string
	extra          []string
	srv            *servetest.Server
}

// start runs the replica on its address (any free loopback port the first time) and
// returns once it serves the directory.
func (r *replica) start() error {
	srv, err := servetest.StartProcess(r.bin, r.dir, r.addr, r.extra...)
	if err != nil {
		if srv != nil {
			srv.Kill()
		}
		return err
	}
	r.srv, r.addr = srv, srv.Addr
	return nil
}

// stop stops the replica, gracefully or not, and waits for it to exit.
func (r *replica) stop(graceful bool) {
	if r.srv == nil {
		return
	}
	if graceful {
		r.srv.Stop()
	} else {
		r.srv.Kill()
	}
}

// fleet is the replicas; a client's connection attempt goes to one drawn at random
// among the Service's endpoints.
type fleet struct {
	replicas []*replica
	addrs    []string
	// out, with -endpoints ready, is the replica taken out of the endpoints (-1: none).
	out atomic.Int32
}

// pick draws the replica of a connection attempt.
func (f *fleet) pick() int {
	out := int(f.out.Load())
	if out < 0 {
		return rand.N(len(f.addrs))
	}
	i := rand.N(len(f.addrs) - 1)
	if i >= out {
		i++
	}
	return i
}

func startFleet(c config, dir string) (*fleet, error) {
	f := &fleet{}
	f.out.Store(-1)
	for i := range c.replicas {
		r := &replica{bin: c.flagops, dir: dir, addr: "127.0.0.1:0",
			extra: []string{"--max-subscribers", fmt.Sprint(c.maxSubscribers), "--stream-accept-rate", fmt.Sprint(c.acceptRate)}}
		f.replicas = append(f.replicas, r)
		if err := r.start(); err != nil {
			f.stopAll()
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		f.addrs = append(f.addrs, r.addr)
	}
	return f, nil
}

func (f *fleet) stopAll() {
	for _, r := range f.replicas {
		r.stop(false)
	}
}

// usage is a process's resident memory and CPU time.
type usage struct {
	rss int64 // bytes
	cpu time.Duration
}

func (r *replica) usage() (usage, error) {
	rss, err := machine.RSS(r.srv.Pid())
	if err != nil {
		return usage{}, err
	}
	cpu, err := machine.CPU(r.srv.Pid())
	return usage{rss: rss, cpu: cpu}, err
}

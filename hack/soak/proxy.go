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
	"io"
	"net"
	"sync"
	"time"
)

// proxy stands in for the webhook Service in front of the replicas: it passes each TCP
// connection (TLS is the replicas' own) to one of the backends that are ready, in turn, as
// kube-proxy does with the endpoints of ready pods. A connection stays with its backend
// until either side closes it, as with kube-proxy: a replica paused with connections open
// holds them, and the API server's webhook calls on them time out.
type proxy struct {
	ln       net.Listener
	backends []string

	mu     sync.Mutex
	ready  []bool // the backends' readiness, as the last probe found it
	next   int
	conns  []int // connections passed to each backend
	refuse int   // connections closed at once: no backend ready, or none answered
}

const (
	// proxyDialTimeout bounds the connection to a backend.
	proxyDialTimeout = 2 * time.Second
	// proxyProbeEvery is how often the backends' readiness is probed: a replica that stops
	// answering takes no new connection after about this long (a kubelet's default probe
	// takes 30 s: every 10 s, three failures).
	proxyProbeEvery = time.Second
)

// startProxy listens on addr and serves until ctx ends. probe(ctx, i) reports whether
// backend i is ready; until a probe says so, a backend takes no connection.
func startProxy(ctx context.Context, addr string, backends []string, probe func(context.Context, int) bool) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, backends: backends, ready: make([]bool, len(backends)), conns: make([]int, len(backends))}
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	go p.serve()
	for i := range backends {
		go p.probe(ctx, i, probe)
	}
	return p, nil
}

// probe keeps backend i's readiness up to date until ctx ends.
func (p *proxy) probe(ctx context.Context, i int, probe func(context.Context, int) bool) {
	t := time.NewTicker(proxyProbeEvery)
	defer t.Stop()
	for {
		ok := probe(ctx, i)
		p.mu.Lock()
		p.ready[i] = ok
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go p.pass(c)
	}
}

// pass connects c to the next ready backend that answers, and copies both ways until one
// side closes.
func (p *proxy) pass(c net.Conn) {
	defer func() { _ = c.Close() }()
	var b net.Conn
	for _, i := range p.order() {
		conn, err := net.DialTimeout("tcp", p.backends[i], proxyDialTimeout)
		if err == nil {
			b = conn
			p.mu.Lock()
			p.conns[i]++
			p.mu.Unlock()
			break
		}
	}
	if b == nil {
		p.mu.Lock()
		p.refuse++
		p.mu.Unlock()
		return
	}
	defer func() { _ = b.Close() }()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done // either side closed: close both, which ends the other copy
}

// order returns the ready backends, starting with the next one in turn.
func (p *proxy) order() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.next
	p.next = (p.next + 1) % len(p.backends)
	var out []int
	for k := range p.backends {
		if i := (start + k) % len(p.backends); p.ready[i] {
			out = append(out, i)
		}
	}
	return out
}

// stats returns the connections passed to each backend and those refused.
func (p *proxy) stats() (conns []int, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.conns...), p.refuse
}

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
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// nameServer accepts connections and answers each line with its name and the line.
func nameServer(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+" "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// ask opens a connection through the proxy and returns the answer to one line, or "" when
// the proxy closed the connection.
func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return ""
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSpace(line)
}

// TestProxy: connections go to the ready backends in turn, a connection stays with its
// backend, a backend that is not ready or does not answer gets none, and with none ready
// the proxy closes the connection.
func TestProxy(t *testing.T) {
	g := NewWithT(t)
	eventually := func(what string, cond func() bool) {
		t.Helper()
		g.Eventually(cond).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(BeTrue(), what)
	}
	a, b := nameServer(t, "a"), nameServer(t, "b")
	var readyA, readyB atomic.Bool
	readyA.Store(true)
	readyB.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := startProxy(ctx, "127.0.0.1:0", []string{a.Addr().String(), b.Addr().String()}, func(_ context.Context, i int) bool {
		if i == 0 {
			return readyA.Load()
		}
		return readyB.Load()
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := p.ln.Addr().String()
	eventually("both backends probed ready", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.ready[0] && p.ready[1]
	})
	seen := map[string]int{}
	for range 4 {
		seen[ask(t, addr)]++
	}
	if seen["a hello"] != 2 || seen["b hello"] != 2 {
		t.Errorf("answers of four connections: %v, want two from each backend", seen)
	}

	// One connection, several requests: the same backend answers each.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var first string
	for i := range 3 {
		_, _ = io.WriteString(c, "x\n")
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = line
		} else if line != first {
			t.Errorf("request %d on one connection answered by %q, the first by %q", i, line, first)
		}
	}
	_ = c.Close()

	readyB.Store(false)
	eventually("b probed not ready", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.ready[1]
	})
	for range 4 {
		if got := ask(t, addr); got != "a hello" {
			t.Errorf("with b not ready, answered %q", got)
		}
	}

	// b ready again but gone: its connections fail over to a.
	readyB.Store(true)
	_ = b.Close()
	eventually("b probed ready again", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.ready[1]
	})
	for range 4 {
		if got := ask(t, addr); got != "a hello" {
			t.Errorf("with b refusing connections, answered %q", got)
		}
	}

	readyA.Store(false)
	readyB.Store(false)
	eventually("no backend ready", func() bool { return ask(t, addr) == "" })
	conns, refused := p.stats()
	if conns[0] == 0 || conns[1] == 0 || refused == 0 {
		t.Errorf("stats: %v connections, %d refused; want some to each and some refused", conns, refused)
	}
}

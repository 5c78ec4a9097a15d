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
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagops/flagops/hack/internal/sse"
)

const (
	eventSnapshot = "snapshot"
	eventChanged  = "device.feature-flags.changed"
	// streamIdle is how long a stream may stay silent (the server sends a heartbeat every
	// 15 s) before the client drops it and resumes elsewhere, as an SDK would.
	streamIdle = 45 * time.Second
)

// streamClient is one device's stream (GET /v1/stream with its user, device and class),
// connected to one replica and, when that connection ends, resumed on the other with
// Last-Event-ID, as a Service would route the next connection.
type streamClient struct {
	index int
	query string
	ctx   map[string]string

	mu        sync.Mutex
	flags     map[string]json.RawMessage // the results the client holds
	lastID    string
	connected bool // on an open stream, with current values
	replica   int

	snapshots, changes, upToDate, connects, failures atomic.Int64
}

func newStreamClient(i int) *streamClient {
	c := map[string]string{"userId": userID(i % streamUsers), "deviceId": deviceID(i), "deviceClass": "phone"}
	q := url.Values{}
	for k, v := range c {
		q.Set(k, v)
	}
	return &streamClient{index: i, query: q.Encode(), ctx: c, replica: i % replicas}
}

// run connects until ctx ends: first to its own replica, after a drop to the other one.
func (s *streamClient) run(ctx context.Context, hc *http.Client, addrs []string, synced func()) {
	var once sync.Once
	backoff := 250 * time.Millisecond
	r := s.replica
	for ctx.Err() == nil {
		ok := s.connect(ctx, hc, addrs[r], r, func() { once.Do(synced) })
		r = (r + 1) % len(addrs)
		if ok {
			backoff = 250 * time.Millisecond
			continue // a Service sends the next connection elsewhere at once
		}
		s.failures.Add(1)
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, 8*time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// connect opens one stream and applies its events until it ends; it reports whether the
// client had current values on it.
func (s *streamClient) connect(ctx context.Context, hc *http.Client, addr string, r int, onSync func()) bool {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+addr+"/namespaces/"+soakNS+"/v1/stream?"+s.query, nil)
	s.mu.Lock()
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	s.mu.Unlock()
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false
	}
	s.connects.Add(1)
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	synced := false
	_ = sse.Read(&touchReader{r: resp.Body, touch: func() { idle.Reset(streamIdle) }}, func(ev sse.Event) error {
		if !ev.HasID {
			return nil
		}
		if err := s.apply(ev); err != nil {
			return err
		}
		if !synced {
			synced = true
			s.mu.Lock()
			s.connected, s.replica = true, r
			s.mu.Unlock()
			onSync()
		}
		return nil
	})
	s.mu.Lock()
	s.connected = false
	s.mu.Unlock()
	return synced
}

// touchReader calls touch after every read that returned data.
type touchReader struct {
	r     io.Reader
	touch func()
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.touch()
	}
	return n, err
}

// apply applies an event with an ID: a snapshot replaces the results, a change updates
// them, an ID alone says that the results held are current.
func (s *streamClient) apply(ev sse.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Name {
	case eventSnapshot:
		var d struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("stream %d: snapshot: %w", s.index, err)
		}
		s.flags = d.Flags
		s.snapshots.Add(1)
	case eventChanged:
		var d struct {
			Changed map[string]json.RawMessage `json:"changed"`
			Removed []string                   `json:"removed"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("stream %d: change: %w", s.index, err)
		}
		if s.flags == nil {
			return fmt.Errorf("stream %d: a change before any snapshot", s.index)
		}
		for k, v := range d.Changed {
			s.flags[k] = v
		}
		for _, k := range d.Removed {
			delete(s.flags, k)
		}
		s.changes.Add(1)
	default:
		if len(ev.Data) > 0 {
			return fmt.Errorf("stream %d: unknown event %q", s.index, ev.Name)
		}
		s.upToDate.Add(1)
	}
	s.lastID = ev.ID
	return nil
}

// differs returns the keys whose result the client holds differently from want.
func (s *streamClient) differs(want map[string]json.RawMessage) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, v := range want {
		if !sameJSON(s.flags[k], v) {
			out = append(out, k)
		}
	}
	for k := range s.flags {
		if _, ok := want[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func (s *streamClient) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// evaluate asks a replica for every result of the context (POST /v1/evaluate).
func evaluate(ctx context.Context, hc *http.Client, addr string, c map[string]string) (map[string]json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"context": c})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/namespaces/"+soakNS+"/v1/evaluate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/evaluate on %s: %s: %s", addr, resp.Status, b)
	}
	var d struct {
		Flags map[string]json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("POST /v1/evaluate on %s: %w", addr, err)
	}
	return d.Flags, nil
}

// streamHTTPClient is the stream clients' HTTP client: connections are not limited per
// host, and a replica that does not answer (paused) is given up on after 15 s.
func streamHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 15 * time.Second,
		MaxIdleConnsPerHost:   64,
	}}
}

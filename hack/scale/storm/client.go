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
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagops/flagops/hack/internal/sse"
)

// Reconnection policies (-policy).
const (
	policySDK   = "sdk"
	policyRetry = "retry"
)

const (
	sdkMinBackoff = 500 * time.Millisecond
	maxBackoff    = 30 * time.Second
	// defaultRetry is what an EventSource waits before it has read a retry field.
	defaultRetry = 3 * time.Second
)

// delay is how long a client that got no 503 waits before its attempt number attempt (0
// for the first after a drop of a connection that had current values), given the stream's
// last retry field (0 when none was read).
func delay(policy string, attempt int, retry time.Duration) time.Duration {
	if policy == policySDK {
		// sdk/go's Backoff: at once, then lo doubling up to hi, drawn in [d/2, d].
		if attempt == 0 {
			return 0
		}
		d := doubled(sdkMinBackoff, attempt-1)
		return d/2 + rand.N(d/2+1)
	}
	if retry <= 0 {
		retry = defaultRetry
	}
	// The retry field as given (the evaluator draws it for each stream), doubling
	// while attempts fail.
	return doubled(retry, attempt)
}

// next returns the wait before the next attempt and the number of that attempt, after
// attempt number attempt, given the stream's last retry field and a 503's Retry-After
// (0 when none). sdk waits a 503's Retry-After as given (the evaluator jitters it)
// without doubling its back-off, as sdk/go does; retry waits at least the Retry-After.
func next(policy string, attempt int, retry, retryAfter time.Duration) (time.Duration, int) {
	if policy == policySDK && retryAfter > 0 {
		return retryAfter, attempt
	}
	return max(delay(policy, attempt, retry), retryAfter), attempt + 1
}

// doubled is d doubled n times, at most maxBackoff.
func doubled(d time.Duration, n int) time.Duration {
	if n >= 30 || d<<n > maxBackoff {
		return max(d, maxBackoff)
	}
	return d << n
}

// Values of client.value.
const (
	valueUnknown int32 = iota
	valueOff
	valueOn
)

// client is one device's stream.
type client struct {
	url    func(replica int) string
	policy string
	rec    *recorder

	lastID string // the ID of the last event applied
	retry  time.Duration
	// value is FlipKey's value the client holds; replica the replica of its connection.
	value   atomic.Int32
	replica atomic.Int32
	// droppedAt and backAt (Unix nanoseconds) are the last drop of a connection that had
	// current values and the first time after it that the client had current values again.
	droppedAt, backAt atomic.Int64
}

// run connects, each time to the replica pick draws, until ctx ends; first is called once, when the first connection attempt
// ends, either way.
func (c *client) run(ctx context.Context, hc *http.Client, pick func() int, first func()) {
	var once sync.Once
	attempt := 0
	for ctx.Err() == nil {
		synced, retryAfter := c.connect(ctx, hc, pick(), func() { once.Do(first) })
		once.Do(first)
		if synced {
			attempt = 0
		}
		var d time.Duration
		d, attempt = next(c.policy, attempt, c.retry, retryAfter)
		if d == 0 {
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// connect opens one stream to replica r and applies its events until it ends. synced
// reports whether the client had current values on it; retryAfter is a 503's Retry-After.
func (c *client) connect(ctx context.Context, hc *http.Client, r int, onSync func()) (synced bool, retryAfter time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(r), nil)
	if err != nil {
		panic(err) // the URL is ours
	}
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.rec.failed(r)
		return false, 0
	}
	defer func() { _ = resp.Body.Close() }() // nothing more is read from it
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // to reuse the connection
		if resp.StatusCode == http.StatusServiceUnavailable {
			c.rec.rejected(r)
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				retryAfter = time.Duration(s) * time.Second
			}
		} else {
			c.rec.failed(r)
		}
		return false, retryAfter
	}
	c.rec.accepted(r)
	c.replica.Store(int32(r))
	bad := false
	// sse.Read ends with the stream (the replica went away) or an event not applied.
	_ = sse.Read(resp.Body, func(ev sse.Event) error {
		if ev.Retry > 0 {
			c.retry = ev.Retry
		}
		if !ev.HasID {
			return nil
		}
		if err := c.apply(ev); err != nil {
			bad = true
			return err
		}
		if !synced {
			synced = true
			c.rec.ready.Add(1)
			if c.droppedAt.Load() > c.backAt.Load() {
				c.backAt.Store(time.Now().UnixNano())
			}
			onSync()
		}
		return nil
	})
	if synced {
		c.rec.ready.Add(-1)
		if ctx.Err() == nil {
			c.droppedAt.Store(time.Now().UnixNano())
		}
	}
	if bad {
		// An event the client cannot apply: start again from a snapshot, as the provider does.
		c.lastID = ""
		c.value.Store(valueUnknown)
	}
	return synced, 0
}

// apply applies an event with an ID: a snapshot sets FlipKey's value, a change sets it
// when it names the key, an ID alone says that the values held are current.
func (c *client) apply(ev sse.Event) error {
	switch ev.Name {
	case "snapshot":
		var d struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		v, err := flipValue(d.Flags)
		if err != nil {
			return err
		}
		c.value.Store(v)
	case "device.feature-flags.changed":
		var d struct {
			Changed map[string]json.RawMessage `json:"changed"`
			Removed []string                   `json:"removed"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		if _, ok := d.Changed[flipKeyName]; ok {
			v, err := flipValue(d.Changed)
			if err != nil {
				return err
			}
			c.value.Store(v)
		}
		for _, k := range d.Removed {
			if k == flipKeyName {
				c.value.Store(valueUnknown)
			}
		}
	}
	c.lastID = ev.ID
	return nil
}

// flipValue is FlipKey's value in a map of flag results.
func flipValue(flags map[string]json.RawMessage) (int32, error) {
	raw, ok := flags[flipKeyName]
	if !ok {
		return valueUnknown, nil
	}
	var f struct{ Value *bool }
	if err := json.Unmarshal(raw, &f); err != nil {
		return valueUnknown, fmt.Errorf("%s: %w", flipKeyName, err)
	}
	switch {
	case f.Value == nil:
		return valueUnknown, nil
	case *f.Value:
		return valueOn, nil
	default:
		return valueOff, nil
	}
}

// recorder counts what the clients see, per replica, with the time of each response.
type recorder struct {
	start time.Time
	// ready is the number of clients with current values on an open stream.
	ready atomic.Int64

	mu                         sync.Mutex
	accepts, rejects, failures [][]time.Duration
}

func newRecorder(replicas int) *recorder {
	return &recorder{start: time.Now(), accepts: make([][]time.Duration, replicas),
		rejects: make([][]time.Duration, replicas), failures: make([][]time.Duration, replicas)}
}

// reset forgets what was recorded and counts times from now.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = time.Now()
	for i := range r.accepts {
		r.accepts[i], r.rejects[i], r.failures[i] = nil, nil, nil
	}
}

func (r *recorder) note(list [][]time.Duration, i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list[i] = append(list[i], time.Since(r.start))
}

func (r *recorder) accepted(i int) { r.note(r.accepts, i) }
func (r *recorder) rejected(i int) { r.note(r.rejects, i) }
func (r *recorder) failed(i int)   { r.note(r.failures, i) }

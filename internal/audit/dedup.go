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

package audit

import (
	"context"
	"sync"
)

// Dedup returns a sink that passes records to s but drops, without error, a record whose
// ID is among the last n IDs that s accepted. A record is remembered only once s's Write
// has succeeded, and concurrent writes of one ID are serialised, so that a controller that
// retries a record (after a failure elsewhere, or a conflict) does not produce a duplicate
// line within the life of the process. n <= 0 returns s itself.
func Dedup(s Sink, n int) Sink {
	return newDedup(s, n, nil)
}

func newDedup(s Sink, n int, m *metrics) Sink {
	if n <= 0 {
		return s
	}
	return &dedupSink{
		inner:    s,
		m:        m,
		ring:     make([]string, n),
		seen:     make(map[string]struct{}, n),
		inflight: map[string]chan struct{}{},
	}
}

type dedupSink struct {
	inner Sink
	m     *metrics

	mu       sync.Mutex
	ring     []string // the last n accepted IDs; next is the oldest slot
	next     int
	seen     map[string]struct{}
	inflight map[string]chan struct{} // closed when the write of that ID ends
}

func (d *dedupSink) Name() string { return d.inner.Name() }

func (d *dedupSink) Close() error { return d.inner.Close() }

func (d *dedupSink) Write(ctx context.Context, r Record) error {
	for {
		d.mu.Lock()
		if _, dup := d.seen[r.ID]; dup {
			d.mu.Unlock()
			if d.m != nil {
				d.m.add(d.inner.Name(), ResultDuplicate, 1)
			}
			return nil
		}
		wait, busy := d.inflight[r.ID]
		if !busy {
			done := make(chan struct{})
			d.inflight[r.ID] = done
			d.mu.Unlock()
			err := d.inner.Write(ctx, r)
			d.mu.Lock()
			delete(d.inflight, r.ID)
			if err == nil {
				d.rememberLocked(r.ID)
			}
			close(done)
			d.mu.Unlock()
			return err
		}
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return sinkError(d.inner.Name(), ctx.Err())
		}
	}
}

func (d *dedupSink) rememberLocked(id string) {
	if old := d.ring[d.next]; old != "" {
		delete(d.seen, old)
	}
	d.ring[d.next] = id
	d.seen[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
}

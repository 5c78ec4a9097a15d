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

// Memory is a sink that keeps records in memory, in write order, for tests. It validates
// records like the other sinks, so a test that writes an incomplete record fails. It is
// safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	records  []Record
	writeErr error
	closed   bool
}

// NewMemory returns an empty Memory sink.
func NewMemory() *Memory { return &Memory{} }

// Name returns "memory".
func (m *Memory) Name() string { return "memory" }

// Write validates r and appends a copy of it.
func (m *Memory) Write(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return sinkError(m.Name(), err)
	}
	if err := r.Validate(); err != nil {
		return sinkError(m.Name(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return sinkError(m.Name(), ErrClosed)
	}
	if m.writeErr != nil {
		return sinkError(m.Name(), m.writeErr)
	}
	m.records = append(m.records, r.clone())
	return nil
}

// Records returns a copy of the records written so far, in order.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, len(m.records))
	for i, r := range m.records {
		out[i] = r.clone()
	}
	return out
}

// Len returns the number of records written so far.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// Reset forgets the records written so far.
func (m *Memory) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = nil
}

// SetWriteError makes every later Write fail with an error wrapping err, until it is
// called with nil. Tests use it to exercise a caller's retry path.
func (m *Memory) SetWriteError(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeErr = err
}

// Close makes later writes fail with ErrClosed; the records stay readable.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

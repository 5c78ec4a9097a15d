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
	"flag"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flagops/flagops/evaluator/server"
)

// streamLimits holds the flags bounding the evaluator's event streams, shared by the
// manager, the sidecar and serve.
type streamLimits struct {
	maxSubscribers int
	memoryBudget   string
	writeTimeout   time.Duration
	acceptRate     float64
	// budget is the memory budget in bytes, set by load.
	budget int64
}

func (l *streamLimits) bind(fs *flag.FlagSet) {
	fs.IntVar(&l.maxSubscribers, "max-subscribers", 0,
		fmt.Sprintf("Most event streams (/v1/stream, /ofrep/v1/sse) open at once; beyond it new ones get 503 with Retry-After. 0 derives it from --stream-memory-budget at %d KiB per stream (measured with 100 flags; see docs/benchmarks.md). A value above 0 wins.", server.MemoryPerStream>>10))
	fs.StringVar(&l.memoryBudget, "stream-memory-budget", "",
		fmt.Sprintf("Memory the open event streams may hold, as a quantity such as 256Mi; it sets the default of --max-subscribers. Empty means half of the Go memory limit (GOMEMLIMIT) when it is set, else %dMi.", server.DefaultStreamMemoryBudget>>20))
	fs.DurationVar(&l.writeTimeout, "stream-write-timeout", server.DefaultStreamWriteTimeout,
		"Deadline of every event stream write: a client that does not take an event or a heartbeat within it is dropped and its slot freed.")
	fs.Float64Var(&l.acceptRate, "stream-accept-rate", 0,
		"Most new event streams accepted a second, with a burst of as many; beyond it new ones get 503 with Retry-After, which bounds a reconnect storm's work on this replica. 0 means no limit. Set it below what one replica accepts (docs/capacity.md) only where a storm would starve its open streams: a lower limit makes the storm longer.")
}

// load checks the flags and resolves the memory budget.
func (l *streamLimits) load() error {
	if l.maxSubscribers < 0 {
		return fmt.Errorf("--max-subscribers: %d is negative; use 0 for the default derived from --stream-memory-budget", l.maxSubscribers)
	}
	if math.IsNaN(l.acceptRate) || math.IsInf(l.acceptRate, 0) {
		return fmt.Errorf("--stream-accept-rate: %v is not a number of streams a second", l.acceptRate)
	}
	if l.acceptRate < 0 {
		return fmt.Errorf("--stream-accept-rate: %v is negative; use 0 for no limit", l.acceptRate)
	}
	if l.writeTimeout <= 0 {
		return fmt.Errorf("--stream-write-timeout: %v is not positive", l.writeTimeout)
	}
	l.budget = server.StreamMemoryBudget()
	if l.memoryBudget == "" {
		return nil
	}
	q, err := resource.ParseQuantity(l.memoryBudget)
	if err != nil {
		return fmt.Errorf("--stream-memory-budget: %q: %w", l.memoryBudget, err)
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("--stream-memory-budget: %s is not positive", l.memoryBudget)
	}
	l.budget = q.Value()
	return nil
}

// max is the subscriber cap: --max-subscribers when set, else what the budget holds
// (the default budget before load).
func (l *streamLimits) max() int {
	if l.maxSubscribers > 0 {
		return l.maxSubscribers
	}
	if l.budget <= 0 {
		return server.MaxSubscribersFor(server.StreamMemoryBudget())
	}
	return server.MaxSubscribersFor(l.budget)
}

// apply sets the stream limits of opts.
func (l *streamLimits) apply(opts *server.Options) {
	opts.MaxSubscribers = l.max()
	opts.StreamWriteTimeout = l.writeTimeout
	opts.AcceptRate = l.acceptRate
}

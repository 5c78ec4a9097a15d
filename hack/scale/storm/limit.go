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
	"math/rand/v2"
	"sync"
	"time"
)

// acceptLimit simulates a per-replica accept-rate limit, which the evaluator does not
// have: a token bucket per replica, rate streams a second with a burst of rate. A stream
// beyond it is refused before it reaches the replica, as the replica would refuse it: a
// 503 with Retry-After retryAfter, or, with jitter, drawn between it and twice it.
type acceptLimit struct {
	rate       float64
	retryAfter time.Duration
	jitter     bool
	now        func() time.Time

	mu     sync.Mutex
	tokens []float64
	last   []time.Time
}

func newAcceptLimit(replicas int, rate float64, retryAfter time.Duration, jitter bool) *acceptLimit {
	l := &acceptLimit{rate: rate, retryAfter: retryAfter, jitter: jitter, now: time.Now,
		tokens: make([]float64, replicas), last: make([]time.Time, replicas)}
	for i := range l.tokens {
		l.tokens[i] = rate
	}
	return l
}

// admit takes a token of replica r; when there is none it reports false and the
// Retry-After of the refusal.
func (l *acceptLimit) admit(r int) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last[r].IsZero() {
		l.tokens[r] = min(l.rate, l.tokens[r]+now.Sub(l.last[r]).Seconds()*l.rate)
	}
	l.last[r] = now
	if l.tokens[r] >= 1 {
		l.tokens[r]--
		return true, 0
	}
	ra := l.retryAfter
	if l.jitter {
		ra += rand.N(l.retryAfter + 1)
	}
	return false, ra
}

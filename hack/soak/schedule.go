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
	"slices"
	"strings"
	"time"
)

// Fault kinds.
const (
	faultKillLeader     = "kill-leader"
	faultRestartAPI     = "restart-apiserver"
	faultRestartEtcd    = "restart-etcd"
	faultPauseReplica   = "pause-replica"
	faultAuditErrors    = "audit-errors"
	faultRoundLength    = 10 * time.Minute
	scheduleStartsAt    = 0.05 // fraction of the duration before the first fault
	scheduleEndsAt      = 0.75 // fraction by which every fault has started
	minimumFaultSpacing = 5 * time.Second
)

// parseSkip reads -skip: fault kinds separated by commas.
func parseSkip(v string) (map[string]bool, error) {
	skip := map[string]bool{}
	if v == "" {
		return skip, nil
	}
	for _, k := range strings.Split(v, ",") {
		if !slices.Contains(faultKinds, k) {
			return nil, fmt.Errorf("-skip: %q is not a fault kind (%s)", k, strings.Join(faultKinds, ", "))
		}
		skip[k] = true
	}
	return skip, nil
}

// faultKinds are the faults of one round, in a canonical order that the seed shuffles.
var faultKinds = []string{faultKillLeader, faultRestartAPI, faultRestartEtcd, faultPauseReplica, faultAuditErrors}

// fault is one scheduled fault: At is its time from the start of the load, For how long it
// lasts (the pause, the receiver's error window; 0 for the others).
type fault struct {
	Kind string        `json:"kind"`
	At   time.Duration `json:"atNs"`
	For  time.Duration `json:"forNs,omitempty"`
}

func (f fault) String() string {
	s := fmt.Sprintf("%s at %s", f.Kind, f.At.Round(time.Second))
	if f.For > 0 {
		s += fmt.Sprintf(" for %s", f.For.Round(time.Second))
	}
	return s
}

// schedule returns the faults of a run of duration d: one round of every kind per started
// 10 minutes, each round's kinds in an order drawn from seed, spread evenly over the part
// of the run between 5% and 75% of d, each at a time drawn within its own slot so that no
// two overlap by design. pause is the length of a pause, errWindow that of the receiver's
// error window; neither is longer than a slot leaves room for. Kinds in skip are left out
// after the draw, so the others keep their order. The same seed and arguments give the same
// schedule.
func schedule(seed uint64, d, pause, errWindow time.Duration, skip map[string]bool) []fault {
	rng := rand.New(rand.NewPCG(seed, 0x50a6))
	rounds := max(1, int((d+faultRoundLength-1)/faultRoundLength))
	var kinds []string
	for range rounds {
		round := append([]string(nil), faultKinds...)
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, k := range round {
			if !skip[k] {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	start := time.Duration(float64(d) * scheduleStartsAt)
	slot := time.Duration(float64(d)*(scheduleEndsAt-scheduleStartsAt)) / time.Duration(len(kinds))
	out := make([]fault, 0, len(kinds))
	for i, k := range kinds {
		f := fault{Kind: k}
		switch k {
		case faultPauseReplica:
			f.For = min(pause, slot)
		case faultAuditErrors:
			f.For = min(errWindow, slot)
		}
		// The fault starts within the first part of its slot that leaves room for it.
		room := max(0, slot-f.For-minimumFaultSpacing)
		f.At = start + time.Duration(i)*slot + time.Duration(rng.Int64N(int64(room)+1))
		out = append(out, f)
	}
	return out
}

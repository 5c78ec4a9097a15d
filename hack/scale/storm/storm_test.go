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
	"testing"
	"time"

	"github.com/flagops/flagops/hack/internal/sse"
)

func TestDelay(t *testing.T) {
	const s = time.Second
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		policy  string
		attempt int
		retry   time.Duration
		lo, hi  time.Duration
	}{
		{"sdk: at once after a drop", policySDK, 0, 0, 0, 0},
		{"sdk: first back-off", policySDK, 1, 0, ms(250), ms(500)},
		{"sdk: doubled", policySDK, 3, 0, ms(1000), ms(2000)},
		{"sdk: capped at 30 s", policySDK, 12, 0, 15 * s, 30 * s},
		{"sdk: ignores retry", policySDK, 1, 10 * s, ms(250), ms(500)},
		{"retry: the field as given", policyRetry, 0, ms(2345), ms(2345), ms(2345)},
		{"retry: EventSource default before a field", policyRetry, 0, 0, 3 * s, 3 * s},
		{"retry: doubled while attempts fail", policyRetry, 2, 1 * s, 4 * s, 4 * s},
		{"retry: capped at 30 s", policyRetry, 9, 3 * s, 30 * s, 30 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 500 {
				if d := delay(tt.policy, tt.attempt, tt.retry); d < tt.lo || d > tt.hi {
					t.Fatalf("delay = %s, want within [%s, %s]", d, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestClientApply(t *testing.T) {
	const changed = "device.feature-flags.changed"
	steps := []struct {
		ev      sse.Event
		want    int32
		wantErr bool
	}{
		{sse.Event{Name: "snapshot", ID: "1", Data: []byte(`{"flags":{"flag.00":{"value":"standard"},"fanout.flag":{"value":true}}}`)}, valueOn, false},
		{sse.Event{Name: changed, ID: "2", Data: []byte(`{"changed":{"flag.00":{"value":"beta"}},"removed":[]}`)}, valueOn, false},
		{sse.Event{Name: changed, ID: "3", Data: []byte(`{"changed":{"fanout.flag":{"value":false}},"removed":[]}`)}, valueOff, false},
		{sse.Event{ID: "3", HasID: true}, valueOff, false}, // up to date
		{sse.Event{Name: changed, ID: "4", Data: []byte(`{"changed":{},"removed":["fanout.flag"]}`)}, valueUnknown, false},
		{sse.Event{Name: "snapshot", ID: "5", Data: []byte(`{"flags":{"fanout.flag":{"value":"on"}}}`)}, valueUnknown, true},
	}
	c := &client{}
	for i, s := range steps {
		err := c.apply(s.ev)
		if (err != nil) != s.wantErr {
			t.Fatalf("step %d: error %v, want error %v", i, err, s.wantErr)
		}
		if err != nil {
			continue
		}
		if v := c.value.Load(); v != s.want {
			t.Errorf("step %d: value %d, want %d", i, v, s.want)
		}
		if c.lastID != s.ev.ID {
			t.Errorf("step %d: lastID %q, want %q", i, c.lastID, s.ev.ID)
		}
	}
	if c.lastID != "4" {
		t.Errorf("after an event it could not apply, lastID = %q, want the last applied, 4", c.lastID)
	}
}

func TestPeakPerWindow(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		times []time.Duration
		want  int
	}{
		{nil, 0},
		{ms(5), 1},
		{ms(0, 999, 1000), 2},
		{ms(2500, 100, 200, 2000, 2100, 2200, 2300), 5},
	}
	for _, tt := range tests {
		if got := peakPerWindow(tt.times, time.Second); got != tt.want {
			t.Errorf("peakPerWindow(%v) = %d, want %d", tt.times, got, tt.want)
		}
	}
}

func TestPeakCPU(t *testing.T) {
	ss := []sample{
		{at: 0, u: usage{cpu: 0}},
		{at: 500 * time.Millisecond, u: usage{cpu: 100 * time.Millisecond}},
		{at: 1000 * time.Millisecond, u: usage{cpu: 1100 * time.Millisecond}},
		{at: 1500 * time.Millisecond, u: usage{cpu: 1200 * time.Millisecond}},
		{at: 3000 * time.Millisecond, u: usage{cpu: 1300 * time.Millisecond}},
	}
	peak, total := peakCPU(ss, time.Second, 1500*time.Millisecond)
	if peak < 1.09 || peak > 1.11 { // 1.1 s of CPU in 1 s: 0 to 1 s, and 0.5 to 1.5 s
		t.Errorf("peak = %.3f cores, want 1.1", peak)
	}
	if total != 1200*time.Millisecond {
		t.Errorf("total = %s, want 1.2s", total)
	}
}

func TestFleetPick(t *testing.T) {
	f := &fleet{addrs: []string{"a", "b", "c"}}
	f.out.Store(-1)
	seen := map[int]int{}
	for range 3000 {
		seen[f.pick()]++
	}
	if len(seen) != 3 {
		t.Errorf("with every endpoint in, picked %v, want all of 0, 1, 2", seen)
	}
	f.out.Store(1)
	clear(seen)
	for range 3000 {
		seen[f.pick()]++
	}
	if seen[1] != 0 || seen[0] == 0 || seen[2] == 0 {
		t.Errorf("with replica 1 out, picked %v, want 0 and 2 only", seen)
	}
}

// TestNextAfter503: sdk waits a 503's Retry-After as given, without doubling its
// back-off (as sdk/go does); retry waits at least the Retry-After, its delay doubling.
func TestNextAfter503(t *testing.T) {
	for i, d := range waitsAfter503s(policySDK, 12) {
		if d != 3*time.Second {
			t.Errorf("sdk: wait %d after a 503 = %s, want the Retry-After, 3 s", i, d)
		}
	}
	w := waitsAfter503s(policyRetry, 12)
	if w[0] != 3*time.Second || w[11] != maxBackoff {
		t.Errorf("retry: waits after 503s %v, want 3 s first and 30 s at last", w)
	}
	if d, n := next(policyRetry, 0, time.Second, 0); d != time.Second || n != 1 {
		t.Errorf("retry after a drop: %s, attempt %d; want 1 s, 1", d, n)
	}
}

// waitsAfter503s returns the waits of a client whose first k attempts after a drop all
// got a 503 with Retry-After 3 s.
func waitsAfter503s(policy string, k int) []time.Duration {
	var waits []time.Duration
	attempt := 0
	for range k {
		var d time.Duration
		d, attempt = next(policy, attempt, 0, 3*time.Second)
		waits = append(waits, d)
	}
	return waits
}

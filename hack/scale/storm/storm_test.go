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
		name              string
		policy            string
		attempt           int
		retry, retryAfter time.Duration
		lo, hi            time.Duration
	}{
		{"sdk: at once after a drop", policySDK, 0, 0, 0, 0, 0},
		{"sdk: first back-off", policySDK, 1, 0, 0, ms(250), ms(500)},
		{"sdk: doubled", policySDK, 3, 0, 0, ms(1000), ms(2000)},
		{"sdk: capped at 30 s", policySDK, 12, 0, 0, 15 * s, 30 * s},
		{"sdk: ignores retry", policySDK, 1, 10 * s, 0, ms(250), ms(500)},
		{"sdk: at least Retry-After", policySDK, 1, 0, 3 * s, 3 * s, 3 * s},
		{"retry: the field, jittered", policyRetry, 0, 2 * s, 0, 1 * s, 3 * s},
		{"retry: EventSource default before a field", policyRetry, 0, 0, 0, ms(1500), ms(4500)},
		{"retry: doubled while attempts fail", policyRetry, 2, 1 * s, 0, 2 * s, 6 * s},
		{"retry: capped at 30 s", policyRetry, 9, 3 * s, 0, 15 * s, 45 * s},
		{"retry: at least Retry-After", policyRetry, 0, ms(100), 3 * s, 3 * s, 3 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 500 {
				if d := delay(tt.policy, tt.attempt, tt.retry, tt.retryAfter); d < tt.lo || d > tt.hi {
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

func TestAcceptLimit(t *testing.T) {
	now := time.Unix(0, 0)
	l := newAcceptLimit(2, 10, 3*time.Second, false)
	l.now = func() time.Time { return now }
	for i := range 10 { // the burst
		if ok, _ := l.admit(0); !ok {
			t.Fatalf("stream %d of the burst refused", i)
		}
	}
	if ok, ra := l.admit(0); ok || ra != 3*time.Second {
		t.Errorf("11th stream at once: admitted %v, Retry-After %s; want refused, 3s", ok, ra)
	}
	if ok, _ := l.admit(1); !ok {
		t.Error("replica 1 refused a stream: each replica has its own bucket")
	}
	now = now.Add(250 * time.Millisecond) // 2.5 tokens
	for i := range 2 {
		if ok, _ := l.admit(0); !ok {
			t.Fatalf("stream %d after 250 ms refused", i)
		}
	}
	if ok, _ := l.admit(0); ok {
		t.Error("a third stream after 250 ms at 10/s admitted")
	}
	now = now.Add(time.Hour) // the bucket holds one burst, no more
	n := 0
	for {
		if ok, _ := l.admit(0); !ok {
			break
		}
		n++
	}
	if n != 10 {
		t.Errorf("after an hour idle, %d streams admitted at once, want the burst, 10", n)
	}

	j := newAcceptLimit(1, 1, 3*time.Second, true)
	j.now = func() time.Time { return now }
	j.admit(0)
	seen := map[time.Duration]bool{}
	for range 200 {
		_, ra := j.admit(0)
		if ra < 3*time.Second || ra > 6*time.Second {
			t.Fatalf("jittered Retry-After %s, want within [3s, 6s]", ra)
		}
		seen[ra] = true
	}
	if len(seen) < 2 {
		t.Error("jittered Retry-After is always the same")
	}
}

// TestRunSDK503: with sdk-503, a client refused with a 503 waits the Retry-After drawn
// between it and twice it, without doubling its back-off; with sdk, the back-off doubles.
func TestRunSDK503(t *testing.T) {
	for _, tt := range []struct {
		policy string
		lo, hi time.Duration
	}{
		{policySDK503, 3 * time.Second, 6 * time.Second},
		{policySDK, 3 * time.Second, 3 * time.Second}, // attempts 1..3: max(≤ 2 s back-off, 3 s)
	} {
		t.Run(tt.policy, func(t *testing.T) {
			waits := waitsAfter503s(tt.policy, 3)
			for i, d := range waits {
				if d < tt.lo || d > tt.hi {
					t.Errorf("wait %d after a 503 = %s, want within [%s, %s]", i, d, tt.lo, tt.hi)
				}
			}
		})
	}
	// After many 503s, sdk has doubled up to 30 s; sdk-503 still waits 3-6 s.
	if w := waitsAfter503s(policySDK, 12); w[11] < 15*time.Second {
		t.Errorf("sdk's 12th wait after 503s = %s, want its back-off, at least 15 s", w[11])
	}
	if w := waitsAfter503s(policySDK503, 12); w[11] > 6*time.Second {
		t.Errorf("sdk-503's 12th wait after 503s = %s, want at most 6 s", w[11])
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

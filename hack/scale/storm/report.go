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
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/flagops/flagops/hack/internal/machine"
)

// peakPerWindow is the largest number of times (sorted or not) within any window w.
func peakPerWindow(times []time.Duration, w time.Duration) int {
	s := slices.Clone(times)
	slices.Sort(s)
	peak, lo := 0, 0
	for hi := range s {
		for s[hi]-s[lo] >= w {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// percentile is the p-th percentile (0..1) of d, nearest rank; 0 when d is empty.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	k := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

// peakCPU is the highest CPU use, in cores, over any interval of at least w between two
// samples, and the CPU time from the first sample to the sample at or after until.
func peakCPU(ss []sample, w, until time.Duration) (peak float64, total time.Duration) {
	lo := 0
	for hi := range ss {
		for lo+1 < hi && ss[hi].at-ss[lo+1].at >= w {
			lo++
		}
		if span := ss[hi].at - ss[lo].at; span >= w {
			peak = max(peak, float64(ss[hi].u.cpu-ss[lo].u.cpu)/float64(span))
		}
	}
	for _, s := range ss {
		total = s.u.cpu - ss[0].u.cpu
		if s.at >= until {
			break
		}
	}
	return peak, total
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *result) report(w io.Writer, c config) {
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(w, format+"\n", a...) }
	p("machine: nproc=%d, %s, %s; load average before the run (1/5/15 min): %s",
		runtime.NumCPU(), machine.CPUModel(), runtime.Version(), r.load)
	p("storm: %d streams over %d replicas (flagops serve --dir, 100 flags), --max-subscribers %d each; replica 0 stopped by %s, down %s, endpoints %s; clients' policy %s; %d changes of %s every %s from the stop",
		r.n, len(r.perReplicaBefore), c.maxSubscribers, map[string]string{"term": "SIGINT (graceful)", "kill": "SIGKILL"}[c.stop], c.down, c.endpoints, c.policy, c.flips, flipKeyName, c.flipEvery)
	p("streams per replica before: %v; after: %v", r.perReplicaBefore, r.perReplicaAfter)
	p("")
	p("replica 0 exited %s after its signal; ready again at %s", secs(r.stopped), secs(r.restarted))
	p("every stream with current values again: %s after the stop", secs(r.allBack))
	p("time without current values, per client of replica 0 (%d): p50 %s, p99 %s, max %s",
		len(r.outages), secs(percentile(r.outages, .5)), secs(percentile(r.outages, .99)), secs(percentile(r.outages, 1)))
	p("")
	p("--stream-accept-rate of each replica: %g streams/s (0: no limit)", c.acceptRate)
	p("per replica, from the stop until %s (all back and every client with the last change):", secs(r.settled))
	p("  %-8s %9s %12s %7s %12s %9s", "replica", "accepted", "peak /1 s", "503s", "peak 503/1 s", "refused")
	for i := range r.accepts {
		p("  %-8d %9d %12d %7d %12d %9d", i, len(r.accepts[i]), peakPerWindow(r.accepts[i], time.Second),
			len(r.rejects[i]), peakPerWindow(r.rejects[i], time.Second), len(r.failures[i]))
	}
	p("")
	p("surviving replicas (sampled every 100 ms from the stop):")
	for i := 1; i < len(r.samples); i++ {
		ss := r.samples[i]
		if len(ss) == 0 {
			continue
		}
		peakRSS := int64(0)
		for _, s := range ss {
			peakRSS = max(peakRSS, s.u.rss)
		}
		peak, total := peakCPU(ss, time.Second, r.allBack)
		p("  replica %d: RSS %s before, peak %s, %s at the end; CPU %s until all were back (%.2f cores on average), peak %.2f cores over 1 s",
			i, mib(r.baseline[i].rss), mib(peakRSS), mib(ss[len(ss)-1].u.rss), secs(total),
			total.Seconds()/max(r.allBack.Seconds(), 1e-9), peak)
	}
	p("client process CPU until all were back: %s (%.2f cores)", secs(r.clientCPU), r.clientCPU.Seconds()/max(r.clientCPUInterval.Seconds(), 1e-9))
	p("")
	final := "off"
	if r.final {
		final = "on"
	}
	p("missed changes: %d of %d clients do not hold the last value written (%s %s)", r.missed, r.n, flipKeyName, final)
}

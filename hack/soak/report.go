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
	"os"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The bounds on growth: the median over the last third of the load at most this many times
// the median over the first third.
const (
	goroutineBound = 1.25
	rssBound       = 1.5
)

func apimetaItems(l client.ObjectList) ([]client.Object, error) {
	objs, err := apimeta.ExtractList(l)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		if co, ok := o.(client.Object); ok {
			out = append(out, co)
		}
	}
	return out, nil
}

// bounds compares the managers' goroutines and RSS (each summed over both replicas, from the
// samples where both answered) over the last third of the load against the first third.
func bounds(samples []sample, load float64) []bound {
	sum := func(m map[string]float64) (float64, bool) {
		var t float64
		for i := range replicas {
			v, ok := m[fmt.Sprintf("manager-%d", i)]
			if !ok {
				return 0, false
			}
			t += v
		}
		return t, true
	}
	figure := func(what string, limit float64, of func(sample) (float64, bool)) bound {
		var first, last []float64
		for _, s := range samples {
			v, ok := of(s)
			switch {
			case !ok || s.T > load:
			case s.T < load/3:
				first = append(first, v)
			case s.T >= 2*load/3:
				last = append(last, v)
			}
		}
		b := bound{What: what, Max: limit, First: median(first), Last: median(last)}
		if b.First > 0 {
			b.Ratio = b.Last / b.First
		}
		b.Within = len(first) > 0 && len(last) > 0 && b.Ratio <= limit
		return b
	}
	return []bound{
		figure("managers' goroutines", goroutineBound, func(s sample) (float64, bool) { return sum(s.Goroutines) }),
		figure("managers' RSS", rssBound, func(s sample) (float64, bool) { return sum(s.RSS) }),
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// processes are the plotted processes, in legend order.
var processes = []string{"manager-0", "manager-1", "kube-apiserver", "etcd", "harness"}

// plot writes the RSS of every process over time as an SVG, with the faults marked.
func (r *report) plot(f *os.File) error {
	var all []series
	for _, name := range processes {
		s := series{Name: name}
		for _, smp := range r.Samples {
			if v, ok := smp.RSS[name]; ok {
				s.Points = append(s.Points, point{smp.T, v})
			}
		}
		all = append(all, s)
	}
	var marks []svgTick
	for _, a := range r.Faults {
		marks = append(marks, svgTick{Pos: a.Started, Label: shortFault[a.Kind]})
	}
	title := fmt.Sprintf("flagops soak: RSS every %s, %d streams, %g writes/s, seed %d (go run ./hack/soak)", sampleEvery, r.Options.Streams, r.Options.Rate, r.Options.Seed)
	return writeSVG(f, title, all, marks)
}

var shortFault = map[string]string{faultKillLeader: "kill", faultRestartAPI: "api", faultRestartEtcd: "etcd", faultPauseReplica: "pause", faultAuditErrors: "5xx"}

func (r *report) print() {
	fmt.Printf("command      %s\n", r.Command)
	fmt.Printf("machine      %d CPUs, %s, %s; load before %s, after %s\n", r.Machine.NProc, r.Machine.CPU, r.Machine.GoVersion, r.Machine.LoadBefore, r.Machine.LoadAfter)
	fmt.Printf("load         %.0f s: %d streams, %d writers at %g writes/s: %d attempts, %d committed, %d conflicts, %d failed\n",
		r.LoadSeconds, r.Options.Streams, len(writerNames), r.Options.Rate, r.Writes.Attempts, r.Writes.Committed, r.Writes.Conflicts, r.Writes.Failed)
	for _, a := range r.Faults {
		status := "ok"
		if a.Error != "" {
			status = a.Error
		}
		fmt.Printf("fault        %-18s at %6.0f s, took %5.1f s %s: %s\n", a.Kind, a.Started, a.Took, a.Target, status)
	}
	var starts []string
	for _, name := range processes[:replicas] {
		starts = append(starts, fmt.Sprintf("%s %d", name, r.Restarts[name]))
	}
	fmt.Printf("managers     started %s times\n", strings.Join(starts, ", "))
	if r.Options.Webhooks {
		fmt.Printf("webhooks     connections passed to %v, %d refused (no replica ready)\n", r.WebhookConnections, r.WebhookRefused)
	}
	if a := r.Audit; a != nil {
		fmt.Printf("audit        %d objects, %d commits: %d records received, %d distinct, %d redelivered (same id, same content), %d again with another time, %d coalesced, %d objects unseen (deleted before the finalizer); %d lost, %d duplicated, %d invalid; %d verified actors, %d wrong; an unverified actor hint differs from the writer on %d; caught up %.0f s after the load; %d requests refused (5xx window)\n",
			a.Objects, a.Commits, a.Received, a.Distinct, a.Redelivered, a.Retimed, a.Coalesced, a.Unseen, len(a.Lost), len(a.Duplicated), len(a.Invalid), a.Verified, len(a.WrongActors), a.ActorMismatches, r.AuditSeconds, r.AuditRefused)
		for _, s := range a.RetimedSample {
			fmt.Printf("  again with another time: %s\n", s)
		}
		for _, l := range [][]string{a.Lost, a.Duplicated, a.Invalid, a.WrongActors} {
			for _, s := range l[:min(len(l), 10)] {
				fmt.Printf("  %s\n", s)
			}
		}
	}
	if s := r.Streams; s != nil {
		fmt.Printf("streams      %d, %d connected at the end, %d missed; %d connects, %d failed attempts, %d snapshots, %d changes, %d up-to-date resumes; converged %.0f s after the audit\n",
			s.Streams, s.Connected, s.Missed, s.Connects, s.Failures, s.Snapshots, s.Changes, s.UpToDate, s.ConvergedSecs)
		for _, m := range s.MissedSample {
			fmt.Printf("  %s\n", m)
		}
	}
	for _, b := range r.Bounds {
		fmt.Printf("bound        %s: median first third %.0f, last third %.0f, ratio %.2f (bound %.2f): within %t\n", b.What, b.First, b.Last, b.Ratio, b.Max, b.Within)
	}
	peak := map[string]float64{}
	for _, s := range r.Samples {
		for k, v := range s.RSS {
			peak[k] = max(peak[k], v)
		}
	}
	var peaks []string
	for _, name := range processes {
		peaks = append(peaks, fmt.Sprintf("%s %.0f MB", name, peak[name]))
	}
	fmt.Printf("peak RSS     %s (%d samples)\n", strings.Join(peaks, ", "), len(r.Samples))
	for _, e := range r.Errors {
		fmt.Printf("error        %s\n", e)
	}
}

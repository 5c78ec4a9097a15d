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

// Command sdk-soak runs the Go provider (sdk/go) against `flagops serve --dir` for a
// while, under a steady write load, and restarts the server several times:
//
//   - the directory holds -flags flags (Boolean, String, String with a rule on plan,
//     Number) and UserFlagOverrides of some users, written atomically
//     (internal/atomicfile); a sentinel flag, soak.seq, numbers the writes;
//   - -providers providers, each under an OpenFeature domain of its own with its own
//     evaluation context (user-000, ..., half of them plan=pro), in this process;
//   - a seeded write load of -rate writes a second: flags flipped, values changed,
//     users' overrides changed or deleted (users up to -providers+10, so some changes
//     reach no provider);
//   - -restarts restarts of the server at seeded times spread over -duration, each a new
//     process on the same port, killed (SIGKILL) or interrupted (SIGINT), with or
//     without writes while it is down, in turn;
//   - checkpoints at the start, after each recovery and at the end: the load pauses, the
//     sentinel is written and the server is polled until it serves it. After a recovery,
//     once every provider emitted PROVIDER_READY again, each provider's values must equal
//     a fresh POST /v1/evaluate for its context at once (value, enabled, variant and
//     source through Provider.UserFlags; the value through its OpenFeature client). At
//     every checkpoint each provider must then, within -wait, hold those values and have
//     named in PROVIDER_CONFIGURATION_CHANGED every key whose result changed since the
//     previous checkpoint.
//
// It exits non-zero on any stale value, missed change, missing event or goroutine leak.
//
//	go run ./hack/sdk-soak -duration 10m -restarts 5 -out soak.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/hack/internal/machine"
	"github.com/flagops/flagops/internal/atomicfile"
	"github.com/flagops/flagops/test/servetest"
)

type options struct {
	duration  time.Duration
	restarts  int
	providers int
	flags     int
	rate      float64
	seed      uint64
	down      time.Duration
	wait      time.Duration
	bin, out  string
	verbose   bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the soak runs")
	flag.IntVar(&o.restarts, "restarts", 5, "server restarts, spread over the duration")
	flag.IntVar(&o.providers, "providers", 50, "providers, one evaluation context each")
	flag.IntVar(&o.flags, "flags", 100, "flags in the directory (at least 8)")
	flag.Float64Var(&o.rate, "rate", 2, "writes a second")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the write load and the restart times")
	flag.DurationVar(&o.down, "down", 3*time.Second, "how long the server stays down at each restart")
	flag.DurationVar(&o.wait, "wait", 90*time.Second, "bound on every wait (events, convergence, the server)")
	flag.StringVar(&o.bin, "bin", "", "the flagops binary (default: built from this module)")
	flag.StringVar(&o.out, "out", "", "write the summary as JSON to this file too")
	flag.BoolVar(&o.verbose, "v", false, "log the providers' connection reports (Info)")
	flag.Parse()
	sum, err := run(o)
	if sum != nil {
		sum.print()
		if o.out != "" {
			if werr := writeJSON(o.out, sum); werr != nil {
				fmt.Fprintln(os.Stderr, "sdk-soak:", werr)
				os.Exit(1)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk-soak:", err)
		os.Exit(1)
	}
	if fails := sum.failures(); len(fails) > 0 {
		fmt.Fprintln(os.Stderr, "sdk-soak: FAILED:", strings.Join(fails, "; "))
		os.Exit(1)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the summary: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

func (o *options) check() error {
	switch {
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.restarts < 0:
		return errors.New("-restarts must not be negative")
	case o.providers < 1:
		return errors.New("-providers must be at least 1")
	case o.flags < 8:
		return errors.New("-flags must be at least 8")
	case o.rate <= 0:
		return errors.New("-rate must be positive")
	case o.down < 0:
		return errors.New("-down must not be negative")
	case o.wait <= 0:
		return errors.New("-wait must be positive")
	}
	return nil
}

// soak is one run.
type soak struct {
	o      options
	bin    string
	dir    string
	world  *world
	srv    *servetest.Server
	addr   string
	probes []*probe
	hc     *http.Client
	sum    *summary
}

func run(o options) (*summary, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "sdk-soak-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // best effort
	s := &soak{o: o, bin: o.bin, dir: filepath.Join(tmp, "flags"), hc: &http.Client{Timeout: 30 * time.Second},
		sum: newSummary(o)}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("flags directory: %w", err)
	}
	if s.bin == "" {
		s.bin = filepath.Join(tmp, "flagops")
		if err := servetest.BuildTo(s.bin); err != nil {
			return nil, err
		}
	}
	s.world = newWorld(s.dir, o.flags, o.providers+10, o.seed)
	if err := s.world.setup(); err != nil {
		return nil, err
	}
	if s.srv, err = servetest.StartProcess(s.bin, s.dir, "127.0.0.1:0"); err != nil {
		return nil, s.withLog(err)
	}
	s.addr = s.srv.Addr
	defer func() { s.srv.Stop() }()
	err = s.soak(ctx)
	return s.sum, s.withLog(err)
}

// withLog adds the tail of the server's log to err.
func (s *soak) withLog(err error) error {
	if err == nil || s.srv == nil {
		return err
	}
	tail := s.srv.Log.String()
	if len(tail) > 4000 {
		tail = "..." + tail[len(tail)-4000:]
	}
	return fmt.Errorf("%w\nserver log:\n%s", err, tail)
}

func (s *soak) url() string { return "http://" + s.addr }

func (s *soak) soak(ctx context.Context) error {
	level := slog.LevelWarn
	if s.o.verbose {
		level = slog.LevelInfo
	}
	plog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	defer func() { _ = openfeature.ShutdownWithContext(context.Background()) }() // ends the providers' streams
	for i := range s.o.providers {
		p, err := newProbe(i, s.url(), plog)
		if err != nil {
			return err
		}
		s.probes = append(s.probes, p)
		wg.Go(func() { p.record(stop) })
		initCtx, cancel := context.WithTimeout(ctx, s.o.wait)
		err = openfeature.SetNamedProviderWithContextAndWait(initCtx, p.domain, p)
		cancel()
		if err != nil {
			return fmt.Errorf("provider %s: %w", p.domain, err)
		}
		p.client = openfeature.NewClient(p.domain)
	}

	start := time.Now()
	s.sum.began = start
	seq, err := s.world.pause()
	if err != nil {
		return err
	}
	if err := s.checkpoint(ctx, "start", seq, false, nil); err != nil {
		return err
	}
	s.world.resume()

	// The load.
	loadErr := make(chan error, 1)
	wg.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.o.rate))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := s.world.step(); err != nil {
					loadErr <- err
					return
				}
			case <-stop:
				return
			}
		}
	})
	// RSS and goroutines of this process, every 5 s.
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sum.sampleQuick()
			case <-stop:
				return
			}
		}
	})

	rng := rand.New(rand.NewPCG(s.o.seed, 0x7e57a27))
	for i, at := range restartTimes(rng, s.o.duration, s.o.restarts) {
		if err := waitUntil(ctx, start.Add(at), loadErr); err != nil {
			return err
		}
		if err := s.restart(ctx, i+1, start, loadErr); err != nil {
			return fmt.Errorf("restart %d: %w", i+1, err)
		}
	}
	if err := waitUntil(ctx, start.Add(s.o.duration), loadErr); err != nil {
		return err
	}
	if seq, err = s.world.pause(); err != nil {
		return err
	}
	if err := s.checkpoint(ctx, "end", seq, false, nil); err != nil {
		return err
	}
	s.sum.Elapsed = seconds(time.Since(start))
	for _, c := range s.sum.Checkpoints {
		s.sum.Events.ExpectedKeys += c.Expected
	}
	s.sum.Writes, s.sum.WritesByKind = s.world.stats()
	s.sum.WriteRate = float64(s.sum.Writes) / time.Since(start).Seconds()
	for _, p := range s.probes {
		counts, keys := p.eventCounts()
		s.sum.Events.Ready += counts[openfeature.ProviderReady]
		s.sum.Events.Stale += counts[openfeature.ProviderStale]
		s.sum.Events.Error += counts[openfeature.ProviderError]
		s.sum.Events.ConfigChanged += counts[openfeature.ProviderConfigChange]
		s.sum.Events.ChangedKeys += keys
	}
	return nil
}

// restartTimes returns n times in (0, d): the i-th near i·d/(n+1), seeded within a
// quarter of d/(n+1) either side.
func restartTimes(rng *rand.Rand, d time.Duration, n int) []time.Duration {
	slot := d / time.Duration(n+1)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = slot*time.Duration(i+1) + slot/4 + time.Duration(rng.Int64N(int64(slot/2)+1)) - slot/2
	}
	return out
}

// waitUntil waits for the time t (the scenario's clock, not a synchronisation).
func waitUntil(ctx context.Context, t time.Time, loadErr <-chan error) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case err := <-loadErr:
		return fmt.Errorf("write load: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// restart kinds, in turn: SIGKILL with writes while down, SIGINT without, SIGKILL
// without, SIGINT with.
var restartKinds = []struct {
	kill, writes bool
}{{true, true}, {false, false}, {true, false}, {false, true}}

func (s *soak) restart(ctx context.Context, n int, start time.Time, loadErr <-chan error) error {
	kind := restartKinds[(n-1)%len(restartKinds)]
	r := restartResult{N: n, At: seconds(time.Since(start)), Signal: "SIGINT", WritesWhileDown: kind.writes}
	for _, p := range s.probes {
		drain(p.ready)
		drain(p.stale)
	}
	var seq int
	var err error
	if !kind.writes {
		if seq, err = s.world.pause(); err != nil {
			return err
		}
	}
	seqBefore, _ := s.world.stats()
	down := time.Now()
	if kind.kill {
		r.Signal = "SIGKILL"
		s.srv.Kill()
	} else {
		s.srv.Stop()
	}
	for _, p := range s.probes {
		if _, ok := waitEvent(ctx, p.stale, s.o.wait); !ok {
			r.MissingStale++
		}
	}
	if err := waitUntil(ctx, down.Add(s.o.down), loadErr); err != nil {
		return err
	}
	if kind.writes {
		if seq, err = s.world.pause(); err != nil {
			return err
		}
		r.Writes = seq - seqBefore - 1 // the sentinel aside
	}
	srv, err := servetest.StartProcess(s.bin, s.dir, s.addr)
	if srv != nil {
		s.srv = srv
	}
	if err != nil {
		return err
	}
	up := s.srv.Serving
	r.Down = seconds(up.Sub(down))
	var reconnect []time.Duration
	for _, p := range s.probes {
		at, ok := waitEvent(ctx, p.ready, s.o.wait)
		if !ok {
			r.MissingReady++
			continue
		}
		reconnect = append(reconnect, at.Sub(up))
	}
	r.Reconnect = statsOf(reconnect)
	s.sum.reconnect = append(s.sum.reconnect, reconnect...)
	if err := s.checkpoint(ctx, fmt.Sprintf("restart %d", n), seq, true, &r); err != nil {
		return err
	}
	s.world.resume()
	return nil
}

func waitEvent(ctx context.Context, c <-chan time.Time, wait time.Duration) (time.Time, bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case t := <-c:
		return t, true
	case <-timer.C:
		return time.Time{}, false
	case <-ctx.Done():
		return time.Time{}, false
	}
}

// checkpoint waits until the server serves the sentinel seq, then checks every provider
// against a fresh evaluation of its context: at once when strict (after a recovery,
// with the load paused, the values at READY must be current), then within -wait for
// the values and the change events. It records the result in r (when not nil) and the
// summary.
func (s *soak) checkpoint(ctx context.Context, label string, seq int, strict bool, r *restartResult) error {
	if r == nil {
		r = &restartResult{}
	}
	served := time.Now()
	if err := s.poll(ctx, func() (bool, error) {
		flags, err := s.probes[0].evaluate(ctx, s.hc, s.url())
		if err != nil {
			return false, nil // the server may still be starting; the deadline reports it
		}
		v, _ := flags[seqKey].Value.(float64)
		return int(v) == seq, nil
	}); err != nil {
		return fmt.Errorf("%s: the server did not serve %s = %d: %w", label, seqKey, seq, err)
	}
	r.ServerApplied = seconds(time.Since(served))
	var converge []time.Duration
	for _, p := range s.probes {
		want, err := p.evaluate(ctx, s.hc, s.url())
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		if strict {
			if err := s.poll(ctx, func() (bool, error) { return p.client.State() == openfeature.ReadyState, nil }); err != nil {
				r.NotReady++
			}
			if keys := p.staleKeys(ctx, want); len(keys) > 0 {
				r.StaleAtReady += len(keys)
				s.sum.note(fmt.Sprintf("%s: %s stale at READY: %v", label, p.user, keys))
			}
		}
		began := time.Now()
		var stale, missed []string
		var expected int
		err = s.poll(ctx, func() (bool, error) {
			stale = p.staleKeys(ctx, want)
			missed, expected = p.unnotified(want)
			return len(stale) == 0 && len(missed) == 0, nil
		})
		converge = append(converge, time.Since(began))
		r.Stale += len(stale)
		r.Missed += len(missed)
		r.Expected += expected
		if err != nil {
			s.sum.note(fmt.Sprintf("%s: %s stale %v, changes not notified %v", label, p.user, stale, missed))
		}
		p.checkpoint(want)
	}
	r.Converge = statsOf(converge)
	r.Label = label
	s.sum.checkpoint(*r)
	log.Printf("%s: reconnect median %.0f ms, stale at READY %d, stale %d, missed %d of %d changes",
		label, r.Reconnect.Median, r.StaleAtReady, r.Stale, r.Missed, r.Expected)
	return nil
}

// poll calls f every 20 ms until it reports true, for at most -wait.
func (s *soak) poll(ctx context.Context, f func() (bool, error)) error {
	deadline := time.Now().Add(s.o.wait)
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", s.o.wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ---- summary ----

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// durStats are milliseconds.
type durStats struct {
	N                int
	Min, Median, Max float64
}

func statsOf(d []time.Duration) durStats {
	if len(d) == 0 {
		return durStats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return durStats{N: len(s), Min: ms(s[0]), Median: ms(s[len(s)/2]), Max: ms(s[len(s)-1])}
}

// restartResult is one checkpoint: at the start, after a restart, at the end.
type restartResult struct {
	Label           string
	N               int     `json:",omitempty"`
	At              float64 `json:",omitempty"` // seconds since the soak began
	Signal          string  `json:",omitempty"`
	WritesWhileDown bool    `json:",omitempty"`
	Writes          int     `json:",omitempty"` // made while down
	Down            float64 `json:",omitempty"` // seconds from the signal to the new server's address
	MissingStale    int     // providers that emitted no PROVIDER_STALE within -wait
	MissingReady    int     // nor PROVIDER_READY
	NotReady        int     // OpenFeature clients not READY within -wait
	Reconnect       durStats
	ServerApplied   float64 // seconds until the server served the sentinel
	StaleAtReady    int     // values that differed from the server's once every provider was READY
	Stale           int     // values that still differed after -wait
	Missed          int     // changed keys no event named within -wait
	Expected        int     // changed keys between checkpoints (server's evaluations; a lower bound)
	Converge        durStats
	Memory          memSample
}

type memSample struct {
	Label      string
	At         float64 // seconds since the soak began
	Goroutines int
	HeapInuse  uint64 // after a GC
	RSS        uint64
}

type summary struct {
	Command      string
	Machine      string
	Options      map[string]string
	Elapsed      float64
	Writes       int
	WriteRate    float64
	WritesByKind map[string]int
	Events       struct {
		Ready, Stale, Error, ConfigChanged, ChangedKeys int
		// ExpectedKeys is the sum of the checkpoints' Expected: a lower bound of
		// ChangedKeys.
		ExpectedKeys          int
		ExpectedStaleAndReady int
	}
	Reconnect   durStats
	Checkpoints []restartResult
	RSSMax      uint64
	Goroutines  struct{ Min, Max int }
	Notes       []string

	mu        sync.Mutex
	providers int
	began     time.Time
	reconnect []time.Duration
}

func newSummary(o options) *summary {
	s := &summary{Command: strings.Join(os.Args, " "), Machine: machine.Describe(), began: time.Now(), providers: o.providers,
		Options: map[string]string{
			"duration": o.duration.String(), "restarts": strconv.Itoa(o.restarts), "providers": strconv.Itoa(o.providers),
			"flags": strconv.Itoa(o.flags), "rate": strconv.FormatFloat(o.rate, 'f', -1, 64), "seed": strconv.FormatUint(o.seed, 10),
			"down": o.down.String(), "wait": o.wait.String(),
		}}
	s.Events.ExpectedStaleAndReady = o.providers * o.restarts
	return s
}

func rss() uint64 {
	n, err := machine.RSS(0)
	if err != nil {
		return 0 // reported as 0
	}
	return uint64(n)
}

func (s *summary) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.Notes) < 50 {
		s.Notes = append(s.Notes, msg)
	}
}

func (s *summary) sampleQuick() {
	r, g := rss(), runtime.NumGoroutine()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.RSSMax = max(s.RSSMax, r)
	if s.Goroutines.Min == 0 || g < s.Goroutines.Min {
		s.Goroutines.Min = g
	}
	s.Goroutines.Max = max(s.Goroutines.Max, g)
}

func (s *summary) sample(label string) memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.sampleQuick()
	return memSample{Label: label, At: seconds(time.Since(s.began)), Goroutines: runtime.NumGoroutine(),
		HeapInuse: ms.HeapInuse, RSS: rss()}
}

func (s *summary) checkpoint(r restartResult) {
	r.Memory = s.sample(r.Label)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Checkpoints = append(s.Checkpoints, r)
	s.Reconnect = statsOf(s.reconnect)
}

// failures lists what makes the run fail.
func (s *summary) failures() []string {
	var out []string
	for _, c := range s.Checkpoints {
		for _, f := range []struct {
			n    int
			what string
		}{{c.StaleAtReady, "values stale at READY"}, {c.Stale, "values stale after the wait"},
			{c.Missed, "changes not notified"}, {c.MissingStale, "providers without PROVIDER_STALE"},
			{c.MissingReady, "providers without PROVIDER_READY"}, {c.NotReady, "clients not READY"}} {
			if f.n > 0 {
				out = append(out, fmt.Sprintf("%s: %d %s", c.Label, f.n, f.what))
			}
		}
	}
	if n := len(s.Checkpoints); n > 1 {
		first, last := s.Checkpoints[0].Memory.Goroutines, s.Checkpoints[n-1].Memory.Goroutines
		if last-first > s.providers { // a goroutine leaked per provider and restart would pass it
			out = append(out, fmt.Sprintf("goroutines grew from %d to %d", first, last))
		}
	}
	return out
}

func (s *summary) print() {
	s.mu.Lock()
	defer s.mu.Unlock()
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	ms := func(d durStats) string {
		if d.N == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f / %.0f ms", d.Min, d.Median, d.Max)
	}
	fmt.Printf("command: %s\nmachine: %s\n", s.Command, s.Machine)
	fmt.Printf("ran %.1f s; %d writes (%.2f/s; sentinels included) %v\n", s.Elapsed, s.Writes, s.WriteRate, s.WritesByKind)
	fmt.Printf("events: READY %d, STALE %d (expected %d each), ERROR %d, CONFIGURATION_CHANGED %d naming %d keys (expected at least %d)\n",
		s.Events.Ready, s.Events.Stale, s.Events.ExpectedStaleAndReady, s.Events.Error, s.Events.ConfigChanged, s.Events.ChangedKeys,
		s.Events.ExpectedKeys)
	fmt.Printf("reconnect (new server serving, by its log's clock -> PROVIDER_READY), min / median / max over %d: %s\n", s.Reconnect.N, ms(s.Reconnect))
	fmt.Printf("%-10s %7s %-7s %5s %6s %6s %16s %6s %6s %6s %6s %20s %6s %9s %9s\n",
		"checkpoint", "at s", "signal", "wdown", "down s", "served", "reconnect", "atRdy", "stale", "missed", "expect", "converge", "gorout", "heap", "RSS")
	for _, c := range s.Checkpoints {
		wd, at := "", c.Memory.At // the checkpoint's end; for a restart, its signal
		if c.Signal != "" {
			wd, at = strconv.Itoa(c.Writes), c.At
		}
		fmt.Printf("%-10s %7.1f %-7s %5s %6.2f %6.2f %16s %6d %6d %6d %6d %20s %6d %9s %9s\n",
			c.Label, at, c.Signal, wd, c.Down, c.ServerApplied, ms(c.Reconnect), c.StaleAtReady, c.Stale, c.Missed,
			c.Expected, ms(c.Converge), c.Memory.Goroutines, mib(c.Memory.HeapInuse), mib(c.Memory.RSS))
	}
	fmt.Printf("sampled every 5 s: RSS max %s, goroutines %d..%d\n", mib(s.RSSMax), s.Goroutines.Min, s.Goroutines.Max)
	for _, n := range s.Notes {
		fmt.Println("note:", n)
	}
}

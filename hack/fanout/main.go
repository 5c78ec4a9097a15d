// Command fanout measures, in one run, the SSE fan-out of the flagops evaluator server
// against a bare net/http broadcaster, over loopback, on this machine:
//
//   - memory per idle stream (server process VmRSS and Go heap+stacks, after a GC, growth
//     divided by N), with a namespace of 100 flags, 10 of them with rules;
//   - store write to event at every one of N streams: p50, p99 and max per round, timed
//     from just before the write in the server process (flagops: Store.Apply; bare: the
//     broadcast loop) until each client reader has read its event. Nothing is subtracted
//     and no debounce is in the path;
//   - flagops only: a per-user override change (one user's override created or deleted)
//     until that user's stream has its event, with N streams open.
//
// Each server runs as a subprocess of this binary (-server flagops|bare); the N clients
// run in this process. Servers and clients share the machine's cores.
//
//	go run ./hack/fanout -n 10000 -rounds 5 -user-rounds 50
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
	"github.com/flagops/flagops/evaluator/server"
	"github.com/flagops/flagops/hack/internal/benchns"
	"github.com/flagops/flagops/hack/internal/machine"
)

const (
	benchNS  = benchns.Namespace
	flipKey  = benchns.FlipKey
	userSeen = 7 // the user of the per-user override rounds
)

func main() {
	n := flag.Int("n", 1000, "number of SSE streams")
	rounds := flag.Int("rounds", 5, "store writes reaching all N streams, per server")
	userRounds := flag.Int("user-rounds", 50, "per-user override changes (flagops)")
	timeout := flag.Duration("timeout", 10*time.Minute, "overall timeout")
	kind := flag.String("server", "", "internal: run the flagops or bare server")
	addr := flag.String("addr", "", "internal: the server's address")
	flag.Parse()
	if *kind != "" {
		if err := runServer(*kind, *addr); err != nil {
			fmt.Fprintln(os.Stderr, "fanout server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *rounds, *userRounds, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// ---- servers (subprocesses) ----

// benchServer is the control side of a server: /bench/flip and /bench/override make a
// store write (or broadcast) and answer with the wall time just before it; /bench/mem
// collects garbage, returns free memory to the OS and reports the Go heap and stacks.
type benchServer struct {
	flip     func()
	override func(on bool)
}

func (b *benchServer) routes(mux *http.ServeMux) {
	stamp := func(w http.ResponseWriter, f func()) {
		t0 := time.Now()
		f()
		// A failed write fails the client's decode, which reports it.
		_, _ = fmt.Fprintf(w, `{"t0":%d}`, t0.UnixNano())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("POST /bench/flip", func(w http.ResponseWriter, _ *http.Request) { stamp(w, b.flip) })
	mux.HandleFunc("POST /bench/override", func(w http.ResponseWriter, r *http.Request) {
		on := r.URL.Query().Get("on") == "1"
		stamp(w, func() { b.override(on) })
	})
	mux.HandleFunc("GET /bench/mem", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// As in stamp: the client's decode reports a failed write.
		_, _ = fmt.Fprintf(w, `{"heap":%d,"stacks":%d}`, ms.HeapInuse, ms.StackInuse)
	})
}

func runServer(kind, addr string) error {
	store, err := benchns.Store()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	switch kind {
	case "flagops":
		state := false
		b := &benchServer{
			flip: func() {
				state = !state
				f := benchns.Flip(state)
				if _, _, err := store.Apply(adapt.UpsertFlag(&f)); err != nil {
					panic(err)
				}
			},
			override: func(on bool) {
				name := "u" + strconv.Itoa(userSeen)
				op := evaluator.DeleteOverride(evaluator.SubjectUser, benchNS, name)
				if on {
					v := !state
					op = evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: name,
						Namespace: benchNS, Name: name, Enabled: true, CreatedAt: time.Now(),
						Entries: []evaluator.OverrideEntry{{Key: flipKey, Enabled: &v}}})
				}
				if _, _, err := store.Apply(op); err != nil {
					panic(err)
				}
			},
		}
		b.routes(mux)
		mux.Handle("/", server.New(store, server.Options{DefaultNamespace: benchNS, Heartbeat: time.Hour, MaxSubscribers: -1}))
	case "bare":
		bare, err := newBare(store)
		if err != nil {
			return err
		}
		b := &benchServer{flip: bare.broadcast, override: func(bool) {}}
		b.routes(mux)
		mux.HandleFunc("GET /v1/stream", bare.stream)
	default:
		return fmt.Errorf("unknown server %q", kind)
	}
	return http.ListenAndServe(addr, mux)
}

// bare is a minimal net/http SSE broadcaster: every stream gets the same snapshot bytes a
// flagops stream gets (rendered once), and a broadcast writes one prepared event to every
// stream and flushes it.
type bare struct {
	snapshot []byte
	mu       sync.Mutex
	streams  map[chan []byte]struct{}
	rev      int
}

func newBare(store *evaluator.Store) (*bare, error) {
	results := store.Namespace(benchNS).EvaluateAll(evaluator.Context{UserID: "u0"})
	flags := map[string]any{}
	for _, r := range results {
		flags[r.Key] = map[string]any{"value": r.Raw, "enabled": r.Enabled, "variant": r.Variant, "reason": r.Reason.String(), "source": r.Source}
	}
	data, err := json.Marshal(map[string]any{"namespace": benchNS, "revision": 1, "flags": flags})
	if err != nil {
		return nil, err
	}
	return &bare{snapshot: fmt.Appendf(nil, "id: 1\nevent: snapshot\ndata: %s\n\n", data), streams: map[chan []byte]struct{}{}}, nil
}

func (b *bare) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch := make(chan []byte, 16)
	b.mu.Lock()
	b.streams[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.streams, ch)
		b.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	if _, err := w.Write(b.snapshot); err != nil || rc.Flush() != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if _, err := w.Write(ev); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func (b *bare) broadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rev++
	ev := fmt.Appendf(nil, "id: %d\nevent: device.feature-flags.changed\ndata: {\"revision\":%d,\"changed\":{%q:{\"value\":%t}},\"removed\":[]}\n\n",
		b.rev, b.rev, flipKey, b.rev%2 == 1)
	for ch := range b.streams {
		select {
		case ch <- ev:
		default:
		}
	}
}

// ---- driver ----

var (
	childMu  sync.Mutex
	children []*exec.Cmd
)

func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for _, c := range children {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	children = nil
}

// serverProc is a running server subprocess.
type serverProc struct {
	kind, base string
	cmd        *exec.Cmd
}

func startServer(ctx context.Context, kind string) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-server", kind, "-addr", addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	childMu.Lock()
	children = append(children, cmd)
	childMu.Unlock()
	p := &serverProc{kind: kind, base: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			closeBody(resp)
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s server not up: %w", kind, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mem is the server's memory after a GC, in bytes.
type mem struct{ rss, heap, stacks int64 }

func (p *serverProc) mem() (mem, error) {
	resp, err := http.Get(p.base + "/bench/mem")
	if err != nil {
		return mem{}, err
	}
	defer closeBody(resp)
	var m struct{ Heap, Stacks int64 }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return mem{}, err
	}
	rss, err := machine.RSS(p.cmd.Process.Pid)
	return mem{rss: rss, heap: m.Heap, stacks: m.Stacks}, err
}

// write makes a store write (or broadcast) and returns its time in the server.
func (p *serverProc) write(path string) (time.Time, error) {
	resp, err := http.Post(p.base+path, "text/plain", nil)
	if err != nil {
		return time.Time{}, err
	}
	defer closeBody(resp)
	var r struct{ T0 int64 }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return time.Unix(0, r.T0), nil
}

// result is what one server measured.
type result struct {
	kind          string
	idle, open    mem
	rounds        []stats
	user          stats
	userRounds    int
	userReceived  int
	roundsMissing int
}

func measure(ctx context.Context, kind string, n, rounds, userRounds int) (*result, error) {
	p, err := startServer(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer killChildren()
	res := &result{kind: kind}
	if res.idle, err = p.mem(); err != nil {
		return nil, err
	}
	f, err := connect(ctx, n, func(i int) string { return fmt.Sprintf("%s/v1/stream?userId=u%d", p.base, i) })
	if err != nil {
		return nil, err
	}
	defer f.close()
	time.Sleep(2 * time.Second) // idle: the connection burst settles
	if res.open, err = p.mem(); err != nil {
		return nil, err
	}
	for range rounds {
		f.drain()
		t0, err := p.write("/bench/flip")
		if err != nil {
			return nil, err
		}
		d := f.collect(ctx, t0, nil, 120*time.Second)
		res.rounds = append(res.rounds, summarize(d))
		res.roundsMissing += n - len(d)
	}
	if kind == "flagops" {
		var user []time.Duration
		for i := range userRounds {
			f.drain()
			t0, err := p.write("/bench/override?on=" + strconv.Itoa(1-i%2))
			if err != nil {
				return nil, err
			}
			user = append(user, f.collect(ctx, t0, []int{userSeen}, 10*time.Second)...)
		}
		res.user, res.userRounds, res.userReceived = summarize(user), userRounds, len(user)
	}
	return res, ctx.Err()
}

func run(n, rounds, userRounds int, timeout time.Duration) error {
	if n <= userSeen {
		return fmt.Errorf("-n must be above %d (the per-user rounds use stream u%d)", userSeen, userSeen)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
		}
	}
	if rl.Cur < uint64(n)+256 {
		return fmt.Errorf("RLIMIT_NOFILE is %d, too low for %d streams", rl.Cur, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer killChildren()

	var results []*result
	for _, kind := range []string{"flagops", "bare"} {
		r, err := measure(ctx, kind, n, rounds, userRounds)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		results = append(results, r)
	}
	report(n, results[0], results[1])
	return nil
}

// ---- clients ----

type sub struct {
	snap    chan struct{} // closed on the first snapshot
	changed chan time.Time
}

type fleet struct {
	subs   []*sub
	cancel context.CancelFunc
	client *http.Client
	wg     sync.WaitGroup
}

// connect opens n streams to url(i) and waits until all have their snapshot.
func connect(ctx context.Context, n int, url func(i int) string) (*fleet, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	cctx, cancel := context.WithCancel(ctx)
	f := &fleet{cancel: cancel, client: &http.Client{Transport: tr}}
	sem := make(chan struct{}, 256) // bounded concurrent handshakes: the listen backlog is finite
	errc := make(chan error, n)
	for i := range n {
		s := &sub{snap: make(chan struct{}), changed: make(chan time.Time, 64)}
		f.subs = append(f.subs, s)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				return
			}
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer release()
			if err := read(cctx, f.client, url(i), s, release); err != nil && cctx.Err() == nil {
				errc <- fmt.Errorf("stream %d: %w", i, err)
			}
		}()
	}
	for i, s := range f.subs {
		select {
		case <-s.snap:
		case err := <-errc:
			f.close()
			return nil, err
		case <-ctx.Done():
			f.close()
			return nil, fmt.Errorf("waiting for the snapshot of stream %d: %w", i, ctx.Err())
		}
	}
	return f, nil
}

func (f *fleet) close() {
	f.cancel()
	f.wg.Wait()
	f.client.CloseIdleConnections()
}

// read reads a stream, noting the first snapshot and the time of every later event.
func read(ctx context.Context, c *http.Client, url string, s *sub, release func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %s: %s", resp.Status, b)
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	name, gotSnap := "", false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a long data line: only the event boundaries matter
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0 && name == "snapshot" && !gotSnap:
			gotSnap = true
			close(s.snap)
			release()
			name = ""
		case len(line) == 0 && name != "":
			select {
			case s.changed <- time.Now():
			default:
			}
			name = ""
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[len("event:"):]))
		}
	}
}

func (f *fleet) drain() {
	for _, s := range f.subs {
		for len(s.changed) > 0 {
			<-s.changed
		}
	}
}

// collect waits for one event per stream in idx (all when nil) and returns the delays
// from t0 of those that arrived within wait.
func (f *fleet) collect(ctx context.Context, t0 time.Time, idx []int, wait time.Duration) []time.Duration {
	if idx == nil {
		idx = make([]int, len(f.subs))
		for i := range idx {
			idx[i] = i
		}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	out := make([]time.Duration, 0, len(idx))
	for _, i := range idx {
		select {
		case at := <-f.subs[i].changed:
			out = append(out, at.Sub(t0))
		case <-deadline.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// ---- report ----

type stats struct {
	count         int
	p50, p99, max time.Duration
}

func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		k := int(float64(len(s))*p+0.999999) - 1
		return s[max(0, min(k, len(s)-1))]
	}
	return stats{count: len(s), p50: pct(0.50), p99: pct(0.99), max: s[len(s)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func median(ss []stats, f func(stats) time.Duration) time.Duration {
	v := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		v = append(v, f(s))
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

func report(n int, fo, br *result) {
	fmt.Printf("machine: nproc=%d, cpu=%s, %s, loopback 127.0.0.1; servers and clients share the cores\n",
		runtime.NumCPU(), machine.CPUModel(), runtime.Version())
	fmt.Printf("N=%d streams (GET /v1/stream?userId=u<i>); namespace of 100 flags, 10 with rules\n\n", n)

	perStream := func(a, b int64) float64 { return float64(b-a) / float64(n) / 1024 }
	fmt.Println("memory per idle stream, KiB (server process, after GC and FreeOSMemory: growth / N)")
	fmt.Printf("  %-9s %10s %14s\n", "", "VmRSS", "Go heap+stacks")
	for _, r := range []*result{fo, br} {
		fmt.Printf("  %-9s %10.2f %14.2f   (VmRSS %d -> %d KiB)\n", r.kind,
			perStream(r.idle.rss, r.open.rss), perStream(r.idle.heap+r.idle.stacks, r.open.heap+r.open.stacks),
			r.idle.rss>>10, r.open.rss>>10)
	}
	fmt.Printf("  ratio     %10s %14s\n\n",
		ratio(perStream(fo.idle.rss, fo.open.rss), perStream(br.idle.rss, br.open.rss)),
		ratio(perStream(fo.idle.heap+fo.idle.stacks, fo.open.heap+fo.open.stacks), perStream(br.idle.heap+br.idle.stacks, br.open.heap+br.open.stacks)))

	fmt.Println("store write to event at every stream, ms (from just before the write in the server")
	fmt.Println("process until each client reader has read the event; nothing subtracted)")
	fmt.Printf("  %-12s %12s %8s %8s %8s\n", "round", "received", "p50", "p99", "max")
	for _, r := range []*result{fo, br} {
		for i, s := range r.rounds {
			fmt.Printf("  %-12s %12s %8s %8s %8s\n", fmt.Sprintf("%s %d", r.kind, i+1), fmt.Sprintf("%d/%d", s.count, n), ms(s.p50), ms(s.p99), ms(s.max))
		}
	}
	p50 := func(s stats) time.Duration { return s.p50 }
	p99 := func(s stats) time.Duration { return s.p99 }
	mx := func(s stats) time.Duration { return s.max }
	fmt.Printf("\n  median over rounds %8s %8s %8s\n", "p50", "p99", "max")
	for _, r := range []*result{fo, br} {
		fmt.Printf("  %-18s %8s %8s %8s\n", r.kind, ms(median(r.rounds, p50)), ms(median(r.rounds, p99)), ms(median(r.rounds, mx)))
	}
	fmt.Printf("  %-18s %8s %8s %8s\n", "ratio",
		ratio(float64(median(fo.rounds, p50)), float64(median(br.rounds, p50))),
		ratio(float64(median(fo.rounds, p99)), float64(median(br.rounds, p99))),
		ratio(float64(median(fo.rounds, mx)), float64(median(br.rounds, mx))))
	if fo.roundsMissing+br.roundsMissing > 0 {
		fmt.Printf("  MISSING events: flagops %d, bare %d\n", fo.roundsMissing, br.roundsMissing)
	}

	fmt.Printf("\nper-user override change (user u%d's override created or deleted in the store), %d streams open\n", userSeen, n)
	fmt.Printf("  flagops  received %d/%d  p50 %s ms  p99 %s ms  max %s ms\n",
		fo.userReceived, fo.userRounds, ms(fo.user.p50), ms(fo.user.p99), ms(fo.user.max))
}

// closeBody closes a response body that was read or is not needed. Its error is ignored: a
// failed close costs the connection, which the transport then drops, and no result.
func closeBody(resp *http.Response) { _ = resp.Body.Close() }

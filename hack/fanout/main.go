// Command fanout measures the SSE fan-out of `flagops serve` against a bare
// net/http broadcaster, over loopback, on this machine.
//
//	go run ./hack/fanout -n 10000
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flagops/flagops/internal/localdir"
)

func main() {
	n := flag.Int("n", 1000, "number of SSE subscribers")
	timeout := flag.Duration("timeout", 5*time.Minute, "overall timeout")
	bare := flag.String("bare-server", "", "internal: run the bare broadcaster on this address")
	flag.Parse()
	if *bare != "" {
		if err := runBare(*bare); err != nil {
			fmt.Fprintln(os.Stderr, "bare-server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// children are the subprocesses to kill on exit.
var (
	childMu  sync.Mutex
	children []*exec.Cmd
)

func startChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	childMu.Lock()
	children = append(children, cmd)
	childMu.Unlock()
	return nil
}

func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for _, c := range children {
		if c.Process != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	children = nil
}

func run(n int, timeout time.Duration) error {
	if n < 8 {
		return errors.New("-n must be at least 8 (the per-user test uses subscriber u7)")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
		}
	}
	if rl.Cur < uint64(n)+256 {
		return fmt.Errorf("RLIMIT_NOFILE is %d, too low for %d subscribers", rl.Cur, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer killChildren()

	tmp, err := os.MkdirTemp("", "fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fo, err := runFlagops(ctx, tmp, n)
	if err != nil {
		return fmt.Errorf("flagops: %w", err)
	}
	killChildren()
	br, err := runBareBench(ctx, n)
	if err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	killChildren()
	report(n, fo, br)
	return nil
}

// ---- subscribers ----

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

// connect opens n subscribers to url(i) and waits until all got their snapshot.
func connect(ctx context.Context, n int, url func(i int) string) (*fleet, error) {
	tr := &http.Transport{
		MaxConnsPerHost:     0,
		MaxIdleConnsPerHost: n,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
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
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
				}
			}
			defer release()
			if err := read(cctx, f.client, url(i), s, release); err != nil && cctx.Err() == nil {
				errc <- fmt.Errorf("subscriber %d: %w", i, err)
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
			return nil, fmt.Errorf("waiting for snapshot of subscriber %d: %w", i, ctx.Err())
		}
	}
	return f, nil
}

func (f *fleet) close() {
	f.cancel()
	f.wg.Wait()
	f.client.CloseIdleConnections()
}

func read(ctx context.Context, c *http.Client, url string, s *sub, release func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %s: %s", resp.Status, b)
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	name := ""
	gotSnap := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a long data line: only the event boundaries matter
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if name == "" {
				continue
			}
			now := time.Now()
			if name == "snapshot" && !gotSnap {
				gotSnap = true
				close(s.snap)
				release()
			} else if name != "snapshot" {
				select {
				case s.changed <- now:
				default:
				}
			}
			name = ""
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[len("event:"):]))
		}
	}
}

// drain empties the change channels of all subscribers.
func (f *fleet) drain() {
	for _, s := range f.subs {
		for len(s.changed) > 0 {
			<-s.changed
		}
	}
}

// collect waits for one change event per subscriber in idx (all when nil) and
// returns the latencies from t0 and how many arrived before the deadline.
func (f *fleet) collect(ctx context.Context, t0 time.Time, idx []int, wait time.Duration) []time.Duration {
	if idx == nil {
		idx = make([]int, len(f.subs))
		for i := range idx {
			idx[i] = i
		}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var out []time.Duration
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

// ---- stats ----

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

// ---- process helpers ----

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string, cmd *exec.Cmd) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cmd.ProcessState != nil {
			return errors.New("server exited")
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 60s", url)
}

func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// ---- flagops ----

type flagopsResult struct {
	rssBefore, rssAfter int64
	single              []stats // N=1, per flip
	flips               []stats // N subscribers, per flip
	flipVal             []bool
	user                stats
	userRounds          int
}

const flagTmpl = `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: fanout.flag
  namespace: default
spec:
  type: Boolean
  description: fanout load test flag.
  enabled: %t
`

const overrideYAML = `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata:
  name: fanout-u7
  namespace: default
spec:
  userId: u7
  reason: fanout load test.
  flags:
  - key: fanout.flag
    enabled: true
`

func runFlagops(ctx context.Context, tmp string, n int) (*flagopsResult, error) {
	bin := filepath.Join(tmp, "flagops")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/flagops")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building ./cmd/flagops: %w", err)
	}
	dir := filepath.Join(tmp, "manifests")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	flagFile := filepath.Join(dir, "flag.yaml")
	ovFile := filepath.Join(dir, "override.yaml")
	state := false
	if err := os.WriteFile(flagFile, fmt.Appendf(nil, flagTmpl, state), 0o644); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(tmp, "flagops.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--dir", dir, "--evaluator-bind-address", addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startChild(cmd); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+addr+"/healthz", cmd); err != nil {
		return nil, err
	}
	url := func(i int) string { return fmt.Sprintf("http://%s/v1/stream?userId=u%d", addr, i) }
	res := &flagopsResult{}
	const wait = 60 * time.Second
	settle := func() { time.Sleep(400 * time.Millisecond) } // past the debounce of the previous write

	flip := func(f *fleet) ([]time.Duration, error) {
		settle()
		f.drain()
		state = !state
		t0 := time.Now()
		if err := os.WriteFile(flagFile, fmt.Appendf(nil, flagTmpl, state), 0o644); err != nil {
			return nil, err
		}
		return f.collect(ctx, t0, nil, wait), nil
	}

	// N=1 baseline: the debounce and reload cost without fan-out.
	one, err := connect(ctx, 1, url)
	if err != nil {
		return nil, err
	}
	for range 3 {
		d, err := flip(one)
		if err != nil {
			return nil, err
		}
		res.single = append(res.single, summarize(d))
	}
	one.close()

	time.Sleep(1 * time.Second)
	runtime.GC()
	if res.rssBefore, err = rssKiB(cmd.Process.Pid); err != nil {
		return nil, err
	}
	f, err := connect(ctx, n, url)
	if err != nil {
		return nil, err
	}
	defer f.close()
	time.Sleep(2 * time.Second) // idle
	if res.rssAfter, err = rssKiB(cmd.Process.Pid); err != nil {
		return nil, err
	}
	for range 3 {
		d, err := flip(f)
		if err != nil {
			return nil, err
		}
		res.flips = append(res.flips, summarize(d))
		res.flipVal = append(res.flipVal, state)
	}
	if state { // the override must change u7's value: base off
		if _, err := flip(f); err != nil {
			return nil, err
		}
	}
	var user []time.Duration
	for i := range 20 {
		settle()
		f.drain()
		t0 := time.Now()
		if i%2 == 0 {
			err = os.WriteFile(ovFile, []byte(overrideYAML), 0o644)
		} else {
			err = os.Remove(ovFile)
		}
		if err != nil {
			return nil, err
		}
		user = append(user, f.collect(ctx, t0, []int{7}, 10*time.Second)...)
		res.userRounds++
	}
	res.user = summarize(user)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, nil
}

// ---- bare broadcaster ----

type bareResult struct {
	rssBefore, rssAfter int64
	rounds              []stats
}

func runBareBench(ctx context.Context, n int) (*bareResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-bare-server", addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := startChild(cmd); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+addr+"/healthz", cmd); err != nil {
		return nil, err
	}
	res := &bareResult{}
	time.Sleep(1 * time.Second)
	if res.rssBefore, err = rssKiB(cmd.Process.Pid); err != nil {
		return nil, err
	}
	f, err := connect(ctx, n, func(i int) string { return fmt.Sprintf("http://%s/stream?userId=u%d", addr, i) })
	if err != nil {
		return nil, err
	}
	defer f.close()
	time.Sleep(2 * time.Second)
	if res.rssAfter, err = rssKiB(cmd.Process.Pid); err != nil {
		return nil, err
	}
	for range 3 {
		time.Sleep(400 * time.Millisecond)
		f.drain()
		t0 := time.Now()
		resp, err := http.Post("http://"+addr+"/broadcast", "text/plain", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		res.rounds = append(res.rounds, summarize(f.collect(ctx, t0, nil, 60*time.Second)))
	}
	return res, ctx.Err()
}

func runBare(addr string) error {
	var (
		mu      sync.Mutex
		streams = map[chan []byte]struct{}{}
		rev     uint64
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", http.StatusInternalServerError)
			return
		}
		ch := make(chan []byte, 16)
		mu.Lock()
		streams[ch] = struct{}{}
		id := rev
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(streams, ch)
			mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: {\"namespace\":\"default\",\"revision\":%d,\"flags\":{\"fanout.flag\":{\"value\":false}}}\n\n", id, id)
		fl.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case b := <-ch:
				if _, err := w.Write(b); err != nil {
					return
				}
				fl.Flush()
			}
		}
	})
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		rev++
		b := fmt.Appendf(nil, "id: %d\nevent: device.feature-flags.changed\ndata: {\"revision\":%d,\"changed\":{\"fanout.flag\":{\"value\":true}}}\n\n", rev, rev)
		sent := 0
		for ch := range streams {
			select {
			case ch <- b:
				sent++
			default:
			}
		}
		mu.Unlock()
		fmt.Fprintf(w, "%d\n", sent)
	})
	return http.ListenAndServe(addr, mux)
}

// ---- report ----

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func report(n int, fo *flagopsResult, br *bareResult) {
	fmt.Printf("machine: nproc=%d, cpu=%s, loopback 127.0.0.1, GOMAXPROCS(client)=%d\n", runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0))
	fmt.Printf("N=%d subscribers\n\n", n)

	fKiB := float64(fo.rssAfter-fo.rssBefore) / float64(n)
	bKiB := float64(br.rssAfter-br.rssBefore) / float64(n)
	fmt.Println("memory per idle subscriber (server VmRSS delta / N)")
	fmt.Printf("  flagops  %8.2f KiB  (VmRSS %d -> %d KiB)\n", fKiB, fo.rssBefore, fo.rssAfter)
	fmt.Printf("  bare     %8.2f KiB  (VmRSS %d -> %d KiB)\n", bKiB, br.rssBefore, br.rssAfter)
	fmt.Printf("  ratio    %s   (target <= 1.25x)\n\n", ratio(fKiB, bKiB))

	fmt.Println("fan-out latency, ms (flagops: t0 = before the manifest write, includes the file watch + localdir.DefaultDebounce + reload;")
	fmt.Println("                    bare: t0 = before the POST /broadcast)")
	fmt.Printf("  %-26s %8s %8s %8s %8s\n", "run", "recv", "p50", "p99", "max")
	for i, s := range fo.single {
		fmt.Printf("  %-26s %8s %8s %8s %8s\n", fmt.Sprintf("flagops N=1 flip %d", i+1), fmt.Sprintf("%d/1", s.count), ms(s.p50), ms(s.p99), ms(s.max))
	}
	for i, s := range fo.flips {
		fmt.Printf("  %-26s %8s %8s %8s %8s\n", fmt.Sprintf("flagops flip %d (->%t)", i+1, fo.flipVal[i]), fmt.Sprintf("%d/%d", s.count, n), ms(s.p50), ms(s.p99), ms(s.max))
	}
	for i, s := range br.rounds {
		fmt.Printf("  %-26s %8s %8s %8s %8s\n", fmt.Sprintf("bare broadcast %d", i+1), fmt.Sprintf("%d/%d", s.count, n), ms(s.p50), ms(s.p99), ms(s.max))
	}
	med := func(ss []stats, f func(stats) time.Duration) time.Duration {
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
	p50 := func(s stats) time.Duration { return s.p50 }
	p99 := func(s stats) time.Duration { return s.p99 }
	mx := func(s stats) time.Duration { return s.max }
	base := med(fo.single, p50)
	fmt.Println()
	fmt.Println("fan-out summary (median over the 3 rounds), ms")
	fmt.Printf("  %-34s %8s %8s %8s\n", "", "p50", "p99", "max")
	row := func(name string, a, b, c time.Duration) {
		fmt.Printf("  %-34s %8s %8s %8s\n", name, ms(a), ms(b), ms(c))
	}
	fp50, fp99, fmax := med(fo.flips, p50), med(fo.flips, p99), med(fo.flips, mx)
	bp50, bp99, bmax := med(br.rounds, p50), med(br.rounds, p99), med(br.rounds, mx)
	row("flagops raw", fp50, fp99, fmax)
	row("flagops minus N=1 p50 (fan-out)", fp50-base, fp99-base, fmax-base)
	row("bare", bp50, bp99, bmax)
	fmt.Printf("  %-34s %8s %8s %8s\n", "ratio raw (flagops/bare)", ratio(float64(fp50), float64(bp50)), ratio(float64(fp99), float64(bp99)), ratio(float64(fmax), float64(bmax)))
	fmt.Printf("  %-34s %8s %8s %8s   (target p99 <= 1.25x)\n", "ratio fan-out only (minus N=1)", ratio(float64(fp50-base), float64(bp50)), ratio(float64(fp99-base), float64(bp99)), ratio(float64(fmax-base), float64(bmax)))
	fmt.Printf("  note: the N=1 p50 (%s ms) is the file-watch + debounce + reload floor of local mode, absent from bare.\n\n", ms(base))

	fmt.Printf("per-user override change (UserFlagOverride for u7 created/deleted, %d rounds, N=%d connected)\n", fo.userRounds, n)
	fmt.Printf("  recv %d/%d  p50 %s ms  p99 %s ms  max %s ms   (target p99 <= 10 ms; includes the %s ms local-mode floor)\n",
		fo.user.count, fo.userRounds, ms(fo.user.p50), ms(fo.user.p99), ms(fo.user.max), ms(base))
	fmt.Printf("  minus N=1 floor:                  p50 %s ms  p99 %s ms\n", ms(fo.user.p50-base), ms(fo.user.p99-base))
	fmt.Printf("  minus localdir.DefaultDebounce (%s): p50 %s ms  p99 %s ms\n", localdir.DefaultDebounce,
		ms(fo.user.p50-localdir.DefaultDebounce), ms(fo.user.p99-localdir.DefaultDebounce))
}

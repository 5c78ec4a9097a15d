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

// Command scale measures flagops with many overrides on envtest (a real kube-apiserver and
// etcd; KUBEBUILDER_ASSETS must point at them), issue 16 part 1. It builds cmd/flagops and
// starts it as a user would, a separate process with a kubeconfig, and creates -flags
// Boolean flags, -n UserFlagOverrides and -devices DeviceFlagOverrides (two entries each)
// in one namespace from -c client workers, as fast as the API server accepts them. Each
// phase of -phases measures one thing:
//
//   - eval: `go test -bench BenchmarkManyOverrides ./evaluator`, the evaluation cost of
//     200 flags with 100,000 user and 10,000 device overrides against none, for random
//     principals, and the ratio of the two (same run);
//   - leader: a manager (`flagops manager`, the only replica, so the leader) runs during the
//     import: the time from the first create until it is quiet (every override counted in
//     its flags' status, audited: the audit file holds a record of each flag and override,
//     and reconciled: it has the audit finalizer and a status of its generation), the API
//     requests it made (its client-go rest_client_requests_total), its
//     memory, and the time a change of one flag made halfway through the import takes to
//     reach a device stream (GET /v1/stream of the manager's evaluator server);
//   - requests: before anything else, what each request that the manager makes for a new
//     override costs the API server and etcd in CPU time (-requests-n of each kind, made by
//     the harness itself with no manager running, and without -webhooks);
//   - cold: once the objects exist, a manager and then an evaluator (`flagops evaluator`,
//     the read-only mode; -cold chooses) each start cold: time to Ready (/readyz answers 200), VmRSS at
//     Ready, peak (VmHWM) and steady VmRSS (-settle after Ready), sampled every 250 ms, and
//     the API requests each made until then.
//
// With -webhooks the manager runs with its admission webhooks, as in a cluster (envtest
// installs config/webhook, and the manager signs actor stamps with a key the harness makes);
// the validating webhooks fail closed, so the leader phase's manager must run before
// anything is created, and the fleet phase, which creates without a manager, is refused.
//
// Without the leader phase the objects are created with no manager running. It prints a
// summary and writes the figures as JSON to -out. With -profile, the cold evaluator runs
// with --pprof-bind-address, and its CPU profile of the first 30 s and its heap profile
// after -settle are written there, with the API server's CPU profile of the leader phase's
// first 60 s of creates and the heap profile of that phase's manager once it is quiet (go
// tool pprof reads them).
//
//	KUBEBUILDER_ASSETS=... go run ./hack/scale -n 10000 -devices 1000 -out scale.json
package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flagops/flagops/hack/internal/machine"
	"github.com/flagops/flagops/test/testenv"
)

// params are the harness's flags.
type params struct {
	Flags   int           `json:"flags"`
	Users   int           `json:"userOverrides"`
	Devices int           `json:"deviceOverrides"`
	Workers int           `json:"workers"`
	Phases  []string      `json:"phases"`
	Settle  time.Duration `json:"settleNs"`
	// SettleLoad is the number of clients evaluating against a cold evaluator while it
	// settles (0: idle).
	SettleLoad int    `json:"settleLoad,omitempty"`
	BenchTime  string `json:"benchtime"`
	// Cold lists the processes of the cold phase: manager, evaluator.
	Cold []string `json:"cold"`
	// EvaluatorGoMemLimit, when set, is the GOMEMLIMIT of every evaluator the harness starts.
	EvaluatorGoMemLimit string `json:"evaluatorGoMemLimit,omitempty"`
	// Evaluators (a round per size, in order), Changes and Idle shape the fleet phase.
	Evaluators []int         `json:"evaluators"`
	Changes    int           `json:"changes"`
	Idle       time.Duration `json:"idleNs"`
	// Webhooks runs the manager with its admission webhooks, as in a cluster: envtest
	// installs config/webhook and the manager signs actor stamps with a key of its own.
	Webhooks bool `json:"webhooks"`
	// RequestsN is how many requests of each kind the requests phase makes.
	RequestsN int `json:"requestsN"`
	// LeaderElect runs every manager with --leader-elect, as its Deployment does: the
	// Lease's renewals, and its Auditor fenced by them.
	LeaderElect bool `json:"leaderElect"`
	// ProfileDir, when set, receives the cold evaluator's CPU profile of its first 30 s and
	// its heap profile after -settle, from its --pprof-bind-address, the API server's CPU
	// profile of the leader phase's first 60 s of creates, and that phase's manager's heap
	// profile when it is quiet.
	ProfileDir string `json:"profileDir,omitempty"`
}

// report is the JSON of -out.
type report struct {
	Params   params        `json:"params"`
	Machine  host          `json:"machine"`
	Eval     *evalResult   `json:"eval,omitempty"`
	Requests []requestCost `json:"requests,omitempty"`
	Populate *populated    `json:"populate,omitempty"`
	Leader   *leaderResult `json:"leader,omitempty"`
	Cold     []coldResult  `json:"cold,omitempty"`
	Fleet    []fleetRound  `json:"fleet,omitempty"`
}

type host struct {
	NProc     int    `json:"nproc"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"goVersion"`
	// FlagopsGo is the Go version the flagops binary was built with.
	FlagopsGo  string `json:"flagopsGoVersion,omitempty"`
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

func main() {
	var p params
	var phases, cold string
	flag.IntVar(&p.Flags, "flags", 200, "FeatureFlags to create")
	flag.IntVar(&p.Users, "n", 100_000, "UserFlagOverrides to create (two entries each)")
	flag.IntVar(&p.Devices, "devices", 10_000, "DeviceFlagOverrides to create (two entries each)")
	flag.IntVar(&p.Workers, "c", 16, "concurrent client workers creating the objects")
	flag.StringVar(&phases, "phases", "eval,leader,cold", "comma-separated phases to run: eval, leader, cold, fleet")
	evaluators := flag.String("evaluators", "1,20", "the fleet phase's rounds: comma-separated numbers of evaluators, one round each, in order")
	flag.IntVar(&p.Changes, "changes", 1000, "the fleet phase's flag changes per round, one at a time")
	flag.DurationVar(&p.Idle, "idle", 30*time.Second, "how long the fleet phase measures the API server with the fleet idle")
	flag.DurationVar(&p.Settle, "settle", 20*time.Second, "how long after Ready a cold process runs before its steady VmRSS is read")
	flag.IntVar(&p.SettleLoad, "settle-load", 0, "clients that evaluate against a cold evaluator while it settles, back to back (OFREP single evaluations of random users and flags, one request in ten a bulk evaluation); 0 leaves it idle")
	flag.StringVar(&p.BenchTime, "benchtime", "2s", "-benchtime of the eval phase")
	timeout := flag.Duration("timeout", 90*time.Minute, "overall timeout")
	root := flag.String("root", ".", "repository root (for the CRDs, cmd/flagops and ./evaluator)")
	bin := flag.String("bin", "", "a flagops binary to run; empty builds cmd/flagops")
	out := flag.String("out", "", "write the figures as JSON to this file")
	flag.StringVar(&cold, "cold", "manager,evaluator", "comma-separated processes the cold phase starts, one after the other: manager, evaluator")
	flag.StringVar(&p.EvaluatorGoMemLimit, "evaluator-gomemlimit", "", "GOMEMLIMIT of every evaluator the harness starts (cold and fleet), e.g. 300MiB; empty leaves it unset")
	flag.IntVar(&p.RequestsN, "requests-n", 4000, "the requests phase's requests of each kind")
	flag.BoolVar(&p.LeaderElect, "leader-elect", false, "run every manager with --leader-elect (its Lease in namespace default), as its Deployment does")
	flag.BoolVar(&p.Webhooks, "webhooks", false, "run the manager with its admission webhooks (envtest installs config/webhook); without, as `make run` does")
	flag.StringVar(&p.ProfileDir, "profile", "", "write to this directory the cold evaluator's CPU profile (its first 30 s) and heap profile (after -settle), the API server's CPU profile of the leader phase's first 60 s of creates, and its manager's heap profile when quiet")
	flag.Parse()
	p.Phases, p.Cold = strings.Split(phases, ","), strings.Split(cold, ",")
	for _, c := range p.Cold {
		if c != "manager" && c != "evaluator" {
			fail(2, fmt.Errorf("-cold: unknown process %q (manager, evaluator)", c))
		}
	}
	for _, ph := range p.Phases {
		if !slices.Contains([]string{"eval", "requests", "leader", "cold", "fleet"}, ph) {
			fail(2, fmt.Errorf("-phases: unknown phase %q (eval, requests, leader, cold, fleet)", ph))
		}
	}
	if p.Webhooks && (!slices.Contains(p.Phases, "leader") || slices.Contains(p.Phases, "fleet") || slices.Contains(p.Phases, "requests")) {
		// The validating webhooks fail closed: nothing is created while no manager runs.
		fail(2, errors.New("-webhooks needs the leader phase (whose manager serves the webhooks while the objects are created), and neither the fleet nor the requests phase"))
	}
	if p.RequestsN < 1 {
		fail(2, errors.New("-requests-n must be at least 1"))
	}
	if p.Flags < 2 || p.Users < 0 || p.Devices < 0 || p.Users+p.Devices < 2 || p.Workers < 1 {
		fail(2, errors.New("-flags must be at least 2, -n and -devices at least 0 and together at least 2, -c at least 1"))
	}
	for _, f := range strings.Split(*evaluators, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fail(2, fmt.Errorf("-evaluators: %q is not a number of evaluators (at least 1)", f))
		}
		p.Evaluators = append(p.Evaluators, n)
	}
	if p.Changes < 1 || p.Idle <= 0 {
		fail(2, errors.New("-changes must be at least 1, -idle positive"))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, *timeout)
	defer cancelTimeout()
	r, err := run(ctx, p, filepath.Clean(*root), *bin)
	if r != nil {
		r.Machine.LoadAfter = machine.LoadAvg()
		printReport(r)
		if *out != "" {
			if werr := writeJSON(*out, r); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(code)
}

func run(ctx context.Context, p params, root, bin string) (*report, error) {
	r := &report{Params: p, Machine: host{NProc: runtime.NumCPU(), CPU: machine.CPUModel(), GoVersion: runtime.Version(), LoadBefore: machine.LoadAvg()}}
	has := func(ph string) bool { return slices.Contains(p.Phases, ph) }
	if has("eval") {
		ev, err := runEval(ctx, root, p.BenchTime)
		if err != nil {
			return r, err
		}
		r.Eval = ev
	}
	if !has("requests") && !has("leader") && !has("cold") && !has("fleet") {
		return r, nil
	}
	dir, err := os.MkdirTemp("", "flagops-scale-")
	if err != nil {
		return r, err
	}
	fmt.Fprintln(os.Stderr, "scale: logs and audit files in", dir)
	if bin == "" {
		bin = filepath.Join(dir, "flagops")
		fmt.Fprintln(os.Stderr, "scale: building cmd/flagops")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/flagops")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return r, fmt.Errorf("failed to build cmd/flagops: %w", err)
		}
	}

	if info, err := buildinfo.ReadFile(bin); err == nil {
		r.Machine.FlagopsGo = info.GoVersion
	}

	env := testenv.New(root)
	if p.Webhooks {
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}}
	}
	cfg, err := env.Start()
	if err != nil {
		return r, fmt.Errorf("failed to start envtest: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "scale: failed to stop envtest:", err)
		}
	}()
	kubeconfig, err := writeKubeconfig(env, dir)
	if err != nil {
		return r, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0 // as fast as the API server accepts
	h, err := newHarness(cfg, p, bin, kubeconfig, dir)
	if err != nil {
		return r, err
	}
	if p.Webhooks {
		key := filepath.Join(dir, "audit-stamp-key")
		if err := testenv.WriteStampKey(key); err != nil {
			return r, err
		}
		wh := env.WebhookInstallOptions
		// envtest made the serving certificate and put its CA into the webhook configurations.
		h.managerArgs = []string{"--enable-webhooks=true", "--webhook-certs=external", "--webhook-port=" + strconv.Itoa(wh.LocalServingPort),
			"--webhook-cert-dir=" + wh.LocalServingCertDir, "--audit-stamp-key-file=" + key}
	}
	if has("requests") {
		costs, err := h.requests(ctx)
		r.Requests = costs
		if err != nil {
			return r, err
		}
		if !has("leader") && !has("cold") && !has("fleet") {
			return r, nil
		}
	}
	if !p.Webhooks {
		// With the webhooks, the leader phase creates the flags once its manager serves them.
		if err := h.prepare(ctx); err != nil {
			return r, err
		}
	}
	if has("leader") {
		l, pop, err := h.leader(ctx)
		r.Populate, r.Leader = pop, l
		if err != nil {
			return r, err
		}
	} else {
		fmt.Fprintf(os.Stderr, "scale: creating %d user and %d device overrides\n", p.Users, p.Devices)
		pop, err := h.populate(ctx, nil)
		r.Populate = pop
		if err != nil {
			return r, err
		}
	}
	if has("cold") {
		for _, kind := range p.Cold {
			c, err := h.cold(ctx, kind)
			if err != nil {
				return r, err
			}
			r.Cold = append(r.Cold, *c)
		}
	}
	if has("fleet") {
		rounds, err := h.fleet(ctx)
		r.Fleet = rounds
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// writeKubeconfig writes a kubeconfig of an envtest admin user for the flagops processes.
func writeKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "scale-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("failed to add the kubeconfig user: %w", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// apiserverRequests returns the API server's apiserver_request_total by verb, resource and
// subresource, and its apiserver_terminated_watchers_total by resource (key
// "TERMINATED-WATCH <resource>").
func apiserverRequests(ctx context.Context, cs kubernetes.Interface) (map[string]int64, error) {
	b, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the API server's metrics: %w", err)
	}
	out := counters(string(b), "apiserver_request_total", "verb", "resource", "subresource")
	// Watches the API server closed because their client did not keep up: each makes the
	// client watch again.
	for resource, n := range counters(string(b), "apiserver_terminated_watchers_total", "resource") {
		out["TERMINATED-WATCH "+resource] += n
	}
	return out, nil
}

// ---- eval ----

type evalResult struct {
	Command string             `json:"command"`
	NsPerOp map[string]float64 `json:"nsPerOp"`
	// RatioOne and RatioAll are the 100k figure over the empty one, for one flag and for
	// all flags of a context.
	RatioOne float64 `json:"ratioOne"`
	RatioAll float64 `json:"ratioAll"`
}

var benchLine = regexp.MustCompile(`^BenchmarkManyOverrides/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func runEval(ctx context.Context, root, benchtime string) (*evalResult, error) {
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkManyOverrides$", "-benchmem", "-benchtime", benchtime, "./evaluator"}
	fmt.Fprintln(os.Stderr, "scale: go", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stderr = root, os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("the evaluation benchmark failed: %w\n%s", err, b)
	}
	ev := &evalResult{Command: "go " + strings.Join(args, " "), NsPerOp: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			ev.NsPerOp[m[1]] = v
		}
	}
	ratio := func(a, b string) float64 {
		if ev.NsPerOp[b] == 0 {
			return 0
		}
		return ev.NsPerOp[a] / ev.NsPerOp[b]
	}
	ev.RatioOne, ev.RatioAll = ratio("one/100k", "one/empty"), ratio("all/100k", "all/empty")
	if len(ev.NsPerOp) != 4 {
		return ev, fmt.Errorf("the evaluation benchmark printed %d results, want 4:\n%s", len(ev.NsPerOp), b)
	}
	return ev, nil
}

// ---- output ----

func printReport(r *report) {
	p := r.Params
	fmt.Printf("machine            %d CPUs, %s, harness %s, flagops %s; load before %s, after %s\n",
		r.Machine.NProc, r.Machine.CPU, r.Machine.GoVersion, r.Machine.FlagopsGo, r.Machine.LoadBefore, r.Machine.LoadAfter)
	if ev := r.Eval; ev != nil {
		fmt.Printf("eval               %s\n", ev.Command)
		fmt.Printf("  one flag         empty %.1f ns/op, 100k %.1f ns/op, ratio %.2f\n", ev.NsPerOp["one/empty"], ev.NsPerOp["one/100k"], ev.RatioOne)
		fmt.Printf("  all flags        empty %.0f ns/op, 100k %.0f ns/op, ratio %.2f\n", ev.NsPerOp["all/empty"], ev.NsPerOp["all/100k"], ev.RatioAll)
	}
	if len(r.Requests) > 0 {
		fmt.Printf("requests           %d of each kind, %d workers; CPU per request:\n", p.RequestsN, p.Workers)
		var api, etcd float64
		for _, c := range r.Requests {
			fmt.Printf("  %-46s API server %.2f ms, etcd %.2f ms (%.1f s)\n", c.Request, c.APIServerCPUMillis, c.EtcdCPUMillis, c.Seconds)
			api, etcd = api+c.APIServerCPUMillis, etcd+c.EtcdCPUMillis
		}
		fmt.Printf("  %-46s API server %.2f ms, etcd %.2f ms\n", "all of them, one of each", api, etcd)
	}
	if pop := r.Populate; pop != nil {
		fmt.Printf("objects            %d flags, %d user and %d device overrides (2 entries each), %d workers\n", p.Flags, p.Users, p.Devices, p.Workers)
		fmt.Printf("create             %.1f s (%.0f overrides/s)\n", pop.Seconds, pop.PerSecond)
	}
	if l := r.Leader; l != nil {
		fmt.Printf("leader             counted %.1f s, audited %.1f s, every override reconciled %.1f s, quiet %.1f s after the first create (%d audit records)\n",
			l.CountedSeconds, l.AuditedSeconds, l.ReconciledSeconds, l.QuietSeconds, l.AuditRecords)
		fmt.Printf("  flag change      reached the device stream in %.3f s (within 1 s: %t), %.0f%% through the import\n", l.FlipSeconds, l.FlipWithin1s, 100*l.FlipAt)
		fmt.Printf("  requests         manager %s; API server (all clients) %s\n", fmtCounts(l.ClientRequests), fmtCounts(l.APIServerRequests))
		fmt.Printf("  memory           VmRSS %.0f MB when quiet, peak %.0f MB\n", l.RSSMB, l.PeakRSSMB)
		fmt.Printf("  CPU              kube-apiserver %.1f s, etcd %.1f s, manager %.1f s from the first create until quiet\n",
			l.CPUSeconds["kube-apiserver"], l.CPUSeconds["etcd"], l.CPUSeconds["manager"])
	}
	for _, c := range r.Cold {
		fmt.Printf("cold %-13s ready %.1f s (%.1f s of CPU), VmRSS %.0f MB at ready, %.0f MB after %s, peak %.0f MB; requests until ready %s\n",
			c.Kind, c.ReadySeconds, c.CPUSecondsAtReady, c.RSSAtReadyMB, c.SteadyRSSMB, p.Settle, c.PeakRSSMB, fmtCounts(c.ClientRequests))
		if c.Load != nil {
			fmt.Printf("  under load       %d clients sent %d evaluations while it settled (%.0f a second), %d failed\n",
				c.Load.Clients, c.Load.Requests, float64(c.Load.Requests)/p.Settle.Seconds(), c.Load.Failed)
		}
	}
	for _, f := range r.Fleet {
		fmt.Printf("fleet of %-2d        ready %.1f s, %d API server watches; API server CPU %.2f s over %.0f s idle, %.2f s over %d changes (%.1f s); VmRSS %.0f MB (evaluators %.0f-%.0f MB)\n",
			f.Evaluators, f.ReadySeconds, f.Watches, f.IdleCPUSeconds, f.IdleSeconds, f.ChangeCPUSeconds, f.Changes, f.ChangeSeconds,
			f.APIServerRSSMB, f.EvaluatorRSSMBMin, f.EvaluatorRSSMBMax)
		fmt.Printf("  propagation      to all: p50 %.0f ms, p99 %.0f ms, max %.0f ms; per stream: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
			f.AllP50, f.AllP99, f.AllMax, f.StreamP50, f.StreamP99, f.StreamMax)
	}
}

func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	var total int64
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// writeJSON writes v to path atomically (a temporary file renamed over it).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

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

// Command soak runs flagops for a while on a local control plane under load while a
// seeded schedule of faults hits it, then checks that nothing was lost (issue 16, part 4):
//
//   - the control plane is a kube-apiserver and etcd from KUBEBUILDER_ASSETS (envtest),
//     which the harness restarts on the same ports, certificates and data;
//   - two `flagops manager` replicas with --leader-elect, each with its evaluator server
//     and an HTTP audit sink pointed at a receiver the harness runs; a replica that exits
//     (killed, or after losing its lease) is started again on the same ports. They serve
//     the admission webhooks (unless -webhooks=false), which envtest installs, behind a
//     proxy that stands in for their Service (see proxy), and sign actor stamps with one
//     key;
//   - -streams device streams (GET /v1/stream; a user, a device, class phone), split over
//     the replicas; a stream that ends resumes on the other replica with Last-Event-ID;
//   - three users write at -rate writes a second in all, each through its own
//     impersonating client: flags flipped, String values changed, user and device
//     overrides created, changed and deleted, drawn from -seed;
//   - the faults of -seed (see schedule): the leader killed (SIGKILL) and started again,
//     the API server restarted, etcd restarted, the leader paused (SIGSTOP) for -pause,
//     the audit receiver answering 503 for -audit-errors.
//
// After -duration the writers stop and the checks run: the audit records against every
// write the API server accepted (0 lost, 0 duplicated, see account), every stream's results
// against POST /v1/evaluate for its context (0 missed), and the managers' goroutines and
// RSS, sampled every 10 s with the RSS of every process, last third of the run against
// the first. It prints a summary, writes it as JSON to -out and plots RSS over time as an
// SVG to -svg. It exits non-zero on any failed check.
//
//	KUBEBUILDER_ASSETS=... go run ./hack/soak -duration 30m -out soak.json -svg docs/soak-rss.svg
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/hack/internal/machine"
)

const (
	soakNS         = "soak"
	leaseNS        = "default"
	replicas       = 2
	maxSubscribers = 5000
	sampleEvery    = 10 * time.Second
	writersGroup   = "soak-writers"
	// adminUser is the user of the harness's own client (system:masters).
	adminUser = "soak-admin"
)

var writerNames = []string{"alice", "bob", "carol"}

type options struct {
	Duration    time.Duration `json:"durationNs"`
	Seed        uint64        `json:"seed"`
	Streams     int           `json:"streams"`
	Rate        float64       `json:"writesPerSecond"`
	Pause       time.Duration `json:"pauseNs"`
	AuditErrors time.Duration `json:"auditErrorsNs"`
	Drain       time.Duration `json:"drainNs"`
	SkipFaults  string        `json:"skipFaults,omitempty"`
	Webhooks    bool          `json:"webhooks"`
	root, bin   string
	out, svg    string
	skip        map[string]bool
}

func main() {
	var o options
	flag.DurationVar(&o.Duration, "duration", 30*time.Minute, "how long the writers write and the faults run")
	flag.Uint64Var(&o.Seed, "seed", 1, "seed of the fault schedule and of the writes")
	flag.IntVar(&o.Streams, "streams", 2000, "device streams, split over the two replicas")
	flag.Float64Var(&o.Rate, "rate", 3, "writes a second, by the three users together")
	flag.DurationVar(&o.Pause, "pause", 30*time.Second, "how long a paused replica stays stopped")
	flag.DurationVar(&o.AuditErrors, "audit-errors", time.Minute, "how long the audit receiver answers 503 at its fault")
	flag.DurationVar(&o.Drain, "drain", 10*time.Minute, "bound on the wait, after the writes, for the audit trail and the streams to catch up")
	flag.StringVar(&o.SkipFaults, "skip", "", "fault kinds to leave out, separated by commas ("+strings.Join(faultKinds, ", ")+")")
	flag.BoolVar(&o.Webhooks, "webhooks", true, "run the replicas with their admission webhooks, behind a proxy that stands in for their Service, and sign actor stamps (false: --enable-webhooks=false, every actor a hint)")
	flag.StringVar(&o.root, "root", ".", "repository root (the CRDs, cmd/flagops)")
	flag.StringVar(&o.bin, "bin", "", "a flagops binary to run; empty builds cmd/flagops")
	flag.StringVar(&o.out, "out", "", "write the report as JSON to this file")
	flag.StringVar(&o.svg, "svg", "", "write the plot of RSS over time to this SVG file")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard()) // envtest's own log; the harness logs what it does
	if o.Duration < time.Minute || o.Streams < 1 || o.Rate <= 0 || o.Pause <= 0 || o.AuditErrors <= 0 || o.Drain <= 0 {
		fail(errors.New("-duration must be at least 1m, -streams at least 1, -rate, -pause, -audit-errors and -drain positive"))
	}
	skip, err := parseSkip(o.SkipFaults)
	if err != nil {
		fail(err)
	}
	o.skip = skip
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := run(ctx, o)
	if rep != nil {
		rep.Machine.LoadAfter = machine.LoadAvg()
		rep.print()
		if o.out != "" {
			if werr := writeFileAtomic(o.out, func(f *os.File) error {
				enc := json.NewEncoder(f)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if o.svg != "" {
			if werr := writeFileAtomic(o.svg, rep.plot); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fail(err)
	}
	if fails := rep.failures(); len(fails) > 0 {
		fail(fmt.Errorf("FAILED: %s", strings.Join(fails, "; ")))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak %s: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// writeFileAtomic writes path through a temporary file renamed over it.
func writeFileAtomic(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".soak-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

type host struct {
	NProc      int    `json:"nproc"`
	CPU        string `json:"cpu"`
	GoVersion  string `json:"goVersion"`
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

// applied is a fault as it ran.
type applied struct {
	fault
	Started float64 `json:"startedSeconds"`
	Took    float64 `json:"tookSeconds"`
	Target  string  `json:"target,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// sample is one reading of every process, every 10 s.
type sample struct {
	T float64 `json:"seconds"`
	// RSS in MB by process (manager-0, manager-1, kube-apiserver, etcd, harness); a process
	// not running at that moment is missing.
	RSS map[string]float64 `json:"rssMB"`
	// Goroutines by manager (go_goroutines); missing when it did not answer (paused,
	// restarting).
	Goroutines map[string]float64 `json:"goroutines"`
	Connected  int                `json:"streamsConnected"`
}

type writesResult struct {
	Attempts  int `json:"attempts"`
	Committed int `json:"committed"`
	Conflicts int `json:"conflicts"`
	Failed    int `json:"failed"`
}

type streamsResult struct {
	Streams       int      `json:"streams"`
	Connected     int      `json:"connectedAtEnd"`
	Missed        int      `json:"missed"`
	MissedSample  []string `json:"missedSample,omitempty"`
	Snapshots     int64    `json:"snapshots"`
	Changes       int64    `json:"changes"`
	UpToDate      int64    `json:"upToDateResumes"`
	Connects      int64    `json:"connects"`
	Failures      int64    `json:"failedConnects"`
	ConvergedSecs float64  `json:"convergedSeconds"`
}

// bound compares a figure's median over the last third of the load against the first.
type bound struct {
	What   string  `json:"what"`
	First  float64 `json:"firstThirdMedian"`
	Last   float64 `json:"lastThirdMedian"`
	Max    float64 `json:"maxRatio"`
	Ratio  float64 `json:"ratio"`
	Within bool    `json:"within"`
}

type report struct {
	Options      options             `json:"options"`
	Command      string              `json:"command"`
	Machine      host                `json:"machine"`
	Schedule     []fault             `json:"schedule"`
	Faults       []applied           `json:"faults"`
	Restarts     map[string]int      `json:"managerStarts"`
	Exits        map[string][]string `json:"managerExits"`
	Writes       writesResult        `json:"writes"`
	Audit        *auditResult        `json:"audit,omitempty"`
	AuditRefused int                 `json:"auditRequestsRefused"`
	AuditSeconds float64             `json:"auditCaughtUpSeconds"`
	Streams      *streamsResult      `json:"streams,omitempty"`
	// WebhookConnections counts the API server's connections the webhook proxy passed to
	// each replica; WebhookRefused those it closed with no replica ready.
	WebhookConnections []int    `json:"webhookConnections,omitempty"`
	WebhookRefused     int      `json:"webhookRefused,omitempty"`
	Bounds             []bound  `json:"bounds"`
	Samples            []sample `json:"samples"`
	// LoadSeconds is the length of the load, from the first write to the last.
	LoadSeconds float64  `json:"loadSeconds"`
	Errors      []string `json:"errors,omitempty"`
}

func (r *report) failures() []string {
	var out []string
	out = append(out, r.Errors...)
	if r.Audit == nil {
		out = append(out, "the audit trail was not checked")
	} else if r.Audit.failed() {
		out = append(out, fmt.Sprintf("audit: %d lost, %d duplicated, %d invalid, %d with a wrong verified actor",
			len(r.Audit.Lost), len(r.Audit.Duplicated), len(r.Audit.Invalid), len(r.Audit.WrongActors)))
	}
	if r.Streams == nil {
		out = append(out, "the streams were not checked")
	} else if r.Streams.Missed > 0 || r.Streams.Connected < r.Streams.Streams {
		out = append(out, fmt.Sprintf("streams: %d missed a change, %d of %d connected at the end", r.Streams.Missed, r.Streams.Connected, r.Streams.Streams))
	}
	for _, b := range r.Bounds {
		if !b.Within {
			out = append(out, fmt.Sprintf("%s grew %.2fx (bound %.2fx)", b.What, b.Ratio, b.Max))
		}
	}
	for _, f := range r.Faults {
		if f.Error != "" {
			out = append(out, fmt.Sprintf("fault %s: %s", f.Kind, f.Error))
		}
	}
	return out
}

func newScheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	_ = clientgoscheme.AddToScheme(s) // static registrations, cannot fail
	_ = v1.AddToScheme(s)
	return s
}

// harness holds what the run started.
type harness struct {
	o        options
	dir      string
	plane    *plane
	admin    client.Client
	recv     *receiver
	replicas []*replica
	streams  []*streamClient
	journal  *journal
	start    time.Time // of the load

	mu      sync.Mutex
	samples []sample
}

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{Options: o, Command: "go run ./hack/soak " + strings.Join(os.Args[1:], " "),
		Machine:  host{NProc: runtime.NumCPU(), CPU: machine.CPUModel(), GoVersion: runtime.Version(), LoadBefore: machine.LoadAvg()},
		Schedule: schedule(o.Seed, o.Duration, o.Pause, o.AuditErrors, o.skip)}
	dir, err := os.MkdirTemp("", "flagops-soak-")
	if err != nil {
		return nil, err
	}
	logf("logs, spools and the control plane's data in %s", dir)
	h := &harness{o: o, dir: dir, journal: &journal{}}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "flagops")
		logf("building cmd/flagops")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/flagops")
		build.Dir, build.Stdout, build.Stderr = o.root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return rep, fmt.Errorf("failed to build cmd/flagops: %w", err)
		}
	}
	if err := machine.RaiseFileLimit(uint64(o.Streams)*2 + 1024); err != nil {
		return rep, err
	}
	h.plane, err = startPlane(o.root, dir, o.Webhooks)
	if h.plane != nil {
		defer func() {
			if err := h.plane.stop(); err != nil {
				logf("failed to stop the control plane: %v", err)
			}
		}()
	}
	if err != nil {
		return rep, err
	}
	cfg := rest.CopyConfig(h.plane.cfg)
	cfg.QPS, cfg.Burst = -1, 0
	if h.admin, err = client.New(cfg, client.Options{Scheme: newScheme()}); err != nil {
		return rep, fmt.Errorf("failed to create the client: %w", err)
	}
	if err := h.setup(ctx); err != nil {
		return rep, err
	}
	if h.recv, err = startReceiver(); err != nil {
		return rep, err
	}
	defer func() { _ = h.recv.srv.Close() }()

	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var webhooks *webhookSetup
	if o.Webhooks {
		if webhooks, err = h.plane.webhookSetup(dir); err != nil {
			return rep, err
		}
	}
	var supervisors sync.WaitGroup
	for i := range replicas {
		r, err := newReplica(i, bin, h.plane.kubeconfig, dir, h.recv.url, webhooks)
		if err != nil {
			return rep, err
		}
		if err := r.start(); err != nil {
			return rep, err
		}
		h.replicas = append(h.replicas, r)
		supervisors.Go(func() { r.supervise(runCtx, logf) })
	}
	defer func() {
		stopAll()
		for _, r := range h.replicas {
			r.stop()
		}
		supervisors.Wait()
		rep.Restarts, rep.Exits = map[string]int{}, map[string][]string{}
		for _, r := range h.replicas {
			rep.Restarts[r.name()], rep.Exits[r.name()] = r.starts, r.exits
		}
	}()
	if webhooks != nil {
		backends := make([]string, len(h.replicas))
		for i, r := range h.replicas {
			backends[i] = r.webhook
		}
		px, err := startProxy(runCtx, webhooks.addr, backends, func(ctx context.Context, i int) bool { return h.replicas[i].probeReady(ctx) })
		if err != nil {
			return rep, fmt.Errorf("failed to start the webhook proxy on %s: %w", webhooks.addr, err)
		}
		defer func() { rep.WebhookConnections, rep.WebhookRefused = px.stats() }()
	}
	logf("waiting for both replicas to be ready and one to lead")
	if err := poll(ctx, 3*time.Minute, func() bool {
		return h.replicas[0].ready(ctx) && h.replicas[1].ready(ctx) && h.leader(ctx) != nil
	}); err != nil {
		return rep, fmt.Errorf("the replicas did not start: %w", err)
	}
	// The flags after the replicas: with the webhooks, whose validation fails closed,
	// nothing is created while no replica serves them.
	if err := h.createFlags(ctx); err != nil {
		return rep, err
	}

	// Streams.
	hc := streamHTTPClient()
	addrs := []string{h.replicas[0].evaluator, h.replicas[1].evaluator}
	var synced sync.WaitGroup
	streamCtx, stopStreams := context.WithCancel(runCtx)
	defer stopStreams()
	var streamsDone sync.WaitGroup
	logf("opening %d streams", o.Streams)
	for i := range o.Streams {
		s := newStreamClient(i)
		h.streams = append(h.streams, s)
		synced.Add(1)
		streamsDone.Go(func() { s.run(streamCtx, hc, addrs, synced.Done) })
		if i%100 == 99 {
			time.Sleep(100 * time.Millisecond) // spread the connections: ~1,000 a second
		}
	}
	defer func() { stopStreams(); streamsDone.Wait() }()
	if err := waitGroup(ctx, &synced, 5*time.Minute); err != nil {
		return rep, fmt.Errorf("the streams did not all get a snapshot: %w", err)
	}

	// The load and the faults.
	h.start = time.Now()
	sampleCtx, stopSampling := context.WithCancel(runCtx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Go(func() { h.sample(sampleCtx) })
	loadCtx, stopLoad := context.WithTimeout(runCtx, o.Duration)
	var writers sync.WaitGroup
	for i, name := range writerNames {
		wc := rest.CopyConfig(h.plane.cfg)
		wc.QPS, wc.Burst = -1, 0
		wc.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: []string{writersGroup}}
		c, err := client.New(wc, client.Options{Scheme: newScheme()})
		if err != nil {
			stopLoad()
			return rep, err
		}
		w := &writer{name: name, c: client.WithFieldOwner(c, name), rng: rand.New(rand.NewPCG(o.Seed, uint64(i+1))), j: h.journal}
		writers.Go(func() { w.run(loadCtx, o.Rate/float64(len(writerNames))) })
	}
	logf("load started: %d writes a second by %d users for %s; faults: %v", int(o.Rate), len(writerNames), o.Duration, rep.Schedule)
	rep.Faults = h.runFaults(loadCtx, rep.Schedule)
	<-loadCtx.Done()
	stopLoad()
	writers.Wait()
	rep.LoadSeconds = time.Since(h.start).Seconds()
	h.journal.mu.Lock()
	rep.Writes = writesResult{Attempts: h.journal.attempts, Committed: len(h.journal.commits), Conflicts: h.journal.conflict, Failed: h.journal.failed}
	h.journal.mu.Unlock()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	logf("load done: %+v; checking", rep.Writes)

	// Checks.
	t0 := time.Now()
	rep.Audit, err = h.checkAudit(ctx)
	rep.AuditSeconds = time.Since(t0).Seconds()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	raw, refused, _ := h.recv.snapshot()
	rep.AuditRefused = refused
	if err := writeLines(filepath.Join(h.dir, "audit-records.jsonl"), raw); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	h.journal.mu.Lock()
	commits := slices.Clone(h.journal.commits)
	h.journal.mu.Unlock()
	var lines [][]byte
	for _, c := range commits {
		b, _ := json.Marshal(c)
		lines = append(lines, b)
	}
	if err := writeLines(filepath.Join(h.dir, "commits.jsonl"), lines); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Streams = h.checkStreams(ctx, hc, addrs)
	stopSampling()
	sampling.Wait()
	h.mu.Lock()
	rep.Samples = h.samples
	h.mu.Unlock()
	rep.Bounds = bounds(rep.Samples, rep.LoadSeconds)
	return rep, nil
}

// setup creates the namespace and the writers' permissions.
func (h *harness) setup(ctx context.Context) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: soakNS}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: writersGroup},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group},
				Resources: []string{"featureflags", "userflagoverrides", "deviceflagoverrides"},
				Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: writersGroup},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: writersGroup},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: writersGroup}}},
	}
	for _, o := range objs {
		if err := h.admin.Create(ctx, o); err != nil {
			return fmt.Errorf("failed to create %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// createFlags creates the flags as the admin user, who is also their field manager, so that
// a record's actor names the admin whether the webhook stamped it (the user) or not (the
// field manager).
func (h *harness) createFlags(ctx context.Context) error {
	for _, f := range initialFlags() {
		if err := client.WithFieldOwner(h.admin, adminUser).Create(ctx, f); err != nil {
			return fmt.Errorf("failed to create flag %s: %w", f.Name, err)
		}
		h.journal.add(commit{UID: string(f.UID), Kind: "FeatureFlag", Name: f.Name, Generation: f.Generation, Action: "create", Writer: adminUser, ResourceVersion: f.ResourceVersion})
	}
	return nil
}

// leader returns the replica that says it leads, or nil.
func (h *harness) leader(ctx context.Context) *replica {
	for _, r := range h.replicas {
		if r.pid() != 0 && r.isLeader(ctx) {
			return r
		}
	}
	return nil
}

// waitLeader waits up to 2 minutes for a leader.
func (h *harness) waitLeader(ctx context.Context) (*replica, error) {
	var l *replica
	err := poll(ctx, 2*time.Minute, func() bool { l = h.leader(ctx); return l != nil })
	return l, err
}

// runFaults applies the schedule, each fault at its time or, if the one before ran over,
// as soon as that one is done.
func (h *harness) runFaults(ctx context.Context, faults []fault) []applied {
	var out []applied
	for _, f := range faults {
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Until(h.start.Add(f.At))):
		}
		a := applied{fault: f, Started: time.Since(h.start).Seconds()}
		logf("fault: %s", f)
		err := h.apply(ctx, f, &a)
		a.Took = time.Since(h.start).Seconds() - a.Started
		if err != nil {
			a.Error = err.Error()
			logf("fault %s failed: %v", f.Kind, err)
		}
		out = append(out, a)
	}
	return out
}

func (h *harness) apply(ctx context.Context, f fault, a *applied) error {
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	switch f.Kind {
	case faultKillLeader, faultPauseReplica:
		l, err := h.waitLeader(ctx)
		if err != nil {
			return fmt.Errorf("no leader: %w", err)
		}
		a.Target = l.name()
		if f.Kind == faultKillLeader {
			return l.signal(syscall.SIGKILL) // its supervisor starts it again
		}
		if err := l.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		sleep(f.For)
		return l.signal(syscall.SIGCONT)
	case faultRestartAPI, faultRestartEtcd:
		restart := h.plane.restartAPIServer
		if f.Kind == faultRestartEtcd {
			restart = h.plane.restartEtcd
		}
		graceful, err := restart()
		a.Target = "stopped with SIGTERM"
		if !graceful {
			a.Target = "SIGKILL after 20 s of SIGTERM"
		}
		return err
	case faultAuditErrors:
		h.recv.failing.Store(true)
		sleep(f.For)
		h.recv.failing.Store(false)
		return nil
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}

// sample reads every process's RSS and the managers' goroutines every 10 s.
func (h *harness) sample(ctx context.Context) {
	for {
		s := sample{T: time.Since(h.start).Seconds(), RSS: map[string]float64{}, Goroutines: map[string]float64{}}
		pids := map[string]int{"kube-apiserver": childPID("kube-apiserver"), "etcd": childPID("etcd"), "harness": os.Getpid()}
		for _, r := range h.replicas {
			pids[r.name()] = r.pid()
			if text, err := r.metricsText(ctx); err == nil {
				if g, ok := gauge(text, "go_goroutines"); ok {
					s.Goroutines[r.name()] = g
				}
			}
		}
		for name, pid := range pids {
			if pid == 0 {
				continue
			}
			if rss, err := machine.RSS(pid); err == nil {
				s.RSS[name] = float64(rss) / (1 << 20)
			}
		}
		for _, st := range h.streams {
			if st.isConnected() {
				s.Connected++
			}
		}
		h.mu.Lock()
		h.samples = append(h.samples, s)
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(sampleEvery):
		}
	}
}

// checkAudit waits until the records account for every write (or -drain passes) and
// returns the accounting.
func (h *harness) checkAudit(ctx context.Context) (*auditResult, error) {
	var res *auditResult
	var lastErr error
	err := poll(ctx, h.o.Drain, func() bool {
		finals, err := h.finals(ctx)
		if err != nil {
			lastErr = err
			return false
		}
		raw, _, _ := h.recv.snapshot()
		h.journal.mu.Lock()
		commits := slices.Clone(h.journal.commits)
		h.journal.mu.Unlock()
		res = account(raw, commits, finals)
		return len(res.Lost) == 0 && !h.deleting(ctx)
	})
	if res == nil {
		return nil, errors.Join(err, lastErr)
	}
	if err != nil {
		logf("the audit trail did not catch up within -drain (%s); counting what arrived", h.o.Drain)
	}
	return res, nil
}

// finals lists the flagops objects of the namespace.
func (h *harness) finals(ctx context.Context) (map[string]finalObject, error) {
	out := map[string]finalObject{}
	lists := []client.ObjectList{&v1.FeatureFlagList{}, &v1.UserFlagOverrideList{}, &v1.DeviceFlagOverrideList{}}
	kinds := []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"}
	for i, l := range lists {
		if err := h.admin.List(ctx, l, client.InNamespace(soakNS)); err != nil {
			return nil, err
		}
		items, _ := apimetaItems(l)
		for _, o := range items {
			if !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			out[string(o.GetUID())] = finalObject{UID: string(o.GetUID()), Kind: kinds[i], Name: o.GetName(), Generation: o.GetGeneration()}
		}
	}
	return out, nil
}

// deleting reports whether an override is still marked for deletion (its audit pending).
func (h *harness) deleting(ctx context.Context) bool {
	for _, l := range []client.ObjectList{&v1.UserFlagOverrideList{}, &v1.DeviceFlagOverrideList{}} {
		if err := h.admin.List(ctx, l, client.InNamespace(soakNS)); err != nil {
			return true
		}
		items, _ := apimetaItems(l)
		for _, o := range items {
			if !o.GetDeletionTimestamp().IsZero() {
				return true
			}
		}
	}
	return false
}

// checkStreams waits until every stream is connected and holds what POST /v1/evaluate
// answers for its context on both replicas (or -drain passes), and counts those that do not.
func (h *harness) checkStreams(ctx context.Context, hc *http.Client, addrs []string) *streamsResult {
	res := &streamsResult{Streams: len(h.streams)}
	t0 := time.Now()
	var missed []string
	_ = poll(ctx, h.o.Drain, func() bool {
		missed = missed[:0]
		res.Connected = 0
		for _, s := range h.streams {
			if s.isConnected() {
				res.Connected++
			}
			var want map[string]json.RawMessage
			for _, a := range addrs {
				got, err := evaluate(ctx, hc, a, s.ctx)
				if err != nil {
					missed = append(missed, fmt.Sprintf("stream %d: %v", s.index, err))
					want = nil
					break
				}
				if want != nil && len(differ(want, got)) > 0 {
					missed = append(missed, fmt.Sprintf("stream %d: the replicas disagree on %v", s.index, differ(want, got)))
					want = nil
					break
				}
				want = got
			}
			if want == nil {
				continue
			}
			if d := s.differs(want); len(d) > 0 {
				missed = append(missed, fmt.Sprintf("stream %d (%s): %v differ", s.index, s.query, d))
			}
		}
		return len(missed) == 0 && res.Connected == res.Streams
	})
	res.ConvergedSecs = time.Since(t0).Seconds()
	res.Missed = len(missed)
	res.MissedSample = missed[:min(len(missed), 10)]
	for _, s := range h.streams {
		res.Snapshots += s.snapshots.Load()
		res.Changes += s.changes.Load()
		res.UpToDate += s.upToDate.Load()
		res.Connects += s.connects.Load()
		res.Failures += s.failures.Load()
	}
	return res
}

// differ returns the keys whose results differ between a and b.
func differ(a, b map[string]json.RawMessage) []string {
	var out []string
	for k, v := range a {
		if !sameJSON(v, b[k]) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// poll calls cond every second until it holds, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
}

// waitGroup waits for wg, up to limit.
func waitGroup(ctx context.Context, wg *sync.WaitGroup, limit time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		return fmt.Errorf("not done after %s", limit)
	}
}

// writeLines writes each line followed by a line feed to path.
func writeLines(path string, lines [][]byte) error {
	return writeFileAtomic(path, func(f *os.File) error {
		for _, l := range lines {
			if _, err := f.Write(append(l, '\n')); err != nil {
				return err
			}
		}
		return nil
	})
}

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

// Command importbench measures a bulk import of overrides for one flag, on envtest (a real
// kube-apiserver and etcd; KUBEBUILDER_ASSETS must point at them): N UserFlagOverrides, one
// per user, all naming the same FeatureFlag, created by -c concurrent client workers while a
// manager with every flagops controller runs in this process. It reports:
//
//   - create: the time the client took to create the N overrides;
//   - counted: the time from the first create until the flag's status.userOverrides is N;
//   - syncs: the Syncer.Sync calls (whoever made them) from the first create until then;
//   - store writes: the revisions the evaluator store published in that time;
//   - audited: the time from the first create until the audit trail holds a record of each.
//
// The API server, etcd, the manager and the client share the machine's cores.
//
//	KUBEBUILDER_ASSETS=... go run ./hack/importbench -n 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/test/testenv"
)

const (
	benchNS = "importbench"
	flagKey = "import.flag"
)

func main() {
	n := flag.Int("n", 1000, "number of overrides to import")
	workers := flag.Int("c", 16, "concurrent client workers")
	timeout := flag.Duration("timeout", 20*time.Minute, "overall timeout")
	root := flag.String("root", ".", "repository root (for the CRDs)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (client and manager) to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *n < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "importbench: -n and -c must be at least 1")
		os.Exit(2)
	}
	if err := run(*n, *workers, *timeout, *root); err != nil {
		fmt.Fprintln(os.Stderr, "importbench:", err)
		os.Exit(1)
	}
}

func run(n, workers int, timeout time.Duration, root string) (retErr error) {
	// Errors only, until the report: reconcile errors would slow the run down and should show;
	// the ones of the shutdown after it (cancelled requests) would not say anything.
	var quiet atomic.Bool
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		if !quiet.Load() {
			fmt.Fprintln(os.Stderr, prefix, args)
		}
	}, funcr.Options{Verbosity: -1}))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}
	env := testenv.New(filepath.Clean(root))
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("failed to start envtest: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil && retErr == nil {
			retErr = fmt.Errorf("failed to stop envtest: %w", err)
		}
	}()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: controllers.StripForCache},
	})
	if err != nil {
		return err
	}
	store := evaluator.NewStore()
	sink := audit.NewMemory()
	syncer, err := controllers.Setup(ctx, mgr, controllers.Options{Store: store, Audit: sink,
		Self: audit.Actor{Username: "importbench"}})
	if err != nil {
		return err
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	defer func() {
		quiet.Store(true)
		stopMgr()
		if err := <-mgrDone; err != nil && retErr == nil {
			retErr = fmt.Errorf("the manager failed: %w", err)
		}
	}()
	for !syncer.Synced() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager did not sync: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}); err != nil {
		return err
	}
	f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: flagKey},
		Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean}}
	if err := c.Create(ctx, f); err != nil {
		return err
	}
	if err := waitFor(ctx, func() (bool, error) {
		got := &v1.FeatureFlag{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(f), got); err != nil {
			return false, err
		}
		return got.Status.ObservedGeneration == got.Generation, nil
	}); err != nil {
		return fmt.Errorf("the flag was not reconciled: %w", err)
	}

	syncs0, rev0 := syncer.Syncs(), store.Snapshot().Revision()
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				o := &v1.UserFlagOverride{
					ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: fmt.Sprintf("import-%06d", i)},
					Spec: v1.UserFlagOverrideSpec{UserID: fmt.Sprintf("user-%06d", i), FlagOverrideSpec: v1.FlagOverrideSpec{
						Flags: []v1.FlagOverrideEntry{{Key: flagKey, Enabled: ptr.To(true)}}}},
				}
				if err := c.Create(ctx, o); err != nil {
					errs <- fmt.Errorf("failed to create override %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	created := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}

	if err := waitFor(ctx, func() (bool, error) {
		got := &v1.FeatureFlag{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(f), got); err != nil {
			return false, err
		}
		return got.Status.UserOverrides == int32(n), nil
	}); err != nil {
		return fmt.Errorf("the flag never counted %d overrides: %w", n, err)
	}
	counted := time.Since(start)
	// One created record per override, and the flag's own.
	if err := waitFor(ctx, func() (bool, error) { return sink.Len() >= n+1, nil }); err != nil {
		return fmt.Errorf("the audit trail never held %d records: %w", n+1, err)
	}
	audited := time.Since(start)
	syncs, writes := syncer.Syncs()-syncs0, store.Snapshot().Revision()-rev0

	fmt.Printf("overrides          %d (one flag, one user each), %d client workers, GOMAXPROCS %d\n", n, workers, goruntime.GOMAXPROCS(0))
	fmt.Printf("create             %.1f s (%.0f overrides/s)\n", created.Seconds(), float64(n)/created.Seconds())
	fmt.Printf("counted            %.1f s after the first create\n", counted.Seconds())
	fmt.Printf("audited            %.1f s after the first create (%d records)\n", audited.Seconds(), sink.Len())
	fmt.Printf("syncs              %d (%.1f per override)\n", syncs, float64(syncs)/float64(n))
	fmt.Printf("store writes       %d\n", writes)
	return nil
}

// waitFor polls cond every 50 ms until it holds, fails, or ctx ends.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) { return cond() })
}

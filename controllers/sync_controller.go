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

package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/flagops/flagops/evaluator"
)

// +kubebuilder:rbac:groups=flagops.dev,resources=featureflags;userflagoverrides;deviceflagoverrides,verbs=get;list;watch

// SyncReconciler keeps the evaluator store in step with one kind. It runs on every replica
// (no leader election), so that every replica serves the same values.
type SyncReconciler struct {
	Syncer *Syncer
	Kind   Kind
}

// Reconcile applies the cached state of one object to the store.
func (r *SyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	_, err := r.Syncer.Sync(ctx, r.Kind, req.NamespacedName)
	return ctrl.Result{}, err
}

// syncCacheSyncTimeout bounds how long a sync controller waits, when it starts, for its
// events of the informer's initial list, which wait for the initial sync (see skipReflected).
const syncCacheSyncTimeout = 10 * time.Minute

// SetupWithManager registers the reconciler.
func (r *SyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.Kind.NewObject(), builder.WithPredicates(r.Syncer.skipReflected(r.Kind))).
		Named(strings.ToLower(string(r.Kind)) + "-sync").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), CacheSyncTimeout: syncCacheSyncTimeout}).
		Complete(r)
}

// skipReflected is the sync controllers' predicate: it drops the creates and updates of
// objects whose version the store already reflects (Syncer.reflects), so that they cost no
// reconcile. Above all that is the informer's initial list, which the initial sync applied in
// one batch: its events wait until the initial sync is over (each handler of an informer has
// its own goroutine and buffer, so the wait holds up only this controller's events), and are
// then dropped unless the object changed since. A status-only change is dropped too.
func (s *Syncer) skipReflected(kind Kind) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			if e.IsInInitialList {
				<-s.initialOver
			}
			return !s.reflects(kind, e.Object)
		},
		UpdateFunc: func(e event.UpdateEvent) bool { return !s.reflects(kind, e.ObjectNew) },
	}
}

// replicaRunnable runs on every replica, leader or not.
type replicaRunnable func(context.Context) error

func (f replicaRunnable) Start(ctx context.Context) error { return f(ctx) }
func (replicaRunnable) NeedLeaderElection() bool          { return false }

// SetupSync wires the store into mgr: a sync reconciler per kind, the initial sync that gates
// /readyz, and the clock that ticks the store at expiries and schedule steps. It returns the
// Syncer, which the lifecycle controllers share.
func SetupSync(mgr ctrl.Manager, store *evaluator.Store) (*Syncer, error) {
	return setupSync(mgr, NewSyncer(mgr.GetCache(), store), nil)
}

// SetupServingSync is SetupSync for the read-only serving modes, where the store is the only
// reader of the overrides: FeatureFlags go through the cache and their sync controller as
// with SetupSync, and each override kind through an overrideFeed per namespace (one for
// every namespace when namespaces is empty), which applies its watch to the store without
// an informer cache. A cache would hold a second copy of every override.
func SetupServingSync(mgr ctrl.Manager, store *evaluator.Store, namespaces []string) (*Syncer, error) {
	c, err := client.NewWithWatch(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
	if err != nil {
		return nil, fmt.Errorf("failed to create the overrides' watch client: %w", err)
	}
	s := NewSyncer(mgr.GetCache(), store)
	s.fed = map[Kind]bool{KindUserFlagOverride: true, KindDeviceFlagOverride: true}
	s.pending = map[objKey]evaluator.Op{}
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var feeds []*overrideFeed
	for _, kind := range []Kind{KindUserFlagOverride, KindDeviceFlagOverride} {
		for _, ns := range namespaces {
			feeds = append(feeds, newOverrideFeed(s, c, kind, ns))
		}
	}
	return setupSync(mgr, s, feeds)
}

// setupSync wires s into mgr, with a sync controller for every kind the feeds do not
// deliver; the initial sync waits for the cache and for each feed's first list.
func setupSync(mgr ctrl.Manager, s *Syncer, feeds []*overrideFeed) (*Syncer, error) {
	for _, kind := range Kinds {
		if s.fed[kind] {
			continue
		}
		if err := (&SyncReconciler{Syncer: s, Kind: kind}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("failed to set up the %s sync controller: %w", kind, err)
		}
	}
	for _, f := range feeds {
		if err := mgr.Add(f); err != nil {
			return nil, fmt.Errorf("failed to add the %s feed: %w", f.kind, err)
		}
	}
	initial := replicaRunnable(func(ctx context.Context) error {
		defer s.endInitial()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("the cache did not sync")
		}
		for _, f := range feeds {
			select {
			case <-ctx.Done():
				return fmt.Errorf("the %s feed did not list: %w", f.kind, ctx.Err())
			case <-f.listed:
			}
		}
		return s.InitialSync(ctx)
	})
	if err := mgr.Add(initial); err != nil {
		return nil, fmt.Errorf("failed to add the initial sync: %w", err)
	}
	if err := mgr.Add(replicaRunnable(s.RunClock)); err != nil {
		return nil, fmt.Errorf("failed to add the store clock: %w", err)
	}
	if err := mgr.AddReadyzCheck("evaluator-sync", s.ReadyCheck); err != nil {
		return nil, fmt.Errorf("failed to add the readiness check: %w", err)
	}
	return s, nil
}

// Let the compiler check that the runnables opt out of leader election.
var _ manager.LeaderElectionRunnable = replicaRunnable(nil)

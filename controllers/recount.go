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

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flagops/flagops/evaluator"
)

// storeSource is the source through which a lifecycle controller (on the leader) learns that
// the evaluator store changed what it reports about an object of its kind. The lifecycle
// reconcilers only read the store; the sync controllers write it. So that a status read from
// the store converges, a storeSource enqueues:
//
//   - every object of the kind, once the initial sync is complete (the reconcilers skip
//     status until then), and again if the store's change history no longer reaches back
//     to the last change set it read;
//   - the object itself, after the Syncer applied a new version of it (or its deletion);
//   - the objects that a store change set may concern (requests), for changes caused by
//     other objects: another override of the same subject, a flag, an expiry.
//
// Each change set is read once and each request is queued once per change set, and the
// controller's queue merges requests for the same object: a bulk import of N overrides of one
// flag costs O(N) requests in total, however many of them land before the flag is recounted.
type storeSource struct {
	syncer *Syncer
	kind   Kind
	// reader lists objects of kind (the manager's cache, with the indexes of SetupIndexes).
	reader client.Reader
	// requests maps one change set to the objects of kind whose status it may change.
	requests func(context.Context, evaluator.ChangeSet) []reconcile.Request
}

var _ source.Source = (*storeSource)(nil)

// Start implements source.Source: it follows the store until ctx is done.
func (s *storeSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go s.run(ctx, q)
	return nil
}

func (s *storeSource) String() string { return "evaluator store (" + string(s.kind) + ")" }

func (s *storeSource) run(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	select {
	case <-ctx.Done():
		return
	case <-s.syncer.WhenSynced():
	}
	defer s.syncer.OnSync(func(kind Kind, nn types.NamespacedName) {
		if kind == s.kind {
			q.Add(reconcile.Request{NamespacedName: nn})
		}
	})()
	store := s.syncer.Store()
	pos := store.Snapshot().Revision()
	s.enqueueAll(ctx, q)
	for {
		sets, wake, ok := store.Changes(pos)
		if !ok {
			// Change sets were dropped from the history before this loop read them.
			pos = store.Snapshot().Revision()
			s.enqueueAll(ctx, q)
			continue
		}
		for _, cs := range sets {
			for _, req := range s.requests(ctx, cs) {
				q.Add(req)
			}
			pos = cs.Revision
		}
		if len(sets) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// enqueueAll adds every cached object of the kind.
func (s *storeSource) enqueueAll(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	list := s.kind.NewList()
	if err := s.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Unable to list objects to reconcile after a store resync", "kind", s.kind)
		return
	}
	objs, _ := objectsOf(list)
	for _, o := range objs {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
}

// flagsOfChange returns the mapping of a change set to the FeatureFlags whose status it may
// change: those with a key it lists (an upsert, a delete, a schedule step), and those with a
// key whose effective override changed for some subject, which moves the override counts.
func flagsOfChange(s *Syncer) func(context.Context, evaluator.ChangeSet) []reconcile.Request {
	return func(_ context.Context, cs evaluator.ChangeSet) []reconcile.Request {
		seen := map[flagKey]bool{}
		var out []reconcile.Request
		add := func(ns, key string) {
			if fk := (flagKey{ns, key}); !seen[fk] {
				seen[fk] = true
				for _, nn := range s.FlagsOfKey(ns, key) {
					out = append(out, reconcile.Request{NamespacedName: nn})
				}
			}
		}
		for _, f := range cs.Flags {
			add(f.Namespace, f.Key)
		}
		for _, sc := range cs.Subjects {
			add(sc.Namespace, sc.Key)
		}
		return out
	}
}

// overridesOfChange returns the mapping of a change set to the overrides of kind whose status
// it may change: the overrides of every subject of that kind whose effective override changed
// (a conflict may start or end), and the overrides that name a flag the change set lists (an
// entry may become valid or invalid).
func overridesOfChange(reader client.Reader, kind Kind) func(context.Context, evaluator.ChangeSet) []reconcile.Request {
	return func(ctx context.Context, cs evaluator.ChangeSet) []reconcile.Request {
		type query struct{ ns, index, value string }
		seen := map[query]bool{}
		var queries []query
		add := func(q query) {
			if !seen[q] {
				seen[q] = true
				queries = append(queries, q)
			}
		}
		for _, sc := range cs.Subjects {
			if sc.Kind == kind.subjectKind() {
				add(query{sc.Namespace, IndexSubject, sc.SubjectID})
			}
		}
		for _, f := range cs.Flags {
			add(query{f.Namespace, IndexFlagKey, f.Key})
		}
		reqs := map[types.NamespacedName]bool{}
		var out []reconcile.Request
		for _, q := range queries {
			list := kind.NewList()
			if err := reader.List(ctx, list, client.InNamespace(q.ns), client.MatchingFields{q.index: q.value}, client.UnsafeDisableDeepCopy); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Unable to list overrides to reconcile after a store change", "index", q.index, "value", q.value)
				continue
			}
			objs, _ := objectsOf(list)
			for _, o := range objs {
				nn := client.ObjectKeyFromObject(o)
				if !reqs[nn] {
					reqs[nn] = true
					out = append(out, reconcile.Request{NamespacedName: nn})
				}
			}
		}
		return out
	}
}

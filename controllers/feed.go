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
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// overrideFeed applies the watch of one override kind, in one namespace or in all, straight
// to the store through its Syncer, with no informer cache in between. It is how the
// read-only serving modes (`flagops evaluator`, `flagops sidecar`) sync overrides: nothing
// else there reads them, and a cache would keep a second copy of every override, as a typed
// object with its strings and index entries, beside the store's own (see SetupServingSync).
//
// It is the store of a client-go Reflector, which lists (or streams the initial events),
// watches, and lists again when the watch cannot resume. Each watch event is applied as the
// sync controllers apply a reconcile; a list replaces what the feed had applied in its
// namespace: what is missing from it is deleted.
type overrideFeed struct {
	s         *Syncer
	kind      Kind
	namespace string // "" for every namespace
	lw        toolscache.ListerWatcher

	// listed is closed after the first list has been applied (or, before the initial sync,
	// queued for it).
	listed     chan struct{}
	listedOnce sync.Once
}

var _ toolscache.TransformingStore = &overrideFeed{}

// newOverrideFeed returns the feed of kind in namespace ("" for all), listing and watching
// through c.
func newOverrideFeed(s *Syncer, c client.WithWatch, kind Kind, namespace string) *overrideFeed {
	f := &overrideFeed{s: s, kind: kind, namespace: namespace, listed: make(chan struct{})}
	var inNS []client.ListOption
	if namespace != "" {
		inNS = []client.ListOption{client.InNamespace(namespace)}
	}
	f.lw = &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := kind.NewList()
			err := c.List(ctx, list, append([]client.ListOption{&client.ListOptions{Raw: &opts}}, inNS...)...)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.AllowWatchBookmarks = true
			return c.Watch(ctx, kind.NewList(), append([]client.ListOption{&client.ListOptions{Raw: &opts}}, inNS...)...)
		},
	}
	return f
}

// Start runs the reflector until ctx ends. The feed runs on every replica.
func (f *overrideFeed) Start(ctx context.Context) error {
	name := strings.ToLower(string(f.kind)) + "-feed"
	if f.namespace != "" {
		name += "/" + f.namespace
	}
	r := toolscache.NewReflectorWithOptions(f.lw, f.kind.NewObject(), f, toolscache.ReflectorOptions{Name: name})
	r.RunWithContext(ctx)
	return nil
}

// NeedLeaderElection is false: every replica serves.
func (f *overrideFeed) NeedLeaderElection() bool { return false }

// Transformer strips what the store does not read from the objects that the reflector
// holds while it streams the initial events, before they reach Replace.
func (f *overrideFeed) Transformer() toolscache.TransformFunc { return ServingTransform }

// Add applies a created object.
func (f *overrideFeed) Add(obj any) error { return f.Update(obj) }

// Update applies a changed object; one being deleted is taken out of the store.
func (f *overrideFeed) Update(obj any) error {
	o, err := f.object(obj)
	if err != nil {
		return err
	}
	f.s.feedApply(f.kind, []client.Object{o}, nil)
	return nil
}

// Delete takes a deleted object out of the store.
func (f *overrideFeed) Delete(obj any) error {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, err := f.object(obj)
	if err != nil {
		return err
	}
	f.s.feedApply(f.kind, nil, []types.NamespacedName{client.ObjectKeyFromObject(o)})
	return nil
}

// Replace applies a full list of the feed's namespace: its objects, and the deletion of
// every object of the kind that the store holds there and the list does not.
func (f *overrideFeed) Replace(items []any, _ string) error {
	objs := make([]client.Object, 0, len(items))
	listed := make(map[types.NamespacedName]struct{}, len(items))
	for _, it := range items {
		o, err := f.object(it)
		if err != nil {
			return err
		}
		objs = append(objs, o)
		listed[client.ObjectKeyFromObject(o)] = struct{}{}
	}
	gone := f.s.feedKeys(f.kind, f.namespace, func(nn types.NamespacedName) bool {
		_, ok := listed[nn]
		return !ok
	})
	f.s.feedApply(f.kind, objs, gone)
	f.listedOnce.Do(func() { close(f.listed) })
	return nil
}

// Resync does nothing: the feed has no cache to resync from.
func (f *overrideFeed) Resync() error { return nil }

// object checks that obj is of the feed's kind.
func (f *overrideFeed) object(obj any) (client.Object, error) {
	switch o := obj.(type) {
	case *v1.UserFlagOverride:
		if f.kind == KindUserFlagOverride {
			return o, nil
		}
	case *v1.DeviceFlagOverride:
		if f.kind == KindDeviceFlagOverride {
			return o, nil
		}
	}
	return nil, fmt.Errorf("the %s feed got a %T", f.kind, obj)
}

// feedKeys returns the objects of kind in namespace ("" for all) that the syncer holds
// (applied, or queued for the initial sync) and for which keep is true.
func (s *Syncer) feedKeys(kind Kind, namespace string, keep func(types.NamespacedName) bool) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []types.NamespacedName
	for k := range s.applied {
		if k.kind == kind && (namespace == "" || k.nn.Namespace == namespace) && keep(k.nn) {
			out = append(out, k.nn)
		}
	}
	return out
}

// feedApply applies objects of an override kind and deletions of others, delivered by a
// feed, under the syncer's lock: an object being deleted is taken out, one whose version
// the store reflects is skipped. Before the initial sync, the operations wait for it (see
// InitialSync), so that the store's first revision holds everything; after it, they are
// applied in one write.
func (s *Syncer) feedApply(kind Kind, objs []client.Object, gone []types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []evaluator.Op
	var changed []types.NamespacedName
	remove := func(nn types.NamespacedName) {
		key := objKey{kind, nn}
		if _, ok := s.applied[key]; !ok {
			return
		}
		delete(s.applied, key)
		if s.pending != nil {
			delete(s.pending, key)
			return
		}
		ops = append(ops, evaluator.DeleteOverride(kind.subjectKind(), nn.Namespace, nn.Name))
		changed = append(changed, nn)
	}
	for _, nn := range gone {
		remove(nn)
	}
	for _, obj := range objs {
		s.syncs.Add(1)
		syncsTotal.Inc()
		nn := client.ObjectKeyFromObject(obj)
		if !obj.GetDeletionTimestamp().IsZero() {
			remove(nn)
			continue
		}
		key := objKey{kind, nn}
		if v, ok := s.applied[key]; ok && v.reflects(obj) {
			continue
		}
		op, err := s.op(kind, obj)
		if err != nil {
			// Overrides always convert; op fails only for a type it does not know, which
			// feedApply's callers have checked.
			panic(fmt.Sprintf("flagops: %v", err))
		}
		s.applied[key] = versionOf(obj)
		if s.pending != nil {
			s.pending[key] = op
			continue
		}
		ops = append(ops, op)
		changed = append(changed, nn)
	}
	if len(ops) == 0 {
		return
	}
	s.apply(ops...)
	for _, nn := range changed {
		s.notify(kind, nn)
	}
}

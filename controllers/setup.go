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
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
)

// Options configure the flagops controllers.
type Options struct {
	// Store is the evaluator store the controllers feed.
	Store *evaluator.Store
	// Audit receives one record per change.
	Audit audit.Sink
	// Self is the actor of automatic changes (expiry cleanup, schedule steps).
	Self audit.Actor
	// Now is the lifecycle controllers' clock; nil means time.Now.
	Now func() time.Time
	// StampKeys verify the webhooks' actor stamps; nil verifies none, and every record but
	// the manager's own changes then has actor.verified false.
	StampKeys *stamp.Keys
	// LeaseHeld reports whether this replica certainly still holds the leader-election
	// Lease: LeaseFence.Held with leader election, or a function that always answers true
	// for a manager that runs alone. Nil is never certain, and the Auditor then reads each
	// new object once more (see Auditor.LeaseHeld).
	LeaseHeld func() bool
}

// DedupWindow is how many recent audit record IDs the controllers remember to drop
// duplicates.
const DedupWindow = 4096

// EventSource is the name the controllers record events under.
const EventSource = "flagops-manager"

// Setup registers every flagops controller with mgr: the sync controllers, which run on every
// replica and feed the store, and the lifecycle controllers, which run on the elected leader
// and write finalizers, status, events and audit records.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*Syncer, error) {
	if opts.Store == nil || opts.Audit == nil {
		return nil, fmt.Errorf("controllers.Setup needs a store and an audit sink")
	}
	if err := SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	s, err := SetupSync(mgr, opts.Store)
	if err != nil {
		return nil, err
	}
	// A record is written before the status that says it was written, so that a crash never
	// loses one. A reconcile that runs again before the cache has the new status therefore
	// rebuilds the same record, with the same deterministic ID: Dedup drops it.
	// Unverified actors are reported under Dedup, once per record written.
	recorder := mgr.GetEventRecorder(EventSource)
	sink := audit.Dedup(unverifiedSink{Sink: opts.Audit, recorder: recorder}, DedupWindow)
	// The manager's own changes are known for certain.
	self := opts.Self
	self.Verified = true
	actors := Actors{APIReader: mgr.GetAPIReader(), Self: self, Keys: opts.StampKeys}
	auditor := &Auditor{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Informers: mgr.GetCache(), Sink: sink, Actors: actors,
		Recorder: recorder, Now: opts.Now, Hold: s.WhenSynced(), LeaseHeld: opts.LeaseHeld}
	if err := mgr.Add(auditor); err != nil {
		return nil, fmt.Errorf("failed to add the auditor: %w", err)
	}
	flags := &FlagReconciler{Client: mgr.GetClient(), Syncer: s, Recorder: recorder, Audit: sink, Actors: actors, Now: opts.Now, Auditor: auditor}
	if err := flags.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the FeatureFlag controller: %w", err)
	}
	for _, kind := range []Kind{KindUserFlagOverride, KindDeviceFlagOverride} {
		r := &OverrideReconciler{Client: mgr.GetClient(), Syncer: s, Kind: kind, Recorder: recorder, Audit: sink, Actors: actors, Now: opts.Now, Auditor: auditor}
		if err := r.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("failed to set up the %s controller: %w", kind, err)
		}
	}
	return s, nil
}

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
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// LeaseFence wraps the leader-election lock and remembers when this replica last renewed the
// Lease, so that the leader can tell, by its own clock and without a request, that no other
// replica can have taken over meanwhile.
//
// A candidate takes the Lease over only after it has seen the same record for Duration. The
// time this replica sent its last successful renewal comes before the API server stored it,
// and so before any candidate saw it: until Duration after that send, no other replica can
// hold the Lease. Held keeps a fifth of Duration as a margin for clocks that run at
// different rates. A leader paused past its Lease (SIGSTOP, a stalled node) resumes with
// its last renewal too old, and Held answers false from the first instant, well before the
// leader-election loop notices the loss (up to its renew deadline later).
type LeaseFence struct {
	resourcelock.Interface
	// Duration is the Lease's duration.
	Duration time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	renewed time.Time
}

var _ resourcelock.Interface = (*LeaseFence)(nil)

func (f *LeaseFence) now() time.Time { return nowOr(f.Now) }

// Create creates the Lease with this replica as its holder.
func (f *LeaseFence) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := f.now()
	err := f.Interface.Create(ctx, ler)
	f.observe(sent, ler, err)
	return err
}

// Update renews, takes over or releases the Lease.
func (f *LeaseFence) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := f.now()
	err := f.Interface.Update(ctx, ler)
	f.observe(sent, ler, err)
	return err
}

// observe learns from a write of ler sent at sent that ended with err. A failed write leaves
// the last renewal as it was; a release (another holder, or none) forgets it.
func (f *LeaseFence) observe(sent time.Time, ler resourcelock.LeaderElectionRecord, err error) {
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ler.HolderIdentity == f.Identity() {
		f.renewed = sent
	} else {
		f.renewed = time.Time{}
	}
}

// Held reports whether this replica certainly still holds the Lease: it renewed it less than
// four fifths of Duration ago.
func (f *LeaseFence) Held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.renewed.IsZero() && f.now().Sub(f.renewed) < f.Duration-f.Duration/5
}

// NewLeaseFence makes the Lease lock that the manager of o would make, wrapped in a
// LeaseFence of o's LeaseDuration, for o.LeaderElectionResourceLockInterface. o must state
// its LeaseDuration and RenewDeadline, so that the fence and the manager's elector reckon
// with the same Lease. The lock's leader-election Events are recorded as the manager
// records them, through the core Events API; stop flushes and stops their recorder once the
// manager has stopped.
func NewLeaseFence(cfg *rest.Config, o ctrl.Options) (fence *LeaseFence, stop func(), err error) {
	if o.LeaseDuration == nil || o.RenewDeadline == nil {
		return nil, nil, errors.New("the manager's options must state LeaseDuration and RenewDeadline, which the Lease fence reckons with")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to make the leader-election Events' client: %w", err)
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	// NewResourceLock sets its user agent and a timeout of half the renew deadline on the
	// config it is given: a copy, so that the manager's own requests and watches keep theirs.
	lock, err := leaderelection.NewResourceLock(rest.CopyConfig(cfg), leaseEvents{b}, leaderelection.Options{LeaderElection: true,
		LeaderElectionID: o.LeaderElectionID, LeaderElectionNamespace: o.LeaderElectionNamespace, RenewDeadline: *o.RenewDeadline})
	if err != nil {
		b.Shutdown()
		return nil, nil, fmt.Errorf("failed to make the leader-election lock: %w", err)
	}
	return &LeaseFence{Interface: lock, Duration: *o.LeaseDuration}, b.Shutdown, nil
}

// leaseEvents gives the Lease lock its Event recorder.
type leaseEvents struct{ b record.EventBroadcaster }

func (p leaseEvents) GetEventRecorderFor(name string) record.EventRecorder {
	return p.b.NewRecorder(clientgoscheme.Scheme, corev1.EventSource{Component: name})
}

// GetEventRecorder is not used by the Lease lock.
func (leaseEvents) GetEventRecorder(string) recorder.EventRecorder { return nil }

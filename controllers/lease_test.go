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
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// fakeLock is a resourcelock.Interface whose writes fail while err is set.
type fakeLock struct {
	resourcelock.Interface
	err error
}

func (l *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return l.err }
func (l *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return l.err }
func (l *fakeLock) Identity() string                                                { return "me" }

func TestLeaseFenceHeld(t *testing.T) {
	t.Parallel()
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}
	type step struct {
		// advance moves the clock before the step; write, when set, is the record written
		// (create says with Create), failing with err.
		advance time.Duration
		write   *resourcelock.LeaderElectionRecord
		create  bool
		err     error
		want    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"never written", []step{{want: false}}},
		{"created, then aging past four fifths of the Lease", []step{
			{write: &mine, create: true, want: true},
			{advance: 11 * time.Second, want: true},
			{advance: time.Second, want: false},
		}},
		{"renewed in time", []step{
			{write: &mine, create: true, want: true},
			{advance: 10 * time.Second, write: &mine, want: true},
			{advance: 10 * time.Second, want: true},
		}},
		{"a failed renewal keeps the last one", []step{
			{write: &mine, want: true},
			{advance: 5 * time.Second, write: &mine, err: errors.New("timeout"), want: true},
			{advance: 7 * time.Second, want: false},
		}},
		{"a failed first write", []step{{write: &mine, create: true, err: errors.New("forbidden"), want: false}}},
		{"released", []step{
			{write: &mine, want: true},
			{advance: time.Second, write: &resourcelock.LeaderElectionRecord{}, want: false},
		}},
		{"another holder written", []step{
			{write: &mine, want: true},
			{write: &resourcelock.LeaderElectionRecord{HolderIdentity: "other"}, want: false},
		}},
		{"a pause past the Lease", []step{
			{write: &mine, want: true},
			{advance: 30 * time.Second, want: false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
			lock := &fakeLock{}
			f := &LeaseFence{Interface: lock, Duration: 15 * time.Second, Now: func() time.Time { return now }}
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				if s.write != nil {
					lock.err = s.err
					var err error
					if s.create {
						err = f.Create(context.Background(), *s.write)
					} else {
						err = f.Update(context.Background(), *s.write)
					}
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d: write returned %v, want %v", i, err, s.err)
					}
				}
				if got := f.Held(); got != s.want {
					t.Fatalf("step %d: Held() = %t, want %t", i, got, s.want)
				}
			}
		})
	}
}

// The Lease lock's client times out after half the renew deadline; found by hack/scale: the
// manager's own config took that timeout too, and its informers' watches ended every 5 s.
func TestNewLeaseFenceLeavesTheConfigAlone(t *testing.T) {
	t.Parallel()
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	o := ctrl.Options{LeaderElection: true, LeaderElectionID: "flagops-test", LeaderElectionNamespace: "default",
		LeaseDuration: ptr.To(15 * time.Second), RenewDeadline: ptr.To(10 * time.Second)}
	fence, stop, err := NewLeaseFence(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if cfg.Timeout != 0 || cfg.UserAgent != "" {
		t.Errorf("the manager's config was changed: timeout %s, user agent %q", cfg.Timeout, cfg.UserAgent)
	}
	if fence.Duration != 15*time.Second || fence.Identity() == "" {
		t.Errorf("fence: duration %s, identity %q", fence.Duration, fence.Identity())
	}
	// Without the durations the fence would not know the Lease.
	o.LeaseDuration = nil
	if _, _, err := NewLeaseFence(cfg, o); err == nil || !strings.Contains(err.Error(), "LeaseDuration") {
		t.Errorf("options without LeaseDuration: err = %v, want one naming LeaseDuration", err)
	}
}

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

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/tools/events"

	"github.com/flagops/flagops/internal/audit"
)

func TestUnverifiedSink(t *testing.T) {
	record := func(kind string, actor audit.Actor) audit.Record {
		return audit.Record{ID: "id", Time: time.Unix(1, 0), Action: audit.ActionFlagUpdated, Actor: actor,
			Object: audit.ObjectRef{Kind: kind, Namespace: "ns", Name: "beta.x", UID: "uid-1", Generation: 2}}
	}
	tests := []struct {
		name      string
		rec       audit.Record
		noRecord  bool
		writeErr  error
		wantCount float64
		wantEvent string
	}{
		{name: "a verified actor is not reported", rec: record("FeatureFlag", audit.Actor{Username: "alice", Verified: true})},
		{name: "an unverified actor is counted and reported", rec: record("FeatureFlag", audit.Actor{Username: "kubectl", Claimed: "mallory"}),
			wantCount: 1, wantEvent: `Warning UnverifiedChange flag.updated at generation 2 has no valid actor stamp (the annotation gave the name "mallory")`},
		{name: "an actor without a claim", rec: record("FeatureFlag", audit.Actor{Username: "kubectl"}),
			wantCount: 1, wantEvent: "(the annotation gave no name)"},
		{name: "a failed write is not counted", rec: record("FeatureFlag", audit.Actor{Username: "kubectl"}), writeErr: errors.New("disk full")},
		{name: "no recorder: counted only", rec: record("FeatureFlag", audit.Actor{Username: "kubectl"}), noRecord: true, wantCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := audit.NewMemory()
			mem.SetWriteError(tt.writeErr)
			fake := events.NewFakeRecorder(4)
			s := unverifiedSink{Sink: mem, recorder: fake}
			if tt.noRecord {
				s.recorder = nil
			}
			before := testutil.ToFloat64(unverifiedChanges.WithLabelValues(tt.rec.Object.Kind))
			err := s.Write(context.Background(), tt.rec)
			if (err != nil) != (tt.writeErr != nil) {
				t.Fatalf("Write() error = %v, want %v", err, tt.writeErr)
			}
			if got := testutil.ToFloat64(unverifiedChanges.WithLabelValues(tt.rec.Object.Kind)) - before; got != tt.wantCount {
				t.Errorf("counted %v, want %v", got, tt.wantCount)
			}
			select {
			case ev := <-fake.Events:
				if tt.wantEvent == "" || !strings.Contains(ev, tt.wantEvent) {
					t.Errorf("event %q, want one containing %q", ev, tt.wantEvent)
				}
			default:
				if tt.wantEvent != "" {
					t.Errorf("no event, want one containing %q", tt.wantEvent)
				}
			}
		})
	}
}

func TestReportUnverifiedUnknownKind(t *testing.T) {
	fake := events.NewFakeRecorder(1)
	before := testutil.ToFloat64(unverifiedChanges.WithLabelValues("Other"))
	reportUnverified(fake, audit.Record{Object: audit.ObjectRef{Kind: "Other", Name: "x"}})
	if got := testutil.ToFloat64(unverifiedChanges.WithLabelValues("Other")) - before; got != 1 {
		t.Errorf("counted %v, want 1", got)
	}
	if len(fake.Events) != 0 {
		t.Errorf("an event about an object of unknown kind: %q", <-fake.Events)
	}
}

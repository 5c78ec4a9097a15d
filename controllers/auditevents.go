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
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=list

// changeEvents records the Normal Event of each audited change (package internal/auditevent)
// once the Auditor's sink has its record: exactly one per record, under these rules.
//
//   - A record is sent again by the same process when something after its write failed (the
//     checkpoint update): the IDs of the last DedupWindow records with an Event are
//     remembered, and such a record gets none again.
//   - A record is sent again by another process when a leader stopped after the sink had it
//     and before the checkpoint said so. Such a record is "replayed" (the Auditor found it
//     pending in a checkpoint it did not write just before): its Event is recorded only if
//     the API server has no Event about the object whose note names the record's ID.
//
// So an Event is recorded twice only when the earlier leader's Event reached the API server
// after its successor listed the object's Events (the recorder sends asynchronously, and a
// leader that loses its lease stops sending), and is missing when a leader stopped between
// the sink's write and the recorder's send. Both copies name the same record ID, which
// kubectl flagops history uses to show one.
type changeEvents struct {
	recorder events.EventRecorder
	reader   client.Reader

	mu   sync.Mutex
	ring []string
	next int
	seen map[string]struct{}
}

func newChangeEvents(recorder events.EventRecorder, reader client.Reader, window int) *changeEvents {
	return &changeEvents{recorder: recorder, reader: reader, ring: make([]string, window), seen: make(map[string]struct{}, window)}
}

// record records the Event of rec, a record the sink has just accepted, unless it has one.
func (c *changeEvents) record(ctx context.Context, rec audit.Record, replayed bool) {
	reason := auditevent.Reason(string(rec.Action))
	kind := Kind(rec.Object.Kind)
	if c == nil || c.recorder == nil || reason == "" || !slices.Contains(Kinds, kind) {
		return
	}
	if !c.remember(rec.ID) || replayed && c.exists(ctx, rec) {
		return
	}
	// The Event names the recorded version of the object by reference. Its resourceVersion
	// is part of the recorder's key for a series of like Events, so two changes of one
	// object never fold into one Event.
	obj := kind.NewObject()
	obj.SetNamespace(rec.Object.Namespace)
	obj.SetName(rec.Object.Name)
	obj.SetUID(types.UID(rec.Object.UID))
	obj.SetResourceVersion(rec.Object.ResourceVersion)
	c.recorder.Eventf(obj, nil, corev1.EventTypeNormal, reason, string(rec.Action), "%s", auditevent.Format(eventNote(rec)))
}

// remember notes that id has its Event, and reports whether it was not noted yet.
func (c *changeEvents) remember(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[id]; ok {
		return false
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.seen, old)
	}
	c.ring[c.next], c.seen[id] = id, struct{}{}
	c.next = (c.next + 1) % len(c.ring)
	return true
}

// exists reports whether the API server has an Event of rec already. When it cannot tell,
// it says no: an Event recorded twice is better than none.
func (c *changeEvents) exists(ctx context.Context, rec audit.Record) bool {
	list := &eventsv1.EventList{}
	if err := c.reader.List(ctx, list, client.InNamespace(rec.Object.Namespace),
		client.MatchingFields{"regarding.uid": rec.Object.UID}); err != nil {
		return false
	}
	for _, e := range list.Items {
		if n, err := auditevent.Parse(e.Note); err == nil && n.RecordID == rec.ID {
			return true
		}
	}
	return false
}

// eventNote returns what the Event of rec says.
func eventNote(rec audit.Record) auditevent.Note {
	n := auditevent.Note{
		SubjectKind: auditevent.SubjectKindOf(string(rec.Action)),
		Subject:     rec.Object.Key,
		Generation:  rec.Object.Generation,
		Actor:       auditevent.Actor{Username: rec.Actor.Username, Verified: rec.Actor.Verified, Claimed: rec.Actor.Claimed},
		Before:      rec.Before,
		After:       rec.After,
		RecordID:    rec.ID,
	}
	if s := rec.Subject; s != nil {
		n.Subject = s.UserID + s.DeviceID // exactly one is set
	}
	if r := rec.Request; r != nil {
		req := auditevent.Request(*r)
		n.Request = &req
	}
	if co := rec.Coalesced; co != nil {
		n.FromGeneration, n.Generation = co.FromGeneration, co.ToGeneration
		for _, a := range co.Actors {
			n.Writers = append(n.Writers, a.Username)
		}
	}
	return n
}

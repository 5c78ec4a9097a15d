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

package flagadmin

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/auditevent"
)

// ListEvents lists the core/v1 view of namespace ns's Events with c, which the built-in view
// role may read (the manager records them through events.k8s.io/v1; both are one resource).
func ListEvents(ctx context.Context, c client.Client, ns string) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("failed to list events: %w", err)
	}
	return list.Items, nil
}

// HistoryEntry is one Event the manager recorded about a flag or an override: an audited
// change (FlagCreated, OverrideUpdated, …; package internal/auditevent), with its actor,
// changed keys and values before and after, or another Event (a schedule step, an expiry, a
// value that is not served, a conflict, an unverified actor), with its message.
type HistoryEntry struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
	// Action is the audited change's action, e.g. flag.updated; empty for other Events.
	Action string `json:"action,omitempty"`
	// Object is the object the Event is about, e.g. UserFlagOverride/user-alice.
	Object string `json:"object"`
	// Actor is who made an audited change, followed by "(unverified)" when the webhook's
	// stamp did not verify it (the name is then a field manager, a hint); for other Events,
	// the reporting controller, or the field manager an UnverifiedChange gives as a hint.
	Actor string `json:"actor"`
	// Verified is set for audited changes: whether the actor is known for certain.
	Verified *bool `json:"verified,omitempty"`
	// Request is, for a change made through flagops' console, the console's request: its
	// route, the source IP and the user agent, as far as the Event has room for them.
	Request *auditevent.Request `json:"request,omitempty"`
	// Keys are the flag keys the Event concerns, as far as it says; for an audited change,
	// the changed keys it shows (for a key's history, that key alone).
	Keys []string `json:"keys"`
	// Before and After are the values of Keys before and after an audited change (null when
	// absent). A value the Event had no room for is a string "<N bytes>".
	Before map[string]json.RawMessage `json:"before,omitempty"`
	After  map[string]json.RawMessage `json:"after,omitempty"`
	// RecordID is the audit record of the change, which the audit sink holds in full.
	RecordID string `json:"recordID,omitempty"`
	// Truncated says the Event had no room for every value or key: see the record.
	Truncated bool   `json:"truncated,omitempty"`
	Message   string `json:"message"`
	Count     int32  `json:"count,omitempty"`

	at time.Time
}

// HistoryQuery is what a history is about: the flag Key (its FeatureFlags and the override
// objects that have or had an entry for it), or else the override objects of Subject.
type HistoryQuery struct {
	Key     string
	Subject Subject
}

// History returns, newest first, the entries of events (namespace ns's) about what q asks,
// with objs the namespace's objects. found says whether the key has an object now (always
// true for a subject): a key with neither objects nor entries is unknown.
func History(objs *Objects, events []corev1.Event, ns string, q HistoryQuery) (entries []HistoryEntry, found bool) {
	targets, found := q.targets(objs, ns)
	entries = []HistoryEntry{}
	seen := map[string]int{} // record ID: index in entries
	for i := range events {
		e := &events[i]
		ref := e.InvolvedObject
		if !strings.HasPrefix(ref.APIVersion, v1.GroupVersion.Group+"/") {
			continue
		}
		if auditevent.IsChangeReason(e.Reason) {
			if n, err := auditevent.Parse(e.Message); err == nil {
				keys, ok := q.changeKeys(n, targets[ref.Kind+"/"+ref.Name] != nil)
				if !ok {
					continue
				}
				// A leader that took over may have recorded a record's Event again: the
				// first one stands.
				entry := changeEntry(e, n, keys)
				if i, dup := seen[n.RecordID]; !dup {
					seen[n.RecordID] = len(entries)
					entries = append(entries, entry)
				} else if entry.at.Before(entries[i].at) {
					entries[i] = entry
				}
				continue
			}
		}
		keys, ok := targets[ref.Kind+"/"+ref.Name]
		if !ok {
			continue
		}
		if m := notServed.FindStringSubmatch(e.Message); m != nil && q.Key != "" && m[1] != q.Key {
			continue // about another key of the same override
		}
		entries = append(entries, historyEntry(e, keys, q.Key))
	}
	slices.SortStableFunc(entries, func(a, b HistoryEntry) int { return b.at.Compare(a.at) })
	return entries, found
}

// changeKeys returns the keys of an audited change to show, and whether the change is
// about what was asked: for a key, the flag's own changes and the overrides' changes of
// that key, or any change of an override that holds it (targeted); for a subject, its
// overrides' changes. The objects may be deleted already: the note names the subject.
func (q HistoryQuery) changeKeys(n auditevent.Note, targeted bool) ([]string, bool) {
	switch {
	case q.Key != "" && n.SubjectKind == auditevent.SubjectFlag:
		return n.Keys, n.Subject == q.Key
	case q.Key != "" && slices.Contains(n.Keys, q.Key):
		return []string{q.Key}, true
	case q.Key != "":
		return n.Keys, targeted
	case q.Subject.Kind == evaluator.SubjectUser:
		return n.Keys, n.SubjectKind == auditevent.SubjectUser && n.Subject == q.Subject.ID
	default:
		return n.Keys, n.SubjectKind == auditevent.SubjectDevice && n.Subject == q.Subject.ID
	}
}

// changeEntry reads the Event of an audited change, showing the given keys.
func changeEntry(e *corev1.Event, n auditevent.Note, keys []string) HistoryEntry {
	actor := n.Actor.Username
	switch {
	case n.Coalesced():
		actor += " (coalesced: " + strings.Join(n.Writers, ",")
		if n.MoreWriters > 0 {
			actor += fmt.Sprintf(" +%d", n.MoreWriters)
		}
		actor += ")"
	case !n.Actor.Verified && n.Actor.Claimed != "":
		actor += " (unverified, claimed " + n.Actor.Claimed + ")"
	case !n.Actor.Verified:
		actor += " (unverified)"
	}
	before, after := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for _, k := range keys {
		before[k], after[k] = n.Before[k], n.After[k]
	}
	var msg []string
	if r := n.Request; r != nil {
		msg = append(msg, RequestMessage(r))
	}
	if n.Truncated {
		m := "the Event has no room for every value"
		if n.MoreKeys > 0 {
			m = fmt.Sprintf("the Event has no room for every value and %d more keys", n.MoreKeys)
		}
		msg = append(msg, m+"; the audit sink has record "+n.RecordID)
	}
	at := eventTime(e)
	return HistoryEntry{
		Time: at.UTC().Format(time.RFC3339), Type: e.Type, Reason: e.Reason, Action: e.Action,
		Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, Actor: actor, Verified: &n.Actor.Verified,
		Keys: slices.Clip(append([]string{}, keys...)), Before: before, After: after, RecordID: n.RecordID,
		Request: n.Request, Truncated: n.Truncated, Message: strings.Join(msg, "; "), at: at,
	}
}

// RequestMessage describes the console's request of a change: "via ROUTE from IP using
// AGENT", each part only when known.
func RequestMessage(r *auditevent.Request) string {
	var parts []string
	for _, p := range [][2]string{{"via", r.Route}, {"from", r.SourceIP}, {"using", r.UserAgent}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	return strings.Join(parts, " ")
}

// targets maps KIND/NAME of the objects asked for to the flag keys each holds: for a key,
// its FeatureFlags and the overrides with an entry for it; for a subject, its override
// objects, and the name set gives its object, which may be deleted already. found says
// whether a key has any object.
func (q HistoryQuery) targets(objs *Objects, ns string) (map[string][]string, bool) {
	out := map[string][]string{}
	if q.Key != "" {
		found := false
		for i := range objs.Flags {
			if f := &objs.Flags[i]; f.Namespace == ns && (f.Spec.Key == q.Key || f.Spec.Key == "" && f.Name == q.Key) {
				out["FeatureFlag/"+f.Name] = []string{q.Key}
				found = true
			}
		}
		for _, kind := range []evaluator.SubjectKind{evaluator.SubjectUser, evaluator.SubjectDevice} {
			for _, ov := range OverridesIn(objs, kind, ns) {
				if ov.Entry(q.Key) >= 0 {
					out[Subject{Kind: kind}.KindName()+"/"+ov.Obj.GetName()] = []string{q.Key}
					found = true
				}
			}
		}
		return out, found
	}
	s := q.Subject
	out[s.KindName()+"/"+SubjectObjectName(s.Kind, s.ID)] = nil
	for _, ov := range s.OverridesOf(objs, ns) {
		var keys []string
		for _, e := range ov.Spec.Flags {
			keys = append(keys, e.Key)
		}
		out[s.KindName()+"/"+ov.Obj.GetName()] = keys
	}
	return out, true
}

// notServed matches the message of UnknownFlag and InvalidValue: "flag KEY is not served: ...".
var notServed = regexp.MustCompile(`^flag (\S+) is not served`)

// fieldManagerHint matches the hint of UnverifiedChange: `field manager "NAME" as a hint`.
var fieldManagerHint = regexp.MustCompile(`field manager "([^"]*)" as a hint`)

// historyEntry reads an Event: its time (the last time it was seen), the actor and the keys
// it concerns, as far as its message says.
func historyEntry(e *corev1.Event, objKeys []string, key string) HistoryEntry {
	actor := e.ReportingController
	if actor == "" {
		actor = e.Source.Component
	}
	if m := fieldManagerHint.FindStringSubmatch(e.Message); m != nil {
		actor = m[1] + " (unverified)"
	}
	if actor == "" {
		actor = "-"
	}
	keys := objKeys
	if key != "" {
		keys = []string{key}
	}
	if m := notServed.FindStringSubmatch(e.Message); m != nil {
		keys = []string{m[1]}
	}
	count := e.Count
	if e.Series != nil {
		count = e.Series.Count
	}
	at := eventTime(e)
	return HistoryEntry{
		Time: at.UTC().Format(time.RFC3339), Type: e.Type, Reason: e.Reason,
		Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, Actor: actor,
		Keys: slices.Clip(append([]string{}, keys...)), Message: OneLine(e.Message), Count: count, at: at,
	}
}

// eventTime is when an Event was last seen.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

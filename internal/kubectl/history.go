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

package kubectl

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/auditevent"
	"github.com/flagops/flagops/internal/flagadmin"
)

const historyExample = `
# What the manager recorded about flag beta.dashboard and the overrides of it, newest first
%[1]s history beta.dashboard -n shop

# What it recorded about user alice's overrides
%[1]s history --user alice -n shop -o yaml`

// EventLister reads the Kubernetes Events of a namespace.
type EventLister interface {
	Events(ctx context.Context, ns string) ([]corev1.Event, error)
}

// newClientEvents returns the EventLister of the connection flags' cluster.
func newClientEvents(getter genericclioptions.RESTClientGetter) (EventLister, error) {
	l, err := newClientLister(getter)
	if err != nil {
		return nil, err
	}
	return l.(*clientLister), nil
}

// Events lists the core/v1 view of the namespace's Events, which the built-in view role may
// read (the manager records them through events.k8s.io/v1; both are one resource).
func (l *clientLister) Events(ctx context.Context, ns string) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := l.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
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
	// the changed keys it shows (for history KEY, that key alone).
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

// historyOptions are the options of the history command.
type historyOptions struct {
	*globals
	user, device string
	output       string

	namespace, key string
}

func newHistoryCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &historyOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "history (KEY | --user USER | --device DEVICE)",
		Short: "Show the recent changes and Events the manager recorded about a flag or a subject's overrides",
		Long: `Show, newest first, the Kubernetes Events that the flagops manager recorded
about a flag (the FeatureFlags with the key, and the override objects that
have or had an entry for it) or about a user's or device's override
objects: every audited create, update and delete, with who made it
(verified by the webhook's stamp, or only a hint), the changed keys and
their values before and after; and a schedule step taking effect, an
override expiring, a value or a flag key that is not served, a conflict, a
change whose actor could not be verified.

The API server keeps Events for a limited time (one hour by default), and
an Event has room for 1 KiB: a large value is shown as "<N bytes>", and
the whole change is in the manager's audit trail under the record ID shown
with -o json (docs/audit.md).`,
		Example: ex(historyExample),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.namespace, err = o.globals.namespace(); err != nil {
				return err
			}
			if len(args) == 1 {
				o.key = args[0]
			}
			if n := btoi(o.key != "") + btoi(o.user != "") + btoi(o.device != ""); n != 1 {
				return fmt.Errorf("give one of KEY, --user and --device")
			}
			if err := validateOutput(o.output); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "The user whose override objects to show.")
	f.StringVar(&o.device, "device", "", "The device whose override objects to show.")
	f.StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Run lists the objects and the Events, and keeps those about the objects asked for.
func (o *historyOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	targets, found := o.targets(l.Objs)
	el, err := o.newEvents(o.configFlags)
	if err != nil {
		return err
	}
	events, err := el.Events(cmd.Context(), o.namespace)
	if err != nil {
		return err
	}
	entries := []HistoryEntry{}
	seen := map[string]int{} // record ID: index in entries
	for i := range events {
		e := &events[i]
		ref := e.InvolvedObject
		if !strings.HasPrefix(ref.APIVersion, v1.GroupVersion.Group+"/") {
			continue
		}
		if auditevent.IsChangeReason(e.Reason) {
			if n, err := auditevent.Parse(e.Message); err == nil {
				keys, ok := o.changeKeys(n, targets[ref.Kind+"/"+ref.Name] != nil)
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
		if m := notServed.FindStringSubmatch(e.Message); m != nil && o.key != "" && m[1] != o.key {
			continue // about another key of the same override
		}
		entries = append(entries, historyEntry(e, keys, o.key))
	}
	if !found && len(entries) == 0 {
		return flagNotFound(o.key, o.namespace)
	}
	slices.SortStableFunc(entries, func(a, b HistoryEntry) int { return b.at.Compare(a.at) })
	if o.output != "" {
		return printStructured(o.Out, o.output, entries)
	}
	if len(entries) == 0 {
		return noneFound(o.ErrOut, "events", o.namespace)
	}
	tw := printers.GetNewTabWriter(o.Out)
	writeRow(tw, []string{"TIME", "ACTOR", "ACTION", "OBJECT", "KEYS", "BEFORE", "AFTER", "MESSAGE"})
	for _, e := range entries {
		writeRow(tw, []string{e.Time, e.Actor, cmp.Or(e.Action, e.Reason), e.Object, orDash(strings.Join(e.Keys, ",")),
			valuesCell(e.Keys, e.Before), valuesCell(e.Keys, e.After), orDash(e.Message)})
	}
	return tw.Flush()
}

// changeKeys returns the keys of an audited change to show, and whether the change is
// about what was asked: for a key, the flag's own changes and the overrides' changes of
// that key, or any change of an override that holds it (targeted); for a subject, its
// overrides' changes. The objects may be deleted already: the note names the subject.
func (o *historyOptions) changeKeys(n auditevent.Note, targeted bool) ([]string, bool) {
	switch {
	case o.key != "" && n.SubjectKind == auditevent.SubjectFlag:
		return n.Keys, n.Subject == o.key
	case o.key != "" && slices.Contains(n.Keys, o.key):
		return []string{o.key}, true
	case o.key != "":
		return n.Keys, targeted
	case o.user != "":
		return n.Keys, n.SubjectKind == auditevent.SubjectUser && n.Subject == o.user
	default:
		return n.Keys, n.SubjectKind == auditevent.SubjectDevice && n.Subject == o.device
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
		msg = append(msg, requestMessage(r))
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

// requestMessage describes the console's request of a change: "via ROUTE from IP using
// AGENT", each part only when known.
func requestMessage(r *auditevent.Request) string {
	var parts []string
	for _, p := range [][2]string{{"via", r.Route}, {"from", r.SourceIP}, {"using", r.UserAgent}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	return strings.Join(parts, " ")
}

// maxValueCell is the widest a BEFORE or AFTER cell gets in the table; -o json has the values
// in full.
const maxValueCell = 60

// valuesCell shows the values of an audited change in the table: the value of its only key,
// or an object of the keys' values that are not null; "-" when there is nothing.
func valuesCell(keys []string, values map[string]json.RawMessage) string {
	if values == nil {
		return "-"
	}
	var s string
	if len(keys) == 1 {
		s = string(values[keys[0]])
	} else {
		present := map[string]json.RawMessage{}
		for k, v := range values {
			if string(v) != "null" {
				present[k] = v
			}
		}
		b, err := json.Marshal(present)
		if err != nil {
			return "?"
		}
		s = string(b)
	}
	if s == "null" || s == "" || s == "{}" {
		return "-"
	}
	if len(s) > maxValueCell {
		cut := maxValueCell - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// targets maps KIND/NAME of the objects asked for to the flag keys each holds: for a key,
// its FeatureFlags and the overrides with an entry for it; for a subject, its override
// objects, and the name the plugin gives its object, which may be deleted already. found
// says whether a key has any object.
func (o *historyOptions) targets(objs *Objects) (map[string][]string, bool) {
	out := map[string][]string{}
	keysOf := func(ov override) []string {
		var ks []string
		for _, e := range ov.Spec.Flags {
			ks = append(ks, e.Key)
		}
		return ks
	}
	if o.key != "" {
		found := false
		for i := range objs.Flags {
			if f := &objs.Flags[i]; f.Namespace == o.namespace && (f.Spec.Key == o.key || f.Spec.Key == "" && f.Name == o.key) {
				out["FeatureFlag/"+f.Name] = []string{o.key}
				found = true
			}
		}
		for _, s := range []evaluator.SubjectKind{evaluator.SubjectUser, evaluator.SubjectDevice} {
			for _, ov := range flagadmin.OverridesIn(objs, s, o.namespace) {
				if ov.Entry(o.key) >= 0 {
					out[subject{Kind: s}.KindName()+"/"+ov.Obj.GetName()] = []string{o.key}
					found = true
				}
			}
		}
		return out, found
	}
	s := subject{Kind: evaluator.SubjectUser, ID: o.user}
	if o.device != "" {
		s = subject{Kind: evaluator.SubjectDevice, ID: o.device}
	}
	out[s.KindName()+"/"+subjectObjectName(s.Kind, s.ID)] = nil
	for _, ov := range s.OverridesOf(objs, o.namespace) {
		out[s.KindName()+"/"+ov.Obj.GetName()] = keysOf(ov)
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
		Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, Actor: orDash(actor),
		Keys: slices.Clip(append([]string{}, keys...)), Message: oneLine(e.Message), Count: count, at: at,
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

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

package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Action says what happened to the audited object.
type Action string

// The audited actions. The part before the dot names the object kind (see Action.Kind).
const (
	ActionFlagCreated         Action = "flag.created"
	ActionFlagUpdated         Action = "flag.updated"
	ActionFlagDeleted         Action = "flag.deleted"
	ActionFlagScheduleApplied Action = "flag.schedule_applied"

	ActionUserOverrideCreated Action = "user_override.created"
	ActionUserOverrideUpdated Action = "user_override.updated"
	ActionUserOverrideDeleted Action = "user_override.deleted"
	ActionUserOverrideExpired Action = "user_override.expired"

	ActionDeviceOverrideCreated Action = "device_override.created"
	ActionDeviceOverrideUpdated Action = "device_override.updated"
	ActionDeviceOverrideDeleted Action = "device_override.deleted"
	ActionDeviceOverrideExpired Action = "device_override.expired"
)

// The object kinds that audit records describe (ObjectRef.Kind).
const (
	KindFeatureFlag        = "FeatureFlag"
	KindUserFlagOverride   = "UserFlagOverride"
	KindDeviceFlagOverride = "DeviceFlagOverride"
)

// actionKinds maps every known action to the kind of object it applies to.
var actionKinds = map[Action]string{
	ActionFlagCreated:           KindFeatureFlag,
	ActionFlagUpdated:           KindFeatureFlag,
	ActionFlagDeleted:           KindFeatureFlag,
	ActionFlagScheduleApplied:   KindFeatureFlag,
	ActionUserOverrideCreated:   KindUserFlagOverride,
	ActionUserOverrideUpdated:   KindUserFlagOverride,
	ActionUserOverrideDeleted:   KindUserFlagOverride,
	ActionUserOverrideExpired:   KindUserFlagOverride,
	ActionDeviceOverrideCreated: KindDeviceFlagOverride,
	ActionDeviceOverrideUpdated: KindDeviceFlagOverride,
	ActionDeviceOverrideDeleted: KindDeviceFlagOverride,
	ActionDeviceOverrideExpired: KindDeviceFlagOverride,
}

// Actions returns every known action, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(actionKinds))
	for a := range actionKinds {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Valid reports whether a is one of the known actions.
func (a Action) Valid() bool {
	_, ok := actionKinds[a]
	return ok
}

// Kind returns the object kind the action applies to (KindFeatureFlag, KindUserFlagOverride
// or KindDeviceFlagOverride), or "" for an unknown action.
func (a Action) Kind() string { return actionKinds[a] }

// Actor is who made the change. Automatic changes (expiry cleanup, schedule steps) are made
// by the manager's own identity, e.g. its service account.
type Actor struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
	// Verified is true when the actor is known for certain: the admission webhook's signed
	// stamp verified against the recorded object version, or the change was made by the
	// manager itself. When false, Username is only a hint (the field manager of the last
	// write) and Claimed holds the name the object's annotation claimed, if any.
	Verified bool `json:"verified"`
	// Claimed is the unverified name from the object's changed-by or deleted-by annotation.
	// It is set only when Verified is false.
	Claimed string `json:"claimed,omitempty"`
}

// ObjectRef identifies the changed object and the version of it that the record describes.
type ObjectRef struct {
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	Generation      int64  `json:"generation"`
	ResourceVersion string `json:"resourceVersion"`
	// Key is a FeatureFlag's flag key: spec.key, or the name when spec.key is omitted.
	// Override records have none; their values are keyed by flag key.
	Key string `json:"key,omitempty"`
}

// Subject is the user or device an override applies to. Exactly one field is set. Flag
// records have no subject.
type Subject struct {
	UserID   string `json:"userId,omitempty"`
	DeviceID string `json:"deviceId,omitempty"`
}

// Request describes the HTTP request through which flagops' console made a change (seed
// 000: route, client IP and user agent), as the admission webhook read it from the
// user-info extras the console sets (see ExtraRoute) and signed it. Each field is empty
// when unknown. Writes made with kubectl, the kubectl plugin, a GitOps tool or any other
// Kubernetes client reach the API server with the user's own credentials and carry no
// request information.
type Request struct {
	// Route is the console's route that made the change, e.g. "PUT /flags/{name}".
	Route string `json:"route,omitempty"`
	// SourceIP is the IP address of the end user's browser, as the console saw it.
	SourceIP string `json:"sourceIP,omitempty"`
	// UserAgent is the User-Agent of the end user's client.
	UserAgent string `json:"userAgent,omitempty"`
}

// orNil returns r, or nil if r holds nothing, so that an empty request is omitted.
func (r *Request) orNil() *Request {
	if r == nil || *r == (Request{}) {
		return nil
	}
	c := *r
	return &c
}

// Coalesced marks a record that stands for several committed versions of an object that no
// leader saw one by one: versions written while no manager was running, or while its watch
// had to start again. Before and After are the net change over the whole range, and the
// record's Actor is Unknown: nobody is named as if they made all of it.
type Coalesced struct {
	// FromGeneration and ToGeneration are the first and the last metadata.generation the
	// record covers. ToGeneration equals Object.Generation.
	FromGeneration int64 `json:"fromGeneration"`
	ToGeneration   int64 `json:"toGeneration"`
	// Actors are the writers known for the range: the actor of the last version (verified
	// when its webhook stamp verifies), then, unverified, the other field managers that wrote
	// the spec since the last record.
	Actors []Actor `json:"actors"`
}

// Unknown is the actor of a coalesced record; Coalesced.Actors lists who is known to have
// written in its range.
var Unknown = Actor{Username: "unknown"}

// Record is one audit record: one change to one flag or override. It is written as one
// JSON line; see the package documentation for the format.
type Record struct {
	// ID identifies the change, deterministically (see NewID), so that consumers can
	// drop duplicates.
	ID string
	// Time is when the change took effect. It is written in UTC, RFC 3339 with nanoseconds.
	Time   time.Time
	Action Action
	Actor  Actor
	Object ObjectRef
	// Subject is set for override actions and nil for flag actions.
	Subject *Subject
	// Request is set for changes made through flagops' console, and nil otherwise (see
	// Request). An empty Request is written as none.
	Request *Request
	// Coalesced is set when the record covers several versions; see Coalesced.
	Coalesced *Coalesced
	// ChangedKeys is the sorted list of the keys whose value differs between Before and After.
	ChangedKeys []string
	// Before and After map each changed key to its JSON value before and after the change.
	// A key that did not exist on one side is JSON null on that side.
	Before map[string]json.RawMessage
	After  map[string]json.RawMessage
}

// TimeLayout is the layout of the "time" field: RFC 3339 in UTC with exactly nine
// fractional digits, so that the field has a fixed width and sorts as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// ErrInvalidRecord is wrapped by the error that sinks return for a record that fails
// Record.Validate. Retrying such a record cannot succeed.
var ErrInvalidRecord = errors.New("invalid audit record")

// recordJSON is the wire form of a Record.
type recordJSON struct {
	ID          string                     `json:"id"`
	Time        string                     `json:"time"`
	Action      Action                     `json:"action"`
	Actor       Actor                      `json:"actor"`
	Object      ObjectRef                  `json:"object"`
	Subject     *Subject                   `json:"subject,omitempty"`
	Request     *Request                   `json:"request,omitempty"`
	Coalesced   *Coalesced                 `json:"coalesced,omitempty"`
	ChangedKeys []string                   `json:"changedKeys"`
	Before      map[string]json.RawMessage `json:"before"`
	After       map[string]json.RawMessage `json:"after"`
}

// MarshalJSON writes the record in its wire form: compact, with map keys sorted, empty
// lists and maps as [] and {}, and the time in TimeLayout. HTML characters are not escaped.
func (r Record) MarshalJSON() ([]byte, error) {
	w := recordJSON{
		ID:          r.ID,
		Time:        r.Time.UTC().Format(TimeLayout),
		Action:      r.Action,
		Actor:       r.Actor,
		Object:      r.Object,
		Subject:     r.Subject,
		Request:     r.Request.orNil(),
		Coalesced:   r.Coalesced,
		ChangedKeys: r.ChangedKeys,
		Before:      r.Before,
		After:       r.After,
	}
	if w.Actor.Groups == nil {
		w.Actor.Groups = []string{}
	}
	if w.ChangedKeys == nil {
		w.ChangedKeys = []string{}
	}
	if w.Before == nil {
		w.Before = map[string]json.RawMessage{}
	}
	if w.After == nil {
		w.After = map[string]json.RawMessage{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("encode audit record %q: %w", r.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads a record in its wire form. The time may have any number of
// fractional digits; it is returned in UTC.
func (r *Record) UnmarshalJSON(data []byte) error {
	var w recordJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode audit record: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("decode audit record %q: time: %w", w.ID, err)
	}
	*r = Record{
		ID:          w.ID,
		Time:        t.UTC(),
		Action:      w.Action,
		Actor:       w.Actor,
		Object:      w.Object,
		Subject:     w.Subject,
		Request:     w.Request.orNil(),
		Coalesced:   w.Coalesced,
		ChangedKeys: w.ChangedKeys,
		Before:      w.Before,
		After:       w.After,
	}
	return nil
}

// Validate checks that the record is complete and consistent: a known action, an ID, a
// time, an actor, an object of the action's kind with a namespace, name and UID, a subject
// exactly when the action is an override action, sorted and unique changed keys that are
// present in both Before and After, and valid JSON values. The error wraps ErrInvalidRecord.
func (r Record) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if r.ID == "" {
		add("id is empty")
	}
	if r.Time.IsZero() {
		add("time is zero")
	}
	kind := r.Action.Kind()
	if kind == "" {
		add("unknown action %q", r.Action)
	}
	if r.Actor.Username == "" {
		add("actor.username is empty")
	}
	if kind != "" && r.Object.Kind != kind {
		add("object.kind is %q, action %q needs %q", r.Object.Kind, r.Action, kind)
	}
	if r.Object.Namespace == "" {
		add("object.namespace is empty")
	}
	if r.Object.Name == "" {
		add("object.name is empty")
	}
	if r.Object.UID == "" {
		add("object.uid is empty")
	}
	if r.Object.Generation < 0 {
		add("object.generation is negative")
	}
	switch kind {
	case KindFeatureFlag:
		if r.Subject != nil {
			add("subject must be empty for %q", r.Action)
		}
	case KindUserFlagOverride:
		if r.Subject == nil || r.Subject.UserID == "" || r.Subject.DeviceID != "" {
			add("subject must have userId and no deviceId for %q", r.Action)
		}
	case KindDeviceFlagOverride:
		if r.Subject == nil || r.Subject.DeviceID == "" || r.Subject.UserID != "" {
			add("subject must have deviceId and no userId for %q", r.Action)
		}
	}
	if c := r.Coalesced; c != nil {
		if c.FromGeneration < 1 || c.FromGeneration > c.ToGeneration {
			add("coalesced.fromGeneration %d must be between 1 and coalesced.toGeneration %d", c.FromGeneration, c.ToGeneration)
		}
		if c.ToGeneration != r.Object.Generation {
			add("coalesced.toGeneration %d must equal object.generation %d", c.ToGeneration, r.Object.Generation)
		}
		for i, a := range c.Actors {
			if a.Username == "" {
				add("coalesced.actors[%d].username is empty", i)
			}
		}
	}
	if r.Request != nil && r.Request.SourceIP != "" {
		if _, err := netip.ParseAddr(r.Request.SourceIP); err != nil {
			add("request.sourceIP %q is not an IP address", r.Request.SourceIP)
		}
	}
	for i, k := range r.ChangedKeys {
		if i > 0 && r.ChangedKeys[i-1] >= k {
			add("changedKeys are not sorted and unique at %q", k)
			break
		}
	}
	for _, k := range r.ChangedKeys {
		_, inBefore := r.Before[k]
		_, inAfter := r.After[k]
		if !inBefore || !inAfter {
			add("changed key %q must be in both before and after (use null for a missing side)", k)
		}
	}
	for _, side := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"before", r.Before}, {"after", r.After}} {
		for _, k := range sortedKeys(side.m) {
			if v := side.m[k]; v != nil && !json.Valid(v) {
				add("%s[%q] is not valid JSON", side.name, k)
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidRecord, r.ID, strings.Join(problems, "; "))
	}
	return nil
}

// encode validates the record and returns its compact JSON form (no trailing newline).
func (r Record) encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r.MarshalJSON()
}

// clone returns a deep copy of r, so that later changes by the caller do not reach it.
func (r Record) clone() Record {
	c := r
	c.Actor.Groups = slices.Clone(r.Actor.Groups)
	if r.Subject != nil {
		s := *r.Subject
		c.Subject = &s
	}
	c.Request = r.Request.orNil()
	if r.Coalesced != nil {
		co := *r.Coalesced
		co.Actors = slices.Clone(r.Coalesced.Actors)
		for i := range co.Actors {
			co.Actors[i].Groups = slices.Clone(co.Actors[i].Groups)
		}
		c.Coalesced = &co
	}
	c.ChangedKeys = slices.Clone(r.ChangedKeys)
	c.Before = cloneValues(r.Before)
	c.After = cloneValues(r.After)
	return c
}

func cloneValues(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = bytes.Clone(v)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// idVersion is mixed into every ID so that a future change of the scheme cannot collide
// with IDs made by this one.
const idVersion = "flagops.dev/audit-id/v1"

// NewID returns the deterministic ID of a change: 32 lower-case hex digits, the first 128
// bits of SHA-256 over a length-prefixed encoding of the inputs. The same inputs always
// give the same ID, so a record written twice (a controller retry, a restart) can be
// recognised as one. discriminator tells apart changes that share the object UID,
// generation and action, e.g. two schedule steps applied in one generation (use the
// step's time); it is usually empty.
func NewID(uid string, generation int64, action Action, discriminator string) string {
	h := sha256.New()
	var n [8]byte
	writeField := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	writeField(idVersion)
	writeField(uid)
	binary.BigEndian.PutUint64(n[:], uint64(generation))
	h.Write(n[:])
	writeField(string(action))
	writeField(discriminator)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Change describes one change for NewRecord.
type Change struct {
	Action  Action
	Actor   Actor
	Object  ObjectRef
	Subject *Subject
	// Request is set for changes made through flagops' console; see Request.
	Request *Request
	// Discriminator is passed to NewID; see there.
	Discriminator string
	// Coalesced is set when the change covers several versions. NewRecord then makes the
	// actor Unknown and tells the ID apart from that of the last version alone.
	Coalesced *Coalesced
	// Before and After are the full values on each side, keyed by flag key (overrides) or
	// spec field name (flags). Keys missing on one side count as null. NewRecord keeps only
	// the keys that differ.
	Before, After map[string]json.RawMessage
}

// NewRecord builds the record for c at time at: the ID from NewID, the time in UTC, and
// ChangedKeys, Before and After from Diff. Object.Kind defaults to the action's kind.
func NewRecord(at time.Time, c Change) Record {
	changed, before, after := Diff(c.Before, c.After)
	obj := c.Object
	if obj.Kind == "" {
		obj.Kind = c.Action.Kind()
	}
	discriminator := c.Discriminator
	if c.Coalesced != nil {
		c.Actor = Unknown
		discriminator = fmt.Sprintf("coalesced-from-%d/%s", c.Coalesced.FromGeneration, discriminator)
	}
	r := Record{
		ID:          NewID(obj.UID, obj.Generation, c.Action, discriminator),
		Time:        at.UTC(),
		Action:      c.Action,
		Actor:       c.Actor,
		Object:      obj,
		Subject:     c.Subject,
		Request:     c.Request,
		Coalesced:   c.Coalesced,
		ChangedKeys: changed,
		Before:      before,
		After:       after,
	}
	return r.clone()
}

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
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenRecord is the record of testdata/record.golden.json: a user override update that
// changes one entry, adds one and removes one.
func goldenRecord() Record {
	at := time.Date(2026, 3, 1, 13, 0, 0, 120000000, time.FixedZone("CET", 3600))
	return NewRecord(at, Change{
		Action: ActionUserOverrideUpdated,
		Actor:  Actor{Username: "alice@example.com", Groups: []string{"platform", "system:authenticated"}, Verified: true},
		Object: ObjectRef{
			Namespace:       "billing",
			Name:            "pilot-user-42",
			UID:             "6d1c7f1e-3b7a-4c52-9a51-0c1f5b1e2a10",
			Generation:      3,
			ResourceVersion: "48213",
		},
		Subject: &Subject{UserID: "user-42"},
		Before: map[string]json.RawMessage{
			"beta.new-dashboard":       json.RawMessage(`{"enabled": false}`),
			"billing.free-tier-limits": json.RawMessage(`{"value": {"maxStudents": 10, "historyLimit": 20}}`),
			"checkout.v2":              json.RawMessage(`{"enabled":true}`),
		},
		After: map[string]json.RawMessage{
			"beta.new-dashboard":       json.RawMessage(`{"enabled":true}`),
			"billing.free-tier-limits": json.RawMessage(`{"value":{"historyLimit":20,"maxStudents":10.0}}`),
			"search.<fast>&new":        json.RawMessage(`{"value": "a<b"}`),
		},
	})
}

func TestRecordGoldenJSON(t *testing.T) {
	got, err := goldenRecord().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "record.golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Fatalf("record JSON differs from %s:\n got: %s\nwant: %s", path, got, want)
	}
	if bytes.ContainsRune(got, '\n') {
		t.Fatal("record JSON spans several lines")
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	in := goldenRecord()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Record
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Time.Equal(in.Time) || out.Time.Location() != time.UTC {
		t.Errorf("time %v (%v), want %v in UTC", out.Time, out.Time.Location(), in.Time)
	}
	out.Time, in.Time = time.Time{}, time.Time{}
	// Values are compacted on the way out; compare them as JSON.
	for _, side := range []struct{ got, want map[string]json.RawMessage }{{out.Before, in.Before}, {out.After, in.After}} {
		if changed, _, _ := Diff(side.got, side.want); len(changed) > 0 {
			t.Errorf("values changed in the round trip: %v", changed)
		}
	}
	out.Before, out.After, in.Before, in.After = nil, nil, nil, nil
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestRecordJSONEmptyCollections(t *testing.T) {
	r := testRecord(1)
	r.Actor.Groups, r.ChangedKeys, r.Before, r.After = nil, nil, nil, nil
	data, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"groups":[]`, `"changedKeys":[]`, `"before":{}`, `"after":{}`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	if bytes.Contains(data, []byte(`"subject"`)) {
		t.Errorf("flag record has a subject: %s", data)
	}
}

func TestRecordTimeFormat(t *testing.T) {
	r := testRecord(0)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `"time":"2026-01-02T03:04:05.000000000Z"`},
		{time.Date(2026, 1, 2, 3, 4, 5, 7, time.FixedZone("X", -7200)), `"time":"2026-01-02T05:04:05.000000007Z"`},
	} {
		r.Time = tc.in
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(tc.want)) {
			t.Errorf("%v: %s lacks %s", tc.in, data, tc.want)
		}
	}
}

func TestRecordUnmarshalErrors(t *testing.T) {
	for _, in := range []string{`[]`, `{"id":"x","time":"yesterday"}`, `{"id":1}`} {
		var r Record
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}

func TestRecordMarshalInvalidValue(t *testing.T) {
	r := testRecord(0)
	r.After = map[string]json.RawMessage{"enabled": json.RawMessage(`{not json`)}
	if _, err := r.MarshalJSON(); err == nil {
		t.Fatal("MarshalJSON accepted an invalid value")
	}
}

func TestNewIDDeterministicAndDistinct(t *testing.T) {
	base := NewID("uid-1", 3, ActionFlagUpdated, "")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(base) {
		t.Fatalf("ID %q is not 32 lower-case hex digits", base)
	}
	if again := NewID("uid-1", 3, ActionFlagUpdated, ""); again != base {
		t.Fatalf("same inputs gave %q and %q", base, again)
	}
	variants := map[string]string{
		"uid":                  NewID("uid-2", 3, ActionFlagUpdated, ""),
		"generation":           NewID("uid-1", 4, ActionFlagUpdated, ""),
		"negative generation":  NewID("uid-1", -3, ActionFlagUpdated, ""),
		"action":               NewID("uid-1", 3, ActionFlagDeleted, ""),
		"discriminator":        NewID("uid-1", 3, ActionFlagUpdated, "2026-03-01T00:00:00Z"),
		"field boundary left":  NewID("uid-1a", 3, ActionFlagUpdated, ""),
		"field boundary right": NewID("uid-1", 3, ActionFlagUpdated, "a"),
	}
	seen := map[string]string{base: "base"}
	for name, id := range variants {
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s have the same ID %s", name, prev, id)
		}
		seen[id] = name
	}
	// The length prefix keeps a boundary shift between action and discriminator apart.
	if NewID("u", 1, "flag.update", "d") == NewID("u", 1, "flag.updat", "ed") {
		t.Error("field boundaries are not encoded")
	}
}

func TestActions(t *testing.T) {
	all := Actions()
	if len(all) != 12 {
		t.Fatalf("%d actions, want 12", len(all))
	}
	kinds := map[string]int{}
	for _, a := range all {
		if !a.Valid() {
			t.Errorf("%q is not valid", a)
		}
		prefix, _, _ := strings.Cut(string(a), ".")
		want := map[string]string{"flag": KindFeatureFlag, "user_override": KindUserFlagOverride, "device_override": KindDeviceFlagOverride}[prefix]
		if a.Kind() != want {
			t.Errorf("%q.Kind() = %q, want %q", a, a.Kind(), want)
		}
		kinds[a.Kind()]++
	}
	if kinds[KindFeatureFlag] != 4 || kinds[KindUserFlagOverride] != 4 || kinds[KindDeviceFlagOverride] != 4 {
		t.Errorf("actions per kind: %v", kinds)
	}
	if Action("flag.renamed").Valid() || Action("flag.renamed").Kind() != "" {
		t.Error("unknown action reported valid")
	}
}

func TestNewRecord(t *testing.T) {
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.FixedZone("X", 7200))
	groups := []string{"g"}
	before := map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`2`)}
	r := NewRecord(at, Change{
		Action:        ActionDeviceOverrideExpired,
		Actor:         Actor{Username: "system:serviceaccount:flagops-system:flagops-manager", Groups: groups},
		Object:        ObjectRef{Namespace: "ns", Name: "phone-7", UID: "u7", Generation: 2},
		Subject:       &Subject{DeviceID: "dev-7"},
		Discriminator: "d",
		Before:        before,
	})
	if err := r.Validate(); err != nil {
		t.Fatalf("NewRecord made an invalid record: %v", err)
	}
	if r.ID != NewID("u7", 2, ActionDeviceOverrideExpired, "d") {
		t.Errorf("ID %q is not NewID of the change", r.ID)
	}
	if r.Object.Kind != KindDeviceFlagOverride {
		t.Errorf("kind %q, want the action's kind", r.Object.Kind)
	}
	if r.Time.Location() != time.UTC || !r.Time.Equal(at) {
		t.Errorf("time %v, want %v in UTC", r.Time, at)
	}
	if want := []string{"a", "b"}; !reflect.DeepEqual(r.ChangedKeys, want) {
		t.Errorf("changed keys %v, want %v", r.ChangedKeys, want)
	}
	if string(r.After["a"]) != "null" || string(r.Before["b"]) != "2" {
		t.Errorf("before %s, after %s", r.Before, r.After)
	}
	// The record shares no memory with the change.
	groups[0] = "changed"
	before["a"][0] = '9'
	if r.Actor.Groups[0] != "g" || string(r.Before["a"]) != "1" {
		t.Error("record shares memory with the change")
	}
}

func TestValidate(t *testing.T) {
	valid := testRecord(0)
	override := goldenRecord()
	tests := []struct {
		name   string
		mutate func(r *Record)
		base   Record
		want   string // substring of the error; empty means valid
	}{
		{name: "valid flag", base: valid},
		{name: "valid override", base: override},
		{name: "no id", base: valid, mutate: func(r *Record) { r.ID = "" }, want: "id is empty"},
		{name: "no time", base: valid, mutate: func(r *Record) { r.Time = time.Time{} }, want: "time is zero"},
		{name: "unknown action", base: valid, mutate: func(r *Record) { r.Action = "flag.renamed" }, want: `unknown action "flag.renamed"`},
		{name: "no actor", base: valid, mutate: func(r *Record) { r.Actor.Username = "" }, want: "actor.username is empty"},
		{name: "wrong kind", base: valid, mutate: func(r *Record) { r.Object.Kind = KindUserFlagOverride }, want: `needs "FeatureFlag"`},
		{name: "no namespace", base: valid, mutate: func(r *Record) { r.Object.Namespace = "" }, want: "object.namespace is empty"},
		{name: "no name", base: valid, mutate: func(r *Record) { r.Object.Name = "" }, want: "object.name is empty"},
		{name: "no uid", base: valid, mutate: func(r *Record) { r.Object.UID = "" }, want: "object.uid is empty"},
		{name: "negative generation", base: valid, mutate: func(r *Record) { r.Object.Generation = -1 }, want: "generation is negative"},
		{name: "flag with subject", base: valid, mutate: func(r *Record) { r.Subject = &Subject{UserID: "u"} }, want: "subject must be empty"},
		{name: "user override without subject", base: override, mutate: func(r *Record) { r.Subject = nil }, want: "must have userId"},
		{name: "user override with device", base: override, mutate: func(r *Record) { r.Subject = &Subject{UserID: "u", DeviceID: "d"} }, want: "must have userId and no deviceId"},
		{
			name: "device override with user", base: override,
			mutate: func(r *Record) {
				r.Action, r.Object.Kind, r.Subject = ActionDeviceOverrideCreated, KindDeviceFlagOverride, &Subject{UserID: "u"}
			},
			want: "must have deviceId",
		},
		{name: "unsorted keys", base: override, mutate: func(r *Record) { r.ChangedKeys[0], r.ChangedKeys[1] = r.ChangedKeys[1], r.ChangedKeys[0] }, want: "not sorted"},
		{name: "duplicate keys", base: override, mutate: func(r *Record) { r.ChangedKeys[1] = r.ChangedKeys[0] }, want: "not sorted and unique"},
		{name: "key missing after", base: valid, mutate: func(r *Record) { delete(r.After, "enabled") }, want: `changed key "enabled" must be in both`},
		{name: "invalid json", base: valid, mutate: func(r *Record) { r.Before["enabled"] = json.RawMessage(`tru`) }, want: `before["enabled"] is not valid JSON`},
		{name: "nil value is null", base: valid, mutate: func(r *Record) { r.Before["enabled"] = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.base.clone()
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			err := r.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the record, want error with %q", tc.want)
			}
			if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidRecord with %q", err, tc.want)
			}
		})
	}
}

func TestRecordCloneIsDeep(t *testing.T) {
	r := goldenRecord()
	c := r.clone()
	c.Actor.Groups[0] = "x"
	c.Subject.UserID = "x"
	c.ChangedKeys[0] = "x"
	c.Before["beta.new-dashboard"][2] = 'X'
	c.After["new"] = nil
	if r.Actor.Groups[0] == "x" || r.Subject.UserID == "x" || r.ChangedKeys[0] == "x" ||
		r.Before["beta.new-dashboard"][2] == 'X' || len(r.After) != 3 {
		t.Fatal("clone shares memory with the original")
	}
}

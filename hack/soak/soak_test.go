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

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/internal/audit"
)

func TestScheduleIsSeededAndSpread(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		rounds int
	}{{3 * time.Minute, 1}, {10 * time.Minute, 1}, {30 * time.Minute, 3}, {31 * time.Minute, 4}} {
		t.Run(tc.d.String(), func(t *testing.T) {
			a := schedule(7, tc.d, 30*time.Second, time.Minute, nil)
			if b := schedule(7, tc.d, 30*time.Second, time.Minute, nil); !reflect.DeepEqual(a, b) {
				t.Fatalf("the same seed gave two schedules:\n%v\n%v", a, b)
			}
			if c := schedule(8, tc.d, 30*time.Second, time.Minute, nil); reflect.DeepEqual(a, c) {
				t.Errorf("seeds 7 and 8 gave the same schedule: %v", a)
			}
			if len(a) != tc.rounds*len(faultKinds) {
				t.Fatalf("%d faults, want %d rounds of %d", len(a), tc.rounds, len(faultKinds))
			}
			count := map[string]int{}
			end := time.Duration(0)
			for i, f := range a {
				count[f.Kind]++
				if f.At < end {
					t.Errorf("fault %d (%s) starts before the one before it ends (%s)", i, f, end)
				}
				end = f.At + f.For
				if f.At < time.Duration(float64(tc.d)*scheduleStartsAt) || end > time.Duration(float64(tc.d)*scheduleEndsAt) {
					t.Errorf("fault %d (%s) is outside %s-%s of the run", i, f, time.Duration(float64(tc.d)*scheduleStartsAt), time.Duration(float64(tc.d)*scheduleEndsAt))
				}
				if (f.Kind == faultPauseReplica || f.Kind == faultAuditErrors) != (f.For > 0) {
					t.Errorf("fault %d (%s): only a pause and the error window last", i, f)
				}
			}
			for _, k := range faultKinds {
				if count[k] != tc.rounds {
					t.Errorf("%s occurs %d times, want %d", k, count[k], tc.rounds)
				}
			}
		})
	}
}

// TestScheduleSkip: -skip leaves its kinds out and the others where the seed put them;
// unknown kinds are refused with the flag named.
func TestScheduleSkip(t *testing.T) {
	all := schedule(7, 30*time.Minute, 30*time.Second, time.Minute, nil)
	skip, err := parseSkip(faultPauseReplica)
	if err != nil {
		t.Fatal(err)
	}
	got := schedule(7, 30*time.Minute, 30*time.Second, time.Minute, skip)
	var kinds, want []string
	for _, f := range got {
		kinds = append(kinds, f.Kind)
	}
	for _, f := range all {
		if f.Kind != faultPauseReplica {
			want = append(want, f.Kind)
		}
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds with -skip %s = %v, want %v", faultPauseReplica, kinds, want)
	}
	if _, err := parseSkip("kill-leader,nap"); err == nil || !strings.Contains(err.Error(), `-skip: "nap"`) {
		t.Errorf("parseSkip(nap) = %v, want an error naming -skip and the kind", err)
	}
	every, _ := parseSkip(strings.Join(faultKinds, ","))
	if got := schedule(7, 3*time.Minute, 30*time.Second, time.Minute, every); len(got) != 0 {
		t.Errorf("every kind skipped: %v, want no fault", got)
	}
}

// rec returns the JSON of a record of a flag's change to enabled, by alice (unverified).
func rec(t *testing.T, uid string, action audit.Action, gen int64, coalescedFrom int64, before, after string) []byte {
	t.Helper()
	return recBy(t, audit.Actor{Username: "alice"}, uid, action, gen, coalescedFrom, before, after)
}

// recBy is rec with another actor.
func recBy(t *testing.T, actor audit.Actor, uid string, action audit.Action, gen int64, coalescedFrom int64, before, after string) []byte {
	t.Helper()
	c := audit.Change{Action: action, Actor: actor,
		Object: audit.ObjectRef{Kind: "FeatureFlag", Namespace: "soak", Name: "f-" + uid, UID: uid, Generation: gen}}
	if before != "" {
		c.Before = map[string]json.RawMessage{"enabled": json.RawMessage(before)}
	}
	if after != "" {
		c.After = map[string]json.RawMessage{"enabled": json.RawMessage(after)}
	}
	if coalescedFrom > 0 {
		c.Coalesced = &audit.Coalesced{FromGeneration: coalescedFrom, ToGeneration: gen}
	}
	b, err := json.Marshal(audit.NewRecord(time.Unix(1, 0), c))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAccount(t *testing.T) {
	created := func(t *testing.T) []byte { return rec(t, "a", audit.ActionFlagCreated, 1, 0, "", "false") }
	alice, bob := audit.Actor{Username: "alice", Verified: true}, audit.Actor{Username: "bob", Verified: true}
	commits := []commit{
		{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 1, Action: "create", Writer: "alice"},
		{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 2, Action: "update", Writer: "alice"},
		{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 3, Action: "update", Writer: "bob"},
	}
	exists := map[string]finalObject{"a": {UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 3}}
	deleted := append(append([]commit(nil), commits...), commit{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 3, Action: "delete", Writer: "bob", Finalized: true})
	unfinalized := []commit{{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 1, Action: "create", Writer: "alice"},
		{UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 1, Action: "delete", Writer: "bob"}}
	for _, tc := range []struct {
		name                   string
		records                func(t *testing.T) [][]byte
		commits                []commit
		finals                 map[string]finalObject
		lost, dup, invalid     int
		redelivered, coalesced int
		mismatches, verified   int
		wrongActors            int
		retimed, unseen        int
	}{
		{name: "one record per generation", commits: commits, finals: exists, mismatches: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 2, 0, "false", "true"), rec(t, "a", audit.ActionFlagUpdated, 3, 0, "true", "false")}
		}},
		{name: "a coalesced range", commits: commits, finals: exists, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "a repeated delivery", commits: commits, finals: exists, redelivered: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "a generation lost", commits: commits, finals: exists, lost: 1, mismatches: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 0, "false", "true")}
		}},
		{name: "the last generations lost", commits: commits, finals: exists, lost: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t)}
		}},
		{name: "a generation recorded twice", commits: commits, finals: exists, dup: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 2, 0, "false", "true"), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "an id again with another time", commits: commits, finals: exists, retimed: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			later := bytes.Replace(created(t), []byte(`"time":"1970-01-01T00:00:01.000000000Z"`), []byte(`"time":"1970-01-01T00:00:02.000000000Z"`), 1)
			return [][]byte{created(t), later, rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "deleted before the finalizer, unseen", commits: unfinalized, unseen: 1, records: func(t *testing.T) [][]byte { return nil }},
		{name: "deleted before the finalizer, created seen", commits: unfinalized, records: func(t *testing.T) [][]byte { return [][]byte{created(t)} }},
		{name: "an id with other content", commits: commits, finals: exists, dup: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			other := bytes.Replace(created(t), []byte(`"username":"alice"`), []byte(`"username":"carol"`), 1)
			return [][]byte{created(t), other, rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "a before that breaks the chain", commits: commits, finals: exists, invalid: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "true", "false")}
		}},
		{name: "deleted, with its record", commits: deleted, coalesced: 1, mismatches: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", ""), rec(t, "a", audit.ActionFlagDeleted, 4, 0, "false", "")}
		}},
		{name: "verified actors, each the writer", commits: deleted, verified: 4, records: func(t *testing.T) [][]byte {
			return [][]byte{recBy(t, alice, "a", audit.ActionFlagCreated, 1, 0, "", "false"), recBy(t, alice, "a", audit.ActionFlagUpdated, 2, 0, "false", "true"),
				recBy(t, bob, "a", audit.ActionFlagUpdated, 3, 0, "true", "false"), recBy(t, bob, "a", audit.ActionFlagDeleted, 4, 0, "false", "")}
		}},
		{name: "a verified actor who did not write that generation", commits: commits, finals: exists, verified: 2, wrongActors: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{recBy(t, alice, "a", audit.ActionFlagCreated, 1, 0, "", "false"), recBy(t, alice, "a", audit.ActionFlagUpdated, 2, 0, "false", "true"),
				recBy(t, alice, "a", audit.ActionFlagUpdated, 3, 0, "true", "false")}
		}},
		{name: "a verified actor who did not delete", commits: deleted, coalesced: 1, verified: 1, wrongActors: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{recBy(t, alice, "a", audit.ActionFlagCreated, 1, 0, "", "false"), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", ""),
				recBy(t, alice, "a", audit.ActionFlagDeleted, 4, 0, "false", "")}
		}},
		{name: "deleted, without its record", commits: deleted, lost: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", "")}
		}},
		{name: "a deletion record of an object that exists", commits: commits, finals: exists, invalid: 1, coalesced: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{created(t), rec(t, "a", audit.ActionFlagUpdated, 3, 2, "", ""), rec(t, "a", audit.ActionFlagDeleted, 4, 0, "false", "")}
		}},
		{name: "an invalid record", commits: commits[:1], finals: map[string]finalObject{"a": {UID: "a", Kind: "FeatureFlag", Name: "f-a", Generation: 1}}, invalid: 1, records: func(t *testing.T) [][]byte {
			return [][]byte{bytes.Replace(created(t), []byte(`"name":"f-a"`), []byte(`"name":""`), 1)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := account(tc.records(t), tc.commits, tc.finals)
			got := []int{len(res.Lost), len(res.Duplicated), len(res.Invalid), res.Redelivered, res.Coalesced, res.ActorMismatches, res.Verified, len(res.WrongActors), res.Retimed, res.Unseen}
			want := []int{tc.lost, tc.dup, tc.invalid, tc.redelivered, tc.coalesced, tc.mismatches, tc.verified, tc.wrongActors, tc.retimed, tc.unseen}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("lost, duplicated, invalid, redelivered, coalesced, actor mismatches, verified, wrong actors, retimed, unseen = %v, want %v\nlost %q\nduplicated %q\ninvalid %q\nwrong actors %q",
					got, want, res.Lost, res.Duplicated, res.Invalid, res.WrongActors)
			}
			if res.failed() != (tc.lost+tc.dup+tc.invalid+tc.wrongActors > 0) {
				t.Errorf("failed() = %t", res.failed())
			}
		})
	}
}

func TestWriteSVG(t *testing.T) {
	all := []series{
		{Name: "manager-0", Points: []point{{0, 80}, {10, 95.5}, {20, 90}}},
		{Name: "etcd", Points: []point{{0, 40}, {20, 60}}},
	}
	var b bytes.Buffer
	if err := writeSVG(&b, "RSS <test>", all, []svgTick{{Pos: 10, Label: "kill"}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Well-formed XML whose root is an svg element.
	dec := xml.NewDecoder(strings.NewReader(out))
	var root string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, out)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	if n := strings.Count(out, "<polyline"); n != len(all) {
		t.Errorf("%d lines, want %d", n, len(all))
	}
	// The y axis goes to 100 (95.5 rounded up), the x axis to 20 s: manager-0's peak at
	// x = 60 + 570*10/20 = 345, y = 370 - 340*95.5/100 = 45.3.
	if !strings.Contains(out, "345,45.3") {
		t.Errorf("no point at 345,45.3:\n%s", out)
	}
	for _, want := range []string{"manager-0", "etcd", ">kill<", fmt.Sprintf(">%s<", "100")} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the plot", want)
		}
	}
}

func TestGauge(t *testing.T) {
	text := "# HELP go_goroutines x\ngo_goroutines 42\ngo_goroutines_other 1\nleader_election_master_status{name=\"flagops\"} 1\n"
	for _, tc := range []struct {
		metric string
		want   float64
		ok     bool
	}{{"go_goroutines", 42, true}, {"leader_election_master_status", 1, true}, {"go_threads", 0, false}} {
		if got, ok := gauge(text, tc.metric); got != tc.want || ok != tc.ok {
			t.Errorf("gauge(%s) = %v, %t, want %v, %t", tc.metric, got, ok, tc.want, tc.ok)
		}
	}
}

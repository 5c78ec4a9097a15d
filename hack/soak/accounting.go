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
	"fmt"
	"slices"
	"strings"

	"github.com/flagops/flagops/internal/audit"
)

// commit is a write the API server accepted: a create (generation 1), an update (the
// generation it answered with) or a delete (the object marked for deletion).
type commit struct {
	UID        string `json:"uid"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	Action     string `json:"action"` // create, update, delete
	Writer     string `json:"writer"`
	// ResourceVersion is the one the API server answered with (none for a delete).
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Finalized says, for a delete, that the object had the audit finalizer: the API
	// server then keeps it until the leader has recorded the deletion. An object deleted
	// before any leader added the finalizer may leave no record (docs/audit.md, "What it
	// cannot see").
	Finalized bool `json:"finalized,omitempty"`
}

// finalObject is an object that exists at the end of the run, as the API server lists it.
type finalObject struct {
	UID        string
	Kind, Name string
	Generation int64
}

// auditResult is what the accounting found. Lost, Duplicated and Invalid fail the run.
type auditResult struct {
	// Received counts every record delivered; Distinct those of distinct IDs; Redelivered
	// the deliveries of an ID already received with the same content (the HTTP sink is at
	// least once by design: docs/audit.md).
	Received    int `json:"received"`
	Distinct    int `json:"distinct"`
	Redelivered int `json:"redelivered"`
	// Retimed counts the deliveries of an ID already received whose content differs only
	// in time: a record derived again by a leader that was paused and resumed before it
	// noticed that it had lost its lease (listed in RetimedSample). A receiver that
	// deduplicates by ID, as docs/audit.md asks, keeps one.
	Retimed       int      `json:"retimed"`
	RetimedSample []string `json:"retimedSample,omitempty"`
	// Unseen counts the objects deleted before any leader added the audit finalizer that
	// left no record at all (created and deleted while no leader watched: docs/audit.md).
	Unseen  int `json:"unseen"`
	Objects int `json:"objects"`
	Commits int `json:"commits"`
	// Coalesced counts the records that cover several generations.
	Coalesced int `json:"coalesced"`
	// Verified counts the single-version and deletion records whose actor is verified (the
	// admission webhook's stamp): with the webhooks, all but the versions written while no
	// webhook answered (its failure policy is Ignore).
	Verified int `json:"verified"`
	// ActorMismatches counts single-version records whose actor is unverified (a
	// field-manager hint) and not the writer of that generation: information only.
	ActorMismatches int `json:"actorMismatches"`
	// WrongActors lists the records whose actor is verified but is not the user who wrote
	// that generation or deleted the object: a verified actor is a promise, so each fails
	// the run.
	WrongActors []string `json:"wrongActors,omitempty"`
	Lost        []string `json:"lost,omitempty"`
	Duplicated  []string `json:"duplicated,omitempty"`
	Invalid     []string `json:"invalid,omitempty"`
}

func (r *auditResult) failed() bool {
	return len(r.Lost)+len(r.Duplicated)+len(r.Invalid)+len(r.WrongActors) > 0
}

// account checks the delivered records (raw JSON, as received, repeats included) against
// the writes: for every object, the records of distinct IDs must cover each generation
// from 1 to its last exactly once (a coalesced record covers its range), the last being
// the generation of the object at the end, or, for a deleted object, the highest spec
// generation written; a deleted object has exactly one deletion record and one that
// exists has none; every committed generation is covered; each record's before equals
// what the records before it left (the chain of docs/audit.md's guarantees), and every
// record passes Record.Validate. The same ID delivered with other content is a duplicate.
func account(raw [][]byte, commits []commit, finals map[string]finalObject) *auditResult {
	res := &auditResult{Received: len(raw), Commits: len(commits)}
	byID := map[string][]byte{}
	byUID := map[string][]audit.Record{}
	for _, b := range raw {
		var rec audit.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			res.Invalid = append(res.Invalid, fmt.Sprintf("undecodable record: %v", err))
			continue
		}
		if prev, ok := byID[rec.ID]; ok {
			diff := differentFields(prev, b)
			switch {
			case diff == "":
				res.Redelivered++
			case strings.HasPrefix(diff, "time ") && !strings.Contains(diff, "; "):
				res.Retimed++
				if len(res.RetimedSample) < 10 {
					res.RetimedSample = append(res.RetimedSample, fmt.Sprintf("%s (%s %s generation %d): %s", rec.ID, rec.Action, rec.Object.Name, rec.Object.Generation, diff))
				}
			default:
				res.Duplicated = append(res.Duplicated, fmt.Sprintf("record %s (%s %s generation %d) delivered with different content: %s",
					rec.ID, rec.Action, rec.Object.Name, rec.Object.Generation, diff))
			}
			continue
		}
		byID[rec.ID] = b
		if err := rec.Validate(); err != nil {
			res.Invalid = append(res.Invalid, fmt.Sprintf("record %s: %v", rec.ID, err))
		}
		byUID[rec.Object.UID] = append(byUID[rec.Object.UID], rec)
	}
	res.Distinct = len(byID)

	type want struct {
		kind, name string
		lastSpec   int64
		deleted    bool
		// unfinalized: deleted before it had the audit finalizer.
		unfinalized bool
		writers     map[int64]string
		deleters    []string
	}
	objs := map[string]*want{}
	get := func(uid, kind, name string) *want {
		w := objs[uid]
		if w == nil {
			w = &want{kind: kind, name: name, writers: map[int64]string{}}
			objs[uid] = w
		}
		return w
	}
	for _, c := range commits {
		w := get(c.UID, c.Kind, c.Name)
		if c.Action == "delete" {
			w.deleted, w.unfinalized = true, !c.Finalized
			w.deleters = append(w.deleters, c.Writer)
			continue
		}
		w.lastSpec = max(w.lastSpec, c.Generation)
		w.writers[c.Generation] = c.Writer
	}
	for uid, f := range finals {
		w := get(uid, f.Kind, f.Name)
		w.lastSpec = max(w.lastSpec, f.Generation)
	}
	for uid := range byUID {
		if _, ok := objs[uid]; !ok {
			r := byUID[uid][0]
			get(uid, r.Object.Kind, r.Object.Name)
		}
	}
	res.Objects = len(objs)

	uids := make([]string, 0, len(objs))
	for uid := range objs {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	for _, uid := range uids {
		w := objs[uid]
		_, exists := finals[uid]
		name := fmt.Sprintf("%s %s (uid %s)", w.kind, w.name, uid)
		var changes, deletions []audit.Record
		for _, r := range byUID[uid] {
			if strings.HasSuffix(string(r.Action), ".deleted") {
				deletions = append(deletions, r)
			} else {
				changes = append(changes, r)
			}
		}
		gone := w.deleted || !exists
		if w.unfinalized {
			// Deleted before a leader saw it, or while none watched: the records it has
			// must still be whole, but there may be none, and no deletion record.
			if len(changes)+len(deletions) == 0 {
				res.Unseen++
				continue
			}
			w.lastSpec = 0
		}
		switch {
		case gone && len(deletions) == 0 && w.unfinalized:
		case gone && len(deletions) == 0:
			res.Lost = append(res.Lost, name+": no deletion record")
		case !gone && len(deletions) > 0:
			res.Invalid = append(res.Invalid, name+": a deletion record for an object that exists")
		case len(deletions) > 1:
			res.Duplicated = append(res.Duplicated, fmt.Sprintf("%s: %d deletion records", name, len(deletions)))
		}
		from := func(r audit.Record) int64 {
			if r.Coalesced != nil {
				return r.Coalesced.FromGeneration
			}
			return r.Object.Generation
		}
		slices.SortStableFunc(changes, func(a, b audit.Record) int { return int(from(a) - from(b)) })
		next := int64(1)
		state := map[string]json.RawMessage{}
		for _, r := range changes {
			lo, hi := from(r), r.Object.Generation
			if r.Coalesced != nil {
				res.Coalesced++
			} else if writer, ok := w.writers[hi]; ok {
				checkActor(res, name, r, []string{writer})
			}
			switch {
			case lo < next:
				res.Duplicated = append(res.Duplicated, fmt.Sprintf("%s: generations %d-%d recorded again (record %s)", name, lo, min(hi, next-1), r.ID))
			case lo > next:
				res.Lost = append(res.Lost, fmt.Sprintf("%s: generations %d-%d have no record", name, next, lo-1))
			}
			checkBefore(res, name, r, state)
			for k, v := range r.After {
				state[k] = v
			}
			next = max(next, hi+1)
		}
		if w.lastSpec >= next {
			res.Lost = append(res.Lost, fmt.Sprintf("%s: generations %d-%d have no record", name, next, w.lastSpec))
		}
		for _, r := range deletions {
			checkBefore(res, name, r, state)
			checkActor(res, name, r, w.deleters)
		}
	}
	return res
}

// checkActor compares a record's actor with the users who made the change it describes
// (the writer of its generation, or whoever deleted the object; more than one when two
// deletes raced). A verified actor that is none of them fails the run; an unverified one is
// a hint, counted.
func checkActor(res *auditResult, name string, r audit.Record, users []string) {
	if len(users) == 0 {
		return
	}
	ok := slices.Contains(users, r.Actor.Username)
	switch {
	case r.Actor.Verified && !ok:
		res.WrongActors = append(res.WrongActors, fmt.Sprintf("%s: record %s (%s, generation %d) names %q as the verified actor; the change was made by %s",
			name, r.ID, r.Action, r.Object.Generation, r.Actor.Username, strings.Join(users, " or ")))
	case r.Actor.Verified:
		res.Verified++
	case !ok:
		res.ActorMismatches++
	}
}

// checkBefore reports a record whose before does not hold what the earlier records of its
// object left: for each changed key, the last after-value, or null when none set it.
func checkBefore(res *auditResult, name string, r audit.Record, state map[string]json.RawMessage) {
	for _, k := range r.ChangedKeys {
		want, ok := state[k]
		if !ok {
			want = json.RawMessage("null")
		}
		if !sameJSON(r.Before[k], want) {
			res.Invalid = append(res.Invalid, fmt.Sprintf("%s: record %s (%s, generation %d): before[%q] is %s, the trail held %s",
				name, r.ID, r.Action, r.Object.Generation, k, r.Before[k], want))
		}
	}
}

// sameJSON compares two JSON values by meaning (object keys in any order); a missing value
// is null.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// differentFields names the top-level fields of two JSON objects that differ, with both
// values.
func differentFields(a, b []byte) string {
	var x, y map[string]json.RawMessage
	_ = json.Unmarshal(a, &x) // both decoded as records already
	_ = json.Unmarshal(b, &y)
	var out []string
	for k, v := range x {
		if !sameJSON(v, y[k]) {
			out = append(out, fmt.Sprintf("%s %s, then %s", k, v, y[k]))
		}
	}
	for k, v := range y {
		if _, ok := x[k]; !ok {
			out = append(out, fmt.Sprintf("%s absent, then %s", k, v))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

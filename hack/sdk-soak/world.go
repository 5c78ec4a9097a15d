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
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/flagops/flagops/internal/atomicfile"
)

const (
	namespace = "soak"
	// seqKey is the sentinel flag: its value is the number of the latest write, so that a
	// server that serves it has applied every write before it (localdir applies the
	// directory as a whole).
	seqKey = "soak.seq"
)

// Kinds of flag in the directory; flag i is of kind i % 4.
const (
	kindBoolean = iota // enabled flips
	kindString         // enabled flips, value changes
	kindRule           // a String flag with a rule on plan=pro: the rule's value changes
	kindNumber         // value changes
	numKinds
)

// flagModel is one FeatureFlag file.
type flagModel struct {
	key     string
	kind    int
	enabled bool
	value   int // the n of the value: v<n>, pro-<n>, n
}

// overrideModel is one UserFlagOverride file: the entries of one user.
type overrideModel struct {
	user    string
	entries map[string]any // flag key -> enabled (bool, Boolean flags) or value (string)
}

// world is the directory the server serves and the seeded write load on it. Its methods
// are safe for concurrent use; pause stops the load until resume.
type world struct {
	dir   string
	users int // overrides are written for users 0..users-1 (some without a provider)

	mu        sync.Mutex
	rng       *rand.Rand
	flags     []*flagModel
	overrides map[string]*overrideModel // by user
	paused    bool
	seq       int            // writes made, sentinel writes included
	counts    map[string]int // writes by kind
}

func userName(i int) string { return fmt.Sprintf("user-%03d", i) }

func newWorld(dir string, nflags, users int, seed uint64) *world {
	w := &world{dir: dir, users: users, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		overrides: map[string]*overrideModel{}, counts: map[string]int{}}
	for i := range nflags {
		w.flags = append(w.flags, &flagModel{key: fmt.Sprintf("soak.f%03d", i), kind: i % numKinds,
			enabled: i%3 != 0, value: i})
	}
	return w
}

// setup writes every flag, an override for every third user, and the sentinel.
func (w *world) setup() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.flags {
		if err := w.writeFlag(f); err != nil {
			return err
		}
	}
	for u := 0; u < w.users; u += 3 {
		if err := w.changeOverride(userName(u)); err != nil {
			return err
		}
	}
	_, err := w.writeSeq()
	return err
}

func (w *world) write(name, data string) error {
	return atomicfile.Write(filepath.Join(w.dir, name), []byte(data), 0o600)
}

func (w *world) writeFlag(f *flagModel) error {
	var spec string
	switch f.kind {
	case kindBoolean:
		spec = "  type: Boolean\n"
	case kindString:
		spec = fmt.Sprintf("  type: String\n  value: v%d\n  offValue: \"off\"\n", f.value)
	case kindRule:
		spec = fmt.Sprintf("  type: String\n  value: base\n  offValue: \"off\"\n  rules:\n  - name: pro\n"+
			"    match:\n    - attribute: plan\n      operator: In\n      values: [pro]\n    value: pro-%d\n", f.value)
	case kindNumber:
		spec = fmt.Sprintf("  type: Number\n  value: %d\n  offValue: -1\n", f.value)
	}
	return w.write(f.key+".yaml", manifest("FeatureFlag", f.key, spec+"  enabled: "+strconv.FormatBool(f.enabled)+"\n"))
}

func manifest(kind, name, spec string) string {
	return "apiVersion: flagops.dev/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name +
		"\n  namespace: " + namespace + "\nspec:\n" + spec
}

// writeSeq writes the sentinel with the next write number and returns it.
func (w *world) writeSeq() (int, error) {
	w.seq++
	return w.seq, w.write("seq.yaml", manifest("FeatureFlag", seqKey,
		fmt.Sprintf("  type: Number\n  enabled: true\n  value: %d\n", w.seq)))
}

// changeOverride gives user new override entries: one to three Boolean or String flags.
func (w *world) changeOverride(user string) error {
	o := &overrideModel{user: user, entries: map[string]any{}}
	for range 1 + w.rng.IntN(3) {
		f := w.flags[w.rng.IntN(len(w.flags))]
		switch f.kind {
		case kindBoolean:
			o.entries[f.key] = w.rng.IntN(2) == 0
		case kindString:
			o.entries[f.key] = fmt.Sprintf("ov-%d", w.rng.IntN(1000))
		}
	}
	if len(o.entries) == 0 {
		o.entries[w.flags[0].key] = true // flag 0 is Boolean
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  userId: %s\n  reason: The Go provider soak.\n  flags:\n", user)
	for _, f := range w.flags { // in a fixed order
		switch v := o.entries[f.key].(type) {
		case bool:
			fmt.Fprintf(&b, "  - key: %s\n    enabled: %t\n", f.key, v)
		case string:
			fmt.Fprintf(&b, "  - key: %s\n    value: %s\n", f.key, v)
		}
	}
	w.overrides[user] = o
	return w.write("override-"+user+".yaml", manifest("UserFlagOverride", "soak-"+user, b.String()))
}

// step makes one seeded write, unless the load is paused: a flag flipped (40%), a value
// changed (30%) or a user's override changed or deleted (30%).
func (w *world) step() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused {
		return nil
	}
	w.seq++
	switch r := w.rng.IntN(10); {
	case r < 4:
		f := w.flags[w.rng.IntN(len(w.flags))]
		if f.kind == kindNumber || f.kind == kindRule {
			f = w.flags[w.rng.IntN(len(w.flags)/numKinds)*numKinds] // a Boolean flag
		}
		f.enabled = !f.enabled
		w.counts["flag flip"]++
		return w.writeFlag(f)
	case r < 7:
		f := w.flags[w.rng.IntN(len(w.flags))]
		if f.kind == kindBoolean {
			f = w.flags[w.rng.IntN(len(w.flags)/numKinds)*numKinds+kindString]
		}
		f.value += len(w.flags)
		w.counts["value change"]++
		return w.writeFlag(f)
	default:
		user := userName(w.rng.IntN(w.users))
		if _, ok := w.overrides[user]; ok && w.rng.IntN(4) == 0 {
			delete(w.overrides, user)
			w.counts["override delete"]++
			if err := os.Remove(filepath.Join(w.dir, "override-"+user+".yaml")); err != nil {
				return fmt.Errorf("deleting the override of %s: %w", user, err)
			}
			return nil
		}
		w.counts["override change"]++
		return w.changeOverride(user)
	}
}

// pause stops the load (a write under way ends first) and writes the sentinel; it
// returns the sentinel's value.
func (w *world) pause() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = true
	return w.writeSeq()
}

func (w *world) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = false
}

func (w *world) stats() (seq int, counts map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts = make(map[string]int, len(w.counts))
	for k, v := range w.counts {
		counts[k] = v
	}
	return w.seq, counts
}

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
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/localdir"
)

// TestWorldStaysValid: the directory the soak writes loads without a problem after its
// setup and after every write of the load (a rejected state would not be served, and
// the soak would wait for a sentinel that never comes), and the sentinel counts writes.
func TestWorldStaysValid(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		dir := t.TempDir()
		w := newWorld(dir, 12, 9, seed)
		if err := w.setup(); err != nil {
			t.Fatal(err)
		}
		store := evaluator.NewStore()
		l, err := localdir.New(dir, store, localdir.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if _, err := l.Load(); err != nil {
				t.Fatalf("seed %d, after %d writes: %v", seed, i, err)
			}
			if err := w.step(); err != nil {
				t.Fatal(err)
			}
		}
		seq, err := w.pause()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Load(); err != nil {
			t.Fatal(err)
		}
		res := store.Namespace(namespace).Evaluate(evaluator.Context{}, seqKey)
		if string(res.Raw) != strconv.Itoa(seq) || seq != 302 { // setup's sentinel, 300 writes, this one
			t.Errorf("%s = %s, want %d (302)", seqKey, res.Raw, seq)
		}
		before, counts := w.stats()
		if err := w.step(); err != nil {
			t.Fatal(err)
		}
		if after, _ := w.stats(); after != before {
			t.Errorf("a paused load wrote: %d writes, then %d", before, after)
		}
		for _, kind := range []string{"flag flip", "value change", "override change", "override delete"} {
			if counts[kind] == 0 {
				t.Errorf("seed %d: no %s in 300 writes: %v", seed, kind, counts)
			}
		}
	}
}

// TestRestartTimes: restarts fall in the soak, in order, apart.
func TestRestartTimes(t *testing.T) {
	for _, tc := range []struct {
		d time.Duration
		n int
	}{{10 * time.Minute, 5}, {time.Minute, 5}, {time.Minute, 1}, {20 * time.Second, 2}} {
		for seed := range uint64(20) {
			got := restartTimes(rand.New(rand.NewPCG(seed, 0)), tc.d, tc.n)
			slot := tc.d / time.Duration(tc.n+1)
			if len(got) != tc.n {
				t.Fatalf("%v: %d times, want %d", tc, len(got), tc.n)
			}
			for i, at := range got {
				if at <= 0 || at >= tc.d {
					t.Errorf("%v seed %d: restart %d at %s, outside the soak", tc, seed, i+1, at)
				}
				if i > 0 && at-got[i-1] < slot/2 {
					t.Errorf("%v seed %d: restarts %d and %d %s apart, want at least %s", tc, seed, i, i+1, at-got[i-1], slot/2)
				}
			}
		}
	}
}

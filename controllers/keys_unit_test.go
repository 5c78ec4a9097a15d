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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// keyedFlag is a String flag named name with key key, created at the given second.
func keyedFlag(name, key, value string, created int) *v1.FeatureFlag {
	f := stringFlag("a", name, key, value)
	f.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, created, 0, time.UTC))
	return f
}

// servedValue is what the store serves for key in namespace a: the value, or "not found".
func servedValue(s *Syncer, key string) any {
	r := s.Store().Evaluate("a", evaluator.Context{}, key)
	if r.ErrorCode == evaluator.ErrorFlagNotFound {
		return "not found"
	}
	return r.Value
}

func mustSync(t *testing.T, s *Syncer, name string) {
	t.Helper()
	if _, err := s.Sync(context.Background(), KindFeatureFlag, types.NamespacedName{Namespace: "a", Name: name}); err != nil {
		t.Fatal(err)
	}
}

func expectServed(t *testing.T, s *Syncer, key string, want any) {
	t.Helper()
	if got := servedValue(s, key); got != want {
		t.Errorf("key %s serves %v, want %v", key, got, want)
	}
}

func expectShadowed(t *testing.T, s *Syncer, name, by string) {
	t.Helper()
	st, ok := s.FlagState(types.NamespacedName{Namespace: "a", Name: name})
	if !ok {
		t.Fatalf("no state for flag %s", name)
	}
	switch {
	case by == "" && st.ShadowedBy != nil:
		t.Errorf("flag %s is shadowed by %v, want served", name, st.ShadowedBy)
	case by != "" && (st.ShadowedBy == nil || st.ShadowedBy.Name != by):
		t.Errorf("flag %s is shadowed by %v, want %s", name, st.ShadowedBy, by)
	}
}

func TestSyncerServesTheOlderFlagOfAKey(t *testing.T) {
	ctx := context.Background()
	older, younger := keyedFlag("older", "k", "old", 1), keyedFlag("younger", "k", "young", 2)
	c := fakeCache(t, older, younger)
	s := NewSyncer(c, evaluator.NewStore())
	var notified []string
	s.OnSync(func(_ Kind, nn types.NamespacedName) { notified = append(notified, nn.Name) })

	// The younger object arrives first, then the older one takes the key over.
	mustSync(t, s, "younger")
	expectServed(t, s, "k", "young")
	mustSync(t, s, "older")
	expectServed(t, s, "k", "old")
	expectShadowed(t, s, "younger", "older")
	expectShadowed(t, s, "older", "")
	if got := s.FlagsOfKey("a", "k"); len(got) != 2 || got[0].Name != "older" {
		t.Errorf("FlagsOfKey = %v, want older first", got)
	}
	if want := []string{"younger", "younger", "older"}; !slices.Equal(notified, want) {
		t.Errorf("notified %v, want %v (the younger flag learns it lost)", notified, want)
	}

	// A change of the younger one changes nothing that is served.
	younger.Spec.Value = js("young, edited")
	if err := c.Update(ctx, younger); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s, "younger")
	expectServed(t, s, "k", "old")

	// The older one goes: the younger one is served, as the cache has it now.
	if err := c.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s, "older")
	expectServed(t, s, "k", "young, edited")
	expectShadowed(t, s, "younger", "")
	if st, _ := s.FlagState(types.NamespacedName{Namespace: "a", Name: "younger"}); st.ServingGeneration != younger.Generation {
		t.Errorf("ServingGeneration = %d, want %d", st.ServingGeneration, younger.Generation)
	}

	if err := c.Delete(ctx, younger); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s, "younger")
	expectServed(t, s, "k", "not found")
	if got := s.FlagsOfKey("a", "k"); len(got) != 0 {
		t.Errorf("FlagsOfKey = %v after both went", got)
	}
}

func TestSyncerTakeOverByAFlagThatDoesNotCompile(t *testing.T) {
	ctx := context.Background()
	older := keyedFlag("older", "k", "old", 1)
	broken := keyedFlag("broken", "k", "", 2)
	broken.Spec.Value = nil // a String flag needs a value
	c := fakeCache(t, older, broken)
	s := NewSyncer(c, evaluator.NewStore())
	mustSync(t, s, "older")
	mustSync(t, s, "broken")
	expectServed(t, s, "k", "old")
	if err := c.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s, "older")
	// No version of the broken flag was ever valid: nothing is served for the key, rather
	// than the deleted flag's value.
	expectServed(t, s, "k", "not found")
	st, _ := s.FlagState(types.NamespacedName{Namespace: "a", Name: "broken"})
	if st.Err == nil || st.ShadowedBy != nil || st.ServingGeneration != 0 {
		t.Errorf("state of the broken flag = %+v, want a compile error, served, no serving generation", st)
	}
}

func TestSyncerTakeOverByAFlagGoneFromTheCache(t *testing.T) {
	ctx := context.Background()
	older, younger := keyedFlag("older", "k", "old", 1), keyedFlag("younger", "k", "young", 2)
	c := fakeCache(t, older, younger)
	s := NewSyncer(c, evaluator.NewStore())
	mustSync(t, s, "older")
	mustSync(t, s, "younger")
	// Both go, and the older one's deletion is synced first: the younger one's own Sync
	// follows, so nothing is served meanwhile.
	for _, f := range []client.Object{older, younger} {
		if err := c.Delete(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, s, "older")
	expectServed(t, s, "k", "not found")
	mustSync(t, s, "younger")
	expectServed(t, s, "k", "not found")
	if got := s.FlagsOfKey("a", "k"); len(got) != 0 {
		t.Errorf("FlagsOfKey = %v after both went", got)
	}
}

func TestSyncerInitialSyncServesTheOlderFlag(t *testing.T) {
	// The younger flag's name sorts first, so a list returns it first.
	c := fakeCache(t, keyedFlag("z-older", "k", "old", 1), keyedFlag("a-younger", "k", "young", 2),
		keyedFlag("same-second-b", "s", "b", 3), keyedFlag("same-second-a", "s", "a", 3))
	s := NewSyncer(c, evaluator.NewStore())
	if err := s.InitialSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectServed(t, s, "k", "old")
	expectShadowed(t, s, "a-younger", "z-older")
	// Created in the same second: the first by name wins.
	expectServed(t, s, "s", "a")
	expectShadowed(t, s, "same-second-b", "same-second-a")
}

func TestSyncerFlagRecreatedWithAnotherKey(t *testing.T) {
	ctx := context.Background()
	f := keyedFlag("f", "k1", "one", 1)
	c := fakeCache(t, f)
	s := NewSyncer(c, evaluator.NewStore())
	mustSync(t, s, "f")
	// Deleted and created again with another key between two reads of the cache.
	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	again := keyedFlag("f", "k2", "two", 5)
	if err := c.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s, "f")
	expectServed(t, s, "k1", "not found")
	expectServed(t, s, "k2", "two")
}

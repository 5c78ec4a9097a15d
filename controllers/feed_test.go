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
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// servingSyncer returns a Syncer as SetupServingSync makes it, over a fake cache of flags,
// and a feed per override kind and namespace in namespaces ("" for all).
func servingSyncer(t *testing.T, namespaces []string, flags ...client.Object) (*Syncer, map[Kind]map[string]*overrideFeed) {
	t.Helper()
	s := NewSyncer(fakeCache(t, flags...), evaluator.NewStore())
	s.fed = map[Kind]bool{KindUserFlagOverride: true, KindDeviceFlagOverride: true}
	s.pending = map[objKey]evaluator.Op{}
	feeds := map[Kind]map[string]*overrideFeed{}
	for _, kind := range []Kind{KindUserFlagOverride, KindDeviceFlagOverride} {
		feeds[kind] = map[string]*overrideFeed{}
		for _, ns := range namespaces {
			feeds[kind][ns] = newOverrideFeed(s, nil, kind, ns)
		}
	}
	return s, feeds
}

// served returns the value of flag key in namespace ns for user u and device d.
func served(s *Syncer, ns, key, u, d string) any {
	c := evaluator.Context{UserID: u, DeviceID: d}
	if d != "" {
		c.DeviceClass = "phone" // eligible for every flag by default
	}
	return s.Store().Evaluate(ns, c, key).Value
}

// version gives obj a uid, a resourceVersion and a generation.
func version[T client.Object](obj T, rv string, gen int64) T {
	withUID(obj)
	obj.SetResourceVersion(rv)
	obj.SetGeneration(gen)
	return obj
}

func off(key string) v1.FlagOverrideEntry {
	return v1.FlagOverrideEntry{Key: key, Enabled: ptr.To(false)}
}

// TestOverrideFeed: what the feeds deliver before the initial sync waits for it; after it,
// each watch event is applied, an object being deleted is taken out, a version the store
// reflects is not applied again, and a list of the feed's namespace deletes what it does
// not hold, and nothing in other namespaces.
func TestOverrideFeed(t *testing.T) {
	ctx := context.Background()
	s, feeds := servingSyncer(t, []string{"a", "b"}, boolFlag("a", "f", true), boolFlag("b", "f", true))
	users, devices := feeds[KindUserFlagOverride], feeds[KindDeviceFlagOverride]

	u1 := version(userOverride("a", "u1", "alice", off("f")), "10", 1)
	u2 := version(userOverride("a", "u2", "bob", off("f")), "11", 1)
	ub := version(userOverride("b", "u1", "alice", off("f")), "12", 1)
	d1 := version(deviceOverride("a", "d1", "phone", off("f")), "13", 1)
	for _, step := range []error{
		users["a"].Replace([]any{u1, u2}, "20"),
		users["b"].Replace([]any{ub}, "20"),
		devices["a"].Replace([]any{d1}, "20"),
		devices["b"].Replace(nil, "20"),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	for _, f := range []*overrideFeed{users["a"], users["b"], devices["a"], devices["b"]} {
		select {
		case <-f.listed:
		default:
			t.Fatalf("the %s feed of %q is not listed after its Replace", f.kind, f.namespace)
		}
	}
	if got := served(s, "a", "f", "alice", ""); got != nil {
		t.Fatalf("before the initial sync the store serves %v", got)
	}
	// A change after the list and before the initial sync is part of it.
	u2 = version(userOverride("a", "u2", "bob"), "21", 2)
	if err := users["a"].Update(u2); err != nil {
		t.Fatal(err)
	}
	if err := s.InitialSync(ctx); err != nil {
		t.Fatal(err)
	}
	rev := s.Store().Snapshot().Revision()
	for _, c := range []struct {
		ns, u, d string
		want     any
	}{{"a", "alice", "", false}, {"a", "bob", "", true}, {"b", "alice", "", false}, {"a", "", "phone", false}, {"a", "carol", "", true}} {
		if got := served(s, c.ns, "f", c.u, c.d); got != c.want {
			t.Errorf("after the initial sync, %s/f for user %q device %q = %v, want %v", c.ns, c.u, c.d, got, c.want)
		}
	}
	if rev != 1 {
		t.Errorf("the initial sync made revision %d, want 1 (one write)", rev)
	}

	// The same version again (a resync, or a status change: same generation): no write.
	status := u1.DeepCopy()
	status.ResourceVersion = "30"
	for _, o := range []*v1.UserFlagOverride{u1, status} {
		if err := users["a"].Update(o); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Store().Snapshot().Revision(); got != rev {
		t.Errorf("revision %d after versions the store reflects, want %d", got, rev)
	}

	// A change, a creation, a deletion that waits on a finalizer, a deletion.
	u2 = version(userOverride("a", "u2", "bob", off("f")), "31", 3)
	if err := users["a"].Update(u2); err != nil {
		t.Fatal(err)
	}
	if got := served(s, "a", "f", "bob", ""); got != false {
		t.Errorf("after the change, bob gets %v", got)
	}
	u3 := version(userOverride("a", "u3", "carol", off("f")), "32", 1)
	if err := users["a"].Add(u3); err != nil {
		t.Fatal(err)
	}
	if got := served(s, "a", "f", "carol", ""); got != false {
		t.Errorf("after the creation, carol gets %v", got)
	}
	dying := u3.DeepCopy()
	dying.ResourceVersion, dying.DeletionTimestamp, dying.Finalizers = "33", ptr.To(metav1.Now()), []string{v1.FinalizerAudit}
	if err := users["a"].Update(dying); err != nil {
		t.Fatal(err)
	}
	if got := served(s, "a", "f", "carol", ""); got != true {
		t.Errorf("while its override is being deleted, carol gets %v", got)
	}
	if err := devices["a"].Delete(toolscache.DeletedFinalStateUnknown{Key: "a/d1", Obj: d1}); err != nil {
		t.Fatal(err)
	}
	if got := served(s, "a", "f", "", "phone"); got != true {
		t.Errorf("after its override's deletion, the device gets %v", got)
	}

	// A list again (the watch could not resume): a's list lacks u1, which was deleted
	// meanwhile, and has u2 changed; b's u1 stays.
	u2 = version(userOverride("a", "u2", "bob"), "40", 4)
	if err := users["a"].Replace([]any{u2}, "41"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns, u string
		want  any
	}{{"a", "alice", true}, {"a", "bob", true}, {"b", "alice", false}} {
		if got := served(s, c.ns, "f", c.u, ""); got != c.want {
			t.Errorf("after the list again, %s/f for %s = %v, want %v", c.ns, c.u, got, c.want)
		}
	}
	if _, ok := s.SyncedGeneration(KindUserFlagOverride, types.NamespacedName{Namespace: "a", Name: "u1"}); ok {
		t.Error("the syncer still holds a/u1 after a list without it")
	}

	// Another kind, or no object, is refused with the feed named.
	for _, bad := range []any{d1, "a/u1", nil} {
		if err := users["a"].Add(bad); err == nil || !strings.Contains(err.Error(), "UserFlagOverride feed") {
			t.Errorf("Add(%T) = %v, want an error naming the feed", bad, err)
		}
	}
}

// TestOverrideFeedOfEveryNamespace: the feed of every namespace deletes, on a list, what it
// lacks in any namespace.
func TestOverrideFeedOfEveryNamespace(t *testing.T) {
	s, feeds := servingSyncer(t, []string{""}, boolFlag("a", "f", true), boolFlag("b", "f", true))
	all := feeds[KindUserFlagOverride][""]
	ua := version(userOverride("a", "u", "alice", off("f")), "10", 1)
	ub := version(userOverride("b", "u", "alice", off("f")), "11", 1)
	if err := all.Replace([]any{ua, ub}, "12"); err != nil {
		t.Fatal(err)
	}
	if err := feeds[KindDeviceFlagOverride][""].Replace(nil, "12"); err != nil {
		t.Fatal(err)
	}
	if err := s.InitialSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := all.Replace([]any{ua}, "13"); err != nil {
		t.Fatal(err)
	}
	if got, want := []any{served(s, "a", "f", "alice", ""), served(s, "b", "f", "alice", "")}, []any{false, true}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("after a list without b/u: a, b serve alice %v, want %v", got, want)
	}
}

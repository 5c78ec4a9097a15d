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
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// The namespace's objects.
const (
	boolFlags   = 16
	stringFlags = 8
	// streamUsers is how many users the streams belong to; the writers' overrides name
	// up to overrideUsers users, so some changes reach no stream.
	streamUsers   = 100
	overrideUsers = 120
	// deviceOverrides is the pool of devices the writers override, spread over devices
	// 0-2199 (streams have the first -streams of them).
	deviceOverrides = 60
)

func boolFlag(i int) string   { return fmt.Sprintf("soak.bool-%02d", i) }
func stringFlag(i int) string { return fmt.Sprintf("soak.str-%d", i) }
func userID(i int) string     { return fmt.Sprintf("u-%03d", i) }
func deviceID(i int) string   { return fmt.Sprintf("d-%04d", i) }

func rawString(s string) *apiextensionsv1.JSON {
	return &apiextensionsv1.JSON{Raw: []byte(fmt.Sprintf("%q", s))}
}

// initialFlags returns the namespace's flags: Boolean flags, every other one on, and
// String flags with a value.
func initialFlags() []*v1.FeatureFlag {
	var out []*v1.FeatureFlag
	for i := range boolFlags {
		out = append(out, &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: boolFlag(i)},
			Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: i%2 == 0}})
	}
	for i := range stringFlags {
		out = append(out, &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: stringFlag(i)},
			Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true, Value: rawString("v0")}})
	}
	return out
}

// journal collects the writes the API server accepted.
type journal struct {
	mu       sync.Mutex
	commits  []commit
	attempts int
	conflict int
	failed   int // refused or failed for another reason (the API server down, mostly)
}

func (j *journal) add(c commit) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.commits = append(j.commits, c)
}

func (j *journal) count(attempt, conflict, failed int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.attempts += attempt
	j.conflict += conflict
	j.failed += failed
}

// writer is one of the users writing: its client impersonates it, and it is the field
// manager of its writes (without the webhooks, the audit trail's actor is that hint).
type writer struct {
	name string
	c    client.Client
	rng  *rand.Rand
	j    *journal
	n    int // writes made, for unique values
}

// run writes at rate writes a second (intervals drawn between half and one and a half of
// the mean) until ctx ends.
func (w *writer) run(ctx context.Context, rate float64) {
	mean := time.Duration(float64(time.Second) / rate)
	for {
		d := mean/2 + time.Duration(w.rng.Int64N(int64(mean)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		w.step(ctx)
	}
}

// step makes one write of a kind drawn from the writer's seed: a flag flipped (30%), a
// String flag's value changed (15%), a user override (30%) or a device override (25%)
// created, changed or deleted.
func (w *writer) step(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p := w.rng.Float64()
	var err error
	switch {
	case p < 0.30:
		err = w.flag(ctx, boolFlag(w.rng.IntN(boolFlags)), func(f *v1.FeatureFlag) { f.Spec.Enabled = !f.Spec.Enabled })
	case p < 0.45:
		w.n++
		v := fmt.Sprintf("%s-%d", w.name, w.n)
		err = w.flag(ctx, stringFlag(w.rng.IntN(stringFlags)), func(f *v1.FeatureFlag) { f.Spec.Value = rawString(v) })
	case p < 0.75:
		u := userID(w.rng.IntN(overrideUsers))
		err = w.override(ctx, &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "user-" + u},
			Spec: v1.UserFlagOverrideSpec{UserID: u}})
	default:
		d := deviceID(w.rng.IntN(deviceOverrides) * 37 % 2200)
		err = w.override(ctx, &v1.DeviceFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "device-" + d},
			Spec: v1.DeviceFlagOverrideSpec{DeviceID: d}})
	}
	switch {
	case err == nil:
		w.j.count(1, 0, 0)
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
		w.j.count(1, 1, 0)
	default:
		w.j.count(1, 0, 1)
	}
}

func (w *writer) flag(ctx context.Context, name string, change func(*v1.FeatureFlag)) error {
	f := &v1.FeatureFlag{}
	if err := w.c.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: name}, f); err != nil {
		return err
	}
	change(f)
	if err := w.c.Update(ctx, f); err != nil {
		return err
	}
	w.j.add(commit{UID: string(f.UID), Kind: "FeatureFlag", Name: name, Generation: f.Generation, Action: "update", Writer: w.name, ResourceVersion: f.ResourceVersion})
	return nil
}

// override creates the override (its spec drawn) when it does not exist; when it does, it
// deletes it (one time in four) or draws a new spec, different from the current one.
func (w *writer) override(ctx context.Context, obj client.Object) error {
	kind := "UserFlagOverride"
	if _, ok := obj.(*v1.DeviceFlagOverride); ok {
		kind = "DeviceFlagOverride"
	}
	spec := func(o client.Object) *v1.FlagOverrideSpec {
		if u, ok := o.(*v1.UserFlagOverride); ok {
			return &u.Spec.FlagOverrideSpec
		}
		return &o.(*v1.DeviceFlagOverride).Spec.FlagOverrideSpec
	}
	cur := obj.DeepCopyObject().(client.Object)
	err := w.c.Get(ctx, client.ObjectKeyFromObject(obj), cur)
	switch {
	case apierrors.IsNotFound(err):
		*spec(obj) = w.drawOverride()
		if err := w.c.Create(ctx, obj); err != nil {
			return err
		}
		w.j.add(commit{UID: string(obj.GetUID()), Kind: kind, Name: obj.GetName(), Generation: obj.GetGeneration(), Action: "create", Writer: w.name, ResourceVersion: obj.GetResourceVersion()})
		return nil
	case err != nil:
		return err
	case !cur.GetDeletionTimestamp().IsZero():
		return apierrors.NewConflict(v1.GroupVersion.WithResource(kind).GroupResource(), cur.GetName(), fmt.Errorf("being deleted"))
	case w.rng.IntN(4) == 0:
		uid := cur.GetUID()
		if err := w.c.Delete(ctx, cur, client.Preconditions{UID: &uid}); err != nil {
			return err
		}
		w.j.add(commit{UID: string(uid), Kind: kind, Name: cur.GetName(), Generation: cur.GetGeneration(), Action: "delete", Writer: w.name,
			Finalized: controllerutil.ContainsFinalizer(cur, v1.FinalizerAudit)})
		return nil
	}
	s := spec(cur)
	next := w.drawOverride()
	if reflect.DeepEqual(next.Flags, s.Flags) {
		next.Flags[0].Enabled = ptr.To(!*next.Flags[0].Enabled)
	}
	s.Flags = next.Flags
	if err := w.c.Update(ctx, cur); err != nil {
		return err
	}
	w.j.add(commit{UID: string(cur.GetUID()), Kind: kind, Name: cur.GetName(), Generation: cur.GetGeneration(), Action: "update", Writer: w.name, ResourceVersion: cur.GetResourceVersion()})
	return nil
}

// drawOverride draws an override's entries: one to three Boolean flags, on or off, the
// first always a Boolean flag, and sometimes a String flag's value.
func (w *writer) drawOverride() v1.FlagOverrideSpec {
	var s v1.FlagOverrideSpec
	seen := map[int]bool{}
	for range 1 + w.rng.IntN(3) {
		i := w.rng.IntN(boolFlags)
		if seen[i] {
			continue
		}
		seen[i] = true
		s.Flags = append(s.Flags, v1.FlagOverrideEntry{Key: boolFlag(i), Enabled: ptr.To(w.rng.IntN(2) == 0)})
	}
	if w.rng.IntN(3) == 0 {
		w.n++
		s.Flags = append(s.Flags, v1.FlagOverrideEntry{Key: stringFlag(w.rng.IntN(stringFlags)), Value: rawString(fmt.Sprintf("o-%s-%d", w.name, w.n))})
	}
	return s
}

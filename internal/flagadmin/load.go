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

package flagadmin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// Objects are the flagops objects of a namespace (or of every namespace), as listed.
type Objects struct {
	Flags   []v1.FeatureFlag
	Users   []v1.UserFlagOverride
	Devices []v1.DeviceFlagOverride
}

// Lister reads flagops objects from the cluster.
type Lister interface {
	// List lists the objects of namespace ns, or of every namespace when ns is empty.
	List(ctx context.Context, ns string) (*Objects, error)
	// NamespaceExists reports whether namespace ns exists. A caller who may not read it
	// gets true: the question only sharpens the message for an empty namespace.
	NamespaceExists(ctx context.Context, ns string) (bool, error)
}

// NewScheme returns a scheme with the flagops and core types.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("flagops: cannot register the API types: %v", err))
	}
	if err := corev1.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("flagops: cannot register the core types: %v", err))
	}
	return s
}

// staticMapper maps the few kinds flagadmin reads without discovery, so that a command costs
// only its list requests.
func staticMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, kind := range []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"} {
		m.Add(v1.GroupVersion.WithKind(kind), meta.RESTScopeNamespace)
	}
	m.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	m.Add(corev1.SchemeGroupVersion.WithKind("Event"), meta.RESTScopeNamespace)
	return m
}

// NewClient returns a client of the API server of cfg that knows the flagops and core types
// without discovery.
func NewClient(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: NewScheme(), Mapper: staticMapper()})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	return c, nil
}

// clientLister is the Lister of a cluster, with the client's credentials.
type clientLister struct {
	c client.Client
}

// NewLister returns the Lister that reads through c.
func NewLister(c client.Client) Lister { return &clientLister{c: c} }

// ErrNotInstalled says that the cluster does not serve the flagops API.
type ErrNotInstalled struct{ Resource string }

func (e *ErrNotInstalled) Error() string {
	return fmt.Sprintf("the server does not serve %s.%s: are the flagops CRDs installed (make install)?", e.Resource, v1.GroupVersion.Group)
}

func (l *clientLister) List(ctx context.Context, ns string) (*Objects, error) {
	var opts []client.ListOption
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	out := &Objects{}
	lists := []struct {
		resource string
		list     client.ObjectList
	}{
		{"featureflags", &v1.FeatureFlagList{}},
		{"userflagoverrides", &v1.UserFlagOverrideList{}},
		{"deviceflagoverrides", &v1.DeviceFlagOverrideList{}},
	}
	for _, l2 := range lists {
		if err := l.c.List(ctx, l2.list, opts...); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return nil, &ErrNotInstalled{Resource: l2.resource}
			}
			return nil, fmt.Errorf("failed to list %s: %w", l2.resource, err)
		}
	}
	out.Flags = lists[0].list.(*v1.FeatureFlagList).Items
	out.Users = lists[1].list.(*v1.UserFlagOverrideList).Items
	out.Devices = lists[2].list.(*v1.DeviceFlagOverrideList).Items
	return out, nil
}

func (l *clientLister) NamespaceExists(ctx context.Context, ns string) (bool, error) {
	err := l.c.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("failed to get namespace %q: %w", ns, err)
}

// FlagEntry is one FeatureFlag object and what the local load made of it.
type FlagEntry struct {
	Obj *v1.FeatureFlag
	Key string
	// Served is true for the object the store serves its key from: the oldest object with
	// the key, when its spec compiles.
	Served bool
	// ShadowedBy names the older FeatureFlag with the same key, which is served instead.
	ShadowedBy string
	// CompileErr is why the spec does not compile.
	CompileErr error
	// Notes say where the server's live view may differ from the local evaluation.
	Notes []string
}

// Loaded is the cluster state loaded into a store.
type Loaded struct {
	Store *evaluator.Store
	// Flags lists every FeatureFlag object, sorted by namespace, key and then served first.
	Flags []*FlagEntry
	Objs  *Objects
}

// Claimant returns the entry that decides a key: the oldest FeatureFlag with it.
func (l *Loaded) Claimant(ns, key string) *FlagEntry {
	for _, f := range l.Flags {
		if f.Obj.Namespace == ns && f.Key == key && f.ShadowedBy == "" {
			return f
		}
	}
	return nil
}

// NamespaceFlags returns the entries of namespace ns.
func (l *Loaded) NamespaceFlags(ns string) []*FlagEntry {
	var out []*FlagEntry
	for _, f := range l.Flags {
		if f.Obj.Namespace == ns {
			out = append(out, f)
		}
	}
	return out
}

// compareServed orders FeatureFlags with one key as the manager's Syncer does: the one it
// serves first (oldest creationTimestamp, then name).
func compareServed(a, b *v1.FeatureFlag) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(a.Name, b.Name))
}

// Load applies objs to a new store whose clock is now, in one batch, keeping the Syncer's
// rules (see the package documentation).
func Load(objs *Objects, now func() time.Time) (*Loaded, error) {
	l := &Loaded{Store: evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(now))), Objs: objs}
	for i := range objs.Flags {
		f := &objs.Flags[i]
		if f.DeletionTimestamp.IsZero() {
			l.Flags = append(l.Flags, &FlagEntry{Obj: f, Key: adapt.FlagKey(f)})
		}
	}
	slices.SortFunc(l.Flags, func(a, b *FlagEntry) int {
		return cmp.Or(strings.Compare(a.Obj.Namespace, b.Obj.Namespace), strings.Compare(a.Key, b.Key), compareServed(a.Obj, b.Obj))
	})
	var ops []evaluator.Op
	for i, f := range l.Flags {
		if i > 0 && l.Flags[i-1].Obj.Namespace == f.Obj.Namespace && l.Flags[i-1].Key == f.Key {
			f.ShadowedBy = l.Flags[i-1].Obj.Name
			if prev := l.Flags[i-1].ShadowedBy; prev != "" {
				f.ShadowedBy = prev
			}
			if !reported(f.Obj, v1.ReasonDuplicateKey) {
				f.Notes = append(f.Notes, fmt.Sprintf("duplicate key: FeatureFlag %s/%s is older and served instead", f.Obj.Namespace, f.ShadowedBy))
			}
		} else {
			compiled, err := evaluator.Compile(f.Key, adapt.FlagSpec(f.Obj))
			if err != nil {
				f.CompileErr = err
				if !reported(f.Obj, v1.ReasonInvalidSpec) {
					f.Notes = append(f.Notes, "spec does not compile, not evaluated locally: "+OneLine(err.Error()))
				}
			} else {
				f.Served = true
				ops = append(ops, evaluator.UpsertCompiledFlag(f.Obj.Namespace, compiled))
			}
		}
		f.Notes = append(f.Notes, statusNotes(f.Obj)...)
	}
	for i := range objs.Users {
		if o := &objs.Users[i]; o.DeletionTimestamp.IsZero() {
			ops = append(ops, evaluator.UpsertOverride(adapt.UserOverride(o)))
		}
	}
	for i := range objs.Devices {
		if o := &objs.Devices[i]; o.DeletionTimestamp.IsZero() {
			ops = append(ops, evaluator.UpsertOverride(adapt.DeviceOverride(o)))
		}
	}
	if _, _, err := l.Store.Apply(ops...); err != nil {
		return nil, fmt.Errorf("failed to load the objects into the evaluator: %w", err)
	}
	return l, nil
}

// reported reports whether the manager's status of the flag's current generation already
// says Ready=False with reason, so that a local note would repeat it.
func reported(f *v1.FeatureFlag, reason string) bool {
	ready := meta.FindStatusCondition(f.Status.Conditions, v1.ConditionReady)
	return ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == reason && f.Status.ObservedGeneration >= f.Generation
}

// statusNotes say where the manager's view of a FeatureFlag differs from its spec: no status
// yet, a status of an older generation, or Ready=False.
func statusNotes(f *v1.FeatureFlag) []string {
	ready := meta.FindStatusCondition(f.Status.Conditions, v1.ConditionReady)
	switch {
	case ready == nil:
		return []string{"no Ready condition: the manager has not reported on this flag yet (is it running?)"}
	case f.Status.ObservedGeneration < f.Generation:
		return []string{fmt.Sprintf("the manager has not observed generation %d yet (status is of generation %d): the server may serve an older version",
			f.Generation, f.Status.ObservedGeneration)}
	case ready.Status != metav1.ConditionTrue:
		return []string{"server: " + OneLine(ready.Message)}
	}
	return nil
}

// ReadyOf returns the Ready condition's status and message, "-" and "" without one.
func ReadyOf(f *v1.FeatureFlag) (string, string) {
	ready := meta.FindStatusCondition(f.Status.Conditions, v1.ConditionReady)
	if ready == nil {
		return "-", ""
	}
	return string(ready.Status), OneLine(ready.Message)
}

// OneLine joins the non-empty lines of a message with "; ", so that every error and note
// is one line.
func OneLine(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// ServerError renders an error of the API server as kubectl does, on one line: "Error from
// server (Reason): message"; ok is false for other errors.
func ServerError(err error) (line string, ok bool) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if st := status.Status(); st.Reason != "" {
			return fmt.Sprintf("Error from server (%s): %s", st.Reason, OneLine(st.Message)), true
		}
	}
	return "", false
}

// FlagNotFound is the error for a key that no flag of namespace ns (of any when empty) has.
func FlagNotFound(key, ns string) error {
	if ns == "" {
		return fmt.Errorf("flag %s not found in any namespace", strconv.Quote(key))
	}
	return fmt.Errorf("flag %s not found in namespace %s", strconv.Quote(key), strconv.Quote(ns))
}

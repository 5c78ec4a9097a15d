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

package kubectl

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
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

// newScheme returns a scheme with the flagops and core types.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("flagops: cannot register the API types: %v", err))
	}
	if err := corev1.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("flagops: cannot register the core types: %v", err))
	}
	return s
}

// staticMapper maps the few kinds the plugin reads without discovery, so that a command costs
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

// clientLister is the Lister of a cluster, with the caller's credentials.
type clientLister struct {
	c client.Client
}

// newClient returns a client of the API server of the connection flags.
func newClient(getter genericclioptions.RESTClientGetter) (client.Client, error) {
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: newScheme(), Mapper: staticMapper()})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	return c, nil
}

// newClientLister returns a Lister that talks to the API server of the connection flags.
func newClientLister(getter genericclioptions.RESTClientGetter) (Lister, error) {
	c, err := newClient(getter)
	if err != nil {
		return nil, err
	}
	return &clientLister{c: c}, nil
}

// errNotInstalled says that the cluster does not serve the flagops API.
type errNotInstalled struct{ resource string }

func (e *errNotInstalled) Error() string {
	return fmt.Sprintf("the server does not serve %s.%s: are the flagops CRDs installed (make install)?", e.resource, v1.GroupVersion.Group)
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
				return nil, &errNotInstalled{resource: l2.resource}
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

// flagEntry is one FeatureFlag object and what the local load made of it.
type flagEntry struct {
	obj *v1.FeatureFlag
	key string
	// served is true for the object the store serves its key from: the oldest object with
	// the key, when its spec compiles.
	served bool
	// shadowedBy names the older FeatureFlag with the same key, which is served instead.
	shadowedBy string
	// compileErr is why the spec does not compile.
	compileErr error
	// notes say where the server's live view may differ from the local evaluation.
	notes []string
}

// loaded is the cluster state loaded into a store.
type loaded struct {
	store *evaluator.Store
	// flags lists every FeatureFlag object, sorted by namespace, key and then served first.
	flags []*flagEntry
	objs  *Objects
}

// claimant returns the entry that decides a key: the oldest FeatureFlag with it.
func (l *loaded) claimant(ns, key string) *flagEntry {
	for _, f := range l.flags {
		if f.obj.Namespace == ns && f.key == key && f.shadowedBy == "" {
			return f
		}
	}
	return nil
}

// namespaceFlags returns the entries of namespace ns.
func (l *loaded) namespaceFlags(ns string) []*flagEntry {
	var out []*flagEntry
	for _, f := range l.flags {
		if f.obj.Namespace == ns {
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

// load applies objs to a new store whose clock is now, in one batch, keeping the Syncer's
// rules (see the package documentation).
func load(objs *Objects, now func() time.Time) (*loaded, error) {
	l := &loaded{store: evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(now))), objs: objs}
	for i := range objs.Flags {
		f := &objs.Flags[i]
		if f.DeletionTimestamp.IsZero() {
			l.flags = append(l.flags, &flagEntry{obj: f, key: adapt.FlagKey(f)})
		}
	}
	slices.SortFunc(l.flags, func(a, b *flagEntry) int {
		return cmp.Or(strings.Compare(a.obj.Namespace, b.obj.Namespace), strings.Compare(a.key, b.key), compareServed(a.obj, b.obj))
	})
	var ops []evaluator.Op
	for i, f := range l.flags {
		if i > 0 && l.flags[i-1].obj.Namespace == f.obj.Namespace && l.flags[i-1].key == f.key {
			f.shadowedBy = l.flags[i-1].obj.Name
			if prev := l.flags[i-1].shadowedBy; prev != "" {
				f.shadowedBy = prev
			}
			if !reported(f.obj, v1.ReasonDuplicateKey) {
				f.notes = append(f.notes, fmt.Sprintf("duplicate key: FeatureFlag %s/%s is older and served instead", f.obj.Namespace, f.shadowedBy))
			}
		} else {
			compiled, err := evaluator.Compile(f.key, adapt.FlagSpec(f.obj))
			if err != nil {
				f.compileErr = err
				if !reported(f.obj, v1.ReasonInvalidSpec) {
					f.notes = append(f.notes, "spec does not compile, not evaluated locally: "+oneLine(err.Error()))
				}
			} else {
				f.served = true
				ops = append(ops, evaluator.UpsertCompiledFlag(f.obj.Namespace, compiled))
			}
		}
		f.notes = append(f.notes, statusNotes(f.obj)...)
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
	if _, _, err := l.store.Apply(ops...); err != nil {
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
		return []string{"server: " + oneLine(ready.Message)}
	}
	return nil
}

// readyOf returns the Ready condition's status and message, "-" and "" without one.
func readyOf(f *v1.FeatureFlag) (string, string) {
	ready := meta.FindStatusCondition(f.Status.Conditions, v1.ConditionReady)
	if ready == nil {
		return "-", ""
	}
	return string(ready.Status), oneLine(ready.Message)
}

// oneLine joins the non-empty lines of a message with "; ", so that every error and note
// is one line.
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

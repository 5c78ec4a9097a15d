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

package webhook

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator/adapt"
)

// lookup reads flags and overrides for the validating webhooks: from the manager's cache
// first, and from the API server where the cache cannot answer.
type lookup struct {
	// cache is the manager's cache-backed client.
	cache client.Reader
	// api reads from the API server.
	api client.Reader
}

// flag returns the FeatureFlag of namespace ns that has key, or nil when there is none. When
// two have it (two creates raced past this webhook), it returns the one the evaluator serves:
// the older. A flag just created may not be in the cache yet, and namespaces outside
// --watch-namespaces are not cached at all, so a miss is confirmed with the API server: by
// name first, as most flags are named after their key, then by listing the namespace.
func (l lookup) flag(ctx context.Context, ns, key string) (*v1.FeatureFlag, error) {
	list := &v1.FeatureFlagList{}
	if err := l.cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{controllers.IndexKey: key}); err == nil && len(list.Items) > 0 {
		return served(list.Items), nil
	}
	f := &v1.FeatureFlag{}
	err := l.api.Get(ctx, types.NamespacedName{Namespace: ns, Name: key}, f)
	switch {
	case err == nil && adapt.FlagKey(f) == key:
		return f, nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to get FeatureFlag %s/%s: %w", ns, key, err)
	}
	flags, err := l.apiFlagsWithKey(ctx, ns, key)
	if err != nil || len(flags) == 0 {
		return nil, err
	}
	return served(flags), nil
}

// flagsWithKey returns the FeatureFlags of namespace ns in the cache that have key. When the
// cache cannot answer (the namespace is not cached), it lists the namespace from the API
// server.
func (l lookup) flagsWithKey(ctx context.Context, ns, key string) ([]v1.FeatureFlag, error) {
	list := &v1.FeatureFlagList{}
	if err := l.cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{controllers.IndexKey: key}); err == nil {
		return list.Items, nil
	}
	return l.apiFlagsWithKey(ctx, ns, key)
}

// apiFlagsWithKey lists the FeatureFlags of namespace ns from the API server, which has no
// field selector on the key, and keeps those that have key.
func (l lookup) apiFlagsWithKey(ctx context.Context, ns, key string) ([]v1.FeatureFlag, error) {
	list := &v1.FeatureFlagList{}
	if err := l.api.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("failed to list the FeatureFlags of namespace %q: %w", ns, err)
	}
	return slices.DeleteFunc(list.Items, func(f v1.FeatureFlag) bool { return adapt.FlagKey(&f) != key }), nil
}

// served returns the flag the evaluator serves among flags with one key: the oldest, then
// the first by name (see controllers.Syncer).
func served(flags []v1.FeatureFlag) *v1.FeatureFlag {
	f := slices.MinFunc(flags, func(a, b v1.FeatureFlag) int { return controllers.CompareServed(&a, &b) })
	return &f
}

// overrides lists the overrides of kind in ns whose field index has value: the cache's
// IndexSubject or IndexFlagKey. When the cache cannot answer (the index is not registered,
// or the namespace is not cached), every override of the namespace is read from the API
// server and filtered with match, which must agree with the index.
func (l lookup) overrides(ctx context.Context, kind controllers.Kind, ns, index, value string, match func(overrideView) bool) ([]overrideView, error) {
	list := kind.NewList()
	err := l.cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{index: value})
	if err == nil {
		return viewsOf(list), nil
	}
	list = kind.NewList()
	if err := l.api.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("failed to list %s objects in namespace %q: %w", kind, ns, err)
	}
	var out []overrideView
	for _, o := range viewsOf(list) {
		if match(o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// overrideView gives uniform access to a UserFlagOverride or a DeviceFlagOverride.
type overrideView struct {
	kind    controllers.Kind
	obj     client.Object
	subject string
	spec    *v1.FlagOverrideSpec
}

func viewOf(obj client.Object) overrideView {
	switch o := obj.(type) {
	case *v1.UserFlagOverride:
		return overrideView{kind: controllers.KindUserFlagOverride, obj: o, subject: o.Spec.UserID, spec: &o.Spec.FlagOverrideSpec}
	case *v1.DeviceFlagOverride:
		return overrideView{kind: controllers.KindDeviceFlagOverride, obj: o, subject: o.Spec.DeviceID, spec: &o.Spec.FlagOverrideSpec}
	default:
		panic(fmt.Sprintf("flagops: %T is not an override", obj))
	}
}

func viewsOf(list client.ObjectList) []overrideView {
	var out []overrideView
	switch l := list.(type) {
	case *v1.UserFlagOverrideList:
		for i := range l.Items {
			out = append(out, viewOf(&l.Items[i]))
		}
	case *v1.DeviceFlagOverrideList:
		for i := range l.Items {
			out = append(out, viewOf(&l.Items[i]))
		}
	default:
		panic(fmt.Sprintf("flagops: %T is not an override list", list))
	}
	return out
}

// subjectName names the subject in messages: "user" or "device".
func (o overrideView) subjectName() string {
	if o.kind == controllers.KindDeviceFlagOverride {
		return "device"
	}
	return "user"
}

// active reports whether the evaluator serves the override at now: it is enabled, not
// expired and not being deleted. Only active overrides compete for a (subject, key) pair.
func (o overrideView) active(now time.Time) bool {
	return (o.spec.Enabled == nil || *o.spec.Enabled) &&
		(o.spec.ExpiresAt == nil || now.Before(o.spec.ExpiresAt.Time)) &&
		o.obj.GetDeletionTimestamp().IsZero()
}

// hasKey reports whether the override has an entry for key.
func (o overrideView) hasKey(key string) bool {
	for _, e := range o.spec.Flags {
		if e.Key == key {
			return true
		}
	}
	return false
}

// servesValue reports whether an entry serves its own value (and not the flag's on or off
// value), which must then match the flag. This mirrors the evaluator: enabled false serves
// the off value whatever value says, and a JSON null counts as no value.
func servesValue(e v1.FlagOverrideEntry) bool {
	if e.Enabled != nil && !*e.Enabled {
		return false
	}
	return !isAbsent(e.Value)
}

func isAbsent(j *apiextensionsv1.JSON) bool {
	if j == nil {
		return true
	}
	t := bytes.TrimSpace(j.Raw)
	return len(t) == 0 || string(t) == "null"
}

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
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
)

// lookup reads flags and overrides for the validating webhooks: from the manager's cache
// first, and from the API server where the cache cannot answer.
type lookup struct {
	// cache is the manager's cache-backed client.
	cache client.Reader
	// api reads from the API server.
	api client.Reader
}

// flag returns the FeatureFlag ns/name, or nil when there is none. A flag just created may
// not be in the cache yet, and namespaces outside --watch-namespaces are not cached at all, so
// a miss is confirmed with the API server.
func (l lookup) flag(ctx context.Context, ns, name string) (*v1.FeatureFlag, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	f := &v1.FeatureFlag{}
	if err := l.cache.Get(ctx, key, f); err == nil {
		return f, nil
	}
	if err := l.api.Get(ctx, key, f); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get FeatureFlag %s: %w", key, err)
	}
	return f, nil
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

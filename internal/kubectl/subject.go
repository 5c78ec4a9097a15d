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
	"fmt"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// subject is the user or device whose overrides a command changes.
type subject struct {
	kind evaluator.SubjectKind
	id   string
}

// subjectOf returns the device when --device is given, else the user.
func subjectOf(c *contextFlags) (subject, error) {
	switch {
	case c.device != "":
		if c.deviceClass == "" {
			return subject{}, fmt.Errorf("--device-class is required with --device: overrides apply only to devices of an eligible class")
		}
		return subject{kind: evaluator.SubjectDevice, id: c.device}, nil
	case c.user != "":
		return subject{kind: evaluator.SubjectUser, id: c.user}, nil
	}
	return subject{}, fmt.Errorf("--user or --device is required")
}

func (s subject) String() string { return fmt.Sprintf("%s %s", s.kind, strconv.Quote(s.id)) }

// kindName is the API kind of the subject's overrides.
func (s subject) kindName() string {
	if s.kind == evaluator.SubjectDevice {
		return "DeviceFlagOverride"
	}
	return "UserFlagOverride"
}

// override is an override object and its spec, of either kind.
type override struct {
	obj  client.Object
	spec *v1.FlagOverrideSpec
}

// newOverride returns a new override object of the subject, named name in namespace ns.
func (s subject) newOverride(ns, name string) override {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	if s.kind == evaluator.SubjectDevice {
		o := &v1.DeviceFlagOverride{ObjectMeta: meta, Spec: v1.DeviceFlagOverrideSpec{DeviceID: s.id}}
		return override{obj: o, spec: &o.Spec.FlagOverrideSpec}
	}
	o := &v1.UserFlagOverride{ObjectMeta: meta, Spec: v1.UserFlagOverrideSpec{UserID: s.id}}
	return override{obj: o, spec: &o.Spec.FlagOverrideSpec}
}

// copyOf returns a deep copy of o.
func (o override) copyOf() override {
	switch x := o.obj.(type) {
	case *v1.DeviceFlagOverride:
		c := x.DeepCopy()
		return override{obj: c, spec: &c.Spec.FlagOverrideSpec}
	case *v1.UserFlagOverride:
		c := x.DeepCopy()
		return override{obj: c, spec: &c.Spec.FlagOverrideSpec}
	}
	panic(fmt.Sprintf("not an override: %T", o.obj))
}

// wrap returns the override of a typed object.
func wrap(obj client.Object) override {
	switch x := obj.(type) {
	case *v1.DeviceFlagOverride:
		return override{obj: x, spec: &x.Spec.FlagOverrideSpec}
	case *v1.UserFlagOverride:
		return override{obj: x, spec: &x.Spec.FlagOverrideSpec}
	}
	panic(fmt.Sprintf("not an override: %T", obj))
}

// ref names the override for messages, e.g. UserFlagOverride shop/user-alice.
func (o override) ref(s subject) string {
	return s.kindName() + " " + o.obj.GetNamespace() + "/" + o.obj.GetName()
}

// active reports whether the override applies at now: enabled, not expired, not being
// deleted (as the admission webhook's conflict check has it).
func (o override) active(now time.Time) bool {
	return (o.spec.Enabled == nil || *o.spec.Enabled) &&
		(o.spec.ExpiresAt == nil || now.Before(o.spec.ExpiresAt.Time)) &&
		o.obj.GetDeletionTimestamp().IsZero()
}

// entry returns the index of key's entry, or -1.
func (o override) entry(key string) int {
	return slices.IndexFunc(o.spec.Flags, func(e v1.FlagOverrideEntry) bool { return e.Key == key })
}

// overridesOf returns the subject's override objects of namespace ns, sorted by name.
func (s subject) overridesOf(objs *Objects, ns string) []override {
	var out []override
	if s.kind == evaluator.SubjectDevice {
		for i := range objs.Devices {
			if o := &objs.Devices[i]; o.Namespace == ns && o.Spec.DeviceID == s.id {
				out = append(out, override{obj: o, spec: &o.Spec.FlagOverrideSpec})
			}
		}
	} else {
		for i := range objs.Users {
			if o := &objs.Users[i]; o.Namespace == ns && o.Spec.UserID == s.id {
				out = append(out, override{obj: o, spec: &o.Spec.FlagOverrideSpec})
			}
		}
	}
	slices.SortFunc(out, func(a, b override) int { return cmpString(a.obj.GetName(), b.obj.GetName()) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// findOverride returns the override object of kind and name in namespace ns, if listed.
func findOverride(objs *Objects, kind evaluator.SubjectKind, ns, name string) (override, bool) {
	if kind == evaluator.SubjectDevice {
		for i := range objs.Devices {
			if o := &objs.Devices[i]; o.Namespace == ns && o.Name == name {
				return override{obj: o, spec: &o.Spec.FlagOverrideSpec}, true
			}
		}
		return override{}, false
	}
	for i := range objs.Users {
		if o := &objs.Users[i]; o.Namespace == ns && o.Name == name {
			return override{obj: o, spec: &o.Spec.FlagOverrideSpec}, true
		}
	}
	return override{}, false
}

// replaced returns a copy of objs with obj in place of the listed object of its kind and
// name (added when there is none), or without it when deleted is true.
func replaced(objs *Objects, obj client.Object, deleted bool) *Objects {
	out := &Objects{Flags: slices.Clone(objs.Flags), Users: slices.Clone(objs.Users), Devices: slices.Clone(objs.Devices)}
	same := func(o client.Object) bool {
		return o.GetNamespace() == obj.GetNamespace() && o.GetName() == obj.GetName()
	}
	switch x := obj.(type) {
	case *v1.FeatureFlag:
		out.Flags = slices.DeleteFunc(out.Flags, func(o v1.FeatureFlag) bool { return same(&o) })
		if !deleted {
			out.Flags = append(out.Flags, *x)
		}
	case *v1.UserFlagOverride:
		out.Users = slices.DeleteFunc(out.Users, func(o v1.UserFlagOverride) bool { return same(&o) })
		if !deleted {
			out.Users = append(out.Users, *x)
		}
	case *v1.DeviceFlagOverride:
		out.Devices = slices.DeleteFunc(out.Devices, func(o v1.DeviceFlagOverride) bool { return same(&o) })
		if !deleted {
			out.Devices = append(out.Devices, *x)
		}
	}
	return out
}

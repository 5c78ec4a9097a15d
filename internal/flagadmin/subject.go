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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// Subject is the user or device whose overrides a write changes.
type Subject struct {
	Kind evaluator.SubjectKind
	ID   string
}

func (s Subject) String() string { return fmt.Sprintf("%s %s", s.Kind, strconv.Quote(s.ID)) }

// KindName is the API kind of the subject's overrides.
func (s Subject) KindName() string {
	if s.Kind == evaluator.SubjectDevice {
		return "DeviceFlagOverride"
	}
	return "UserFlagOverride"
}

// Override is an override object and its spec, of either kind.
type Override struct {
	Obj  client.Object
	Spec *v1.FlagOverrideSpec
}

// NewOverride returns a new override object of the subject, named name in namespace ns.
func (s Subject) NewOverride(ns, name string) Override {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	if s.Kind == evaluator.SubjectDevice {
		o := &v1.DeviceFlagOverride{ObjectMeta: meta, Spec: v1.DeviceFlagOverrideSpec{DeviceID: s.ID}}
		return Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec}
	}
	o := &v1.UserFlagOverride{ObjectMeta: meta, Spec: v1.UserFlagOverrideSpec{UserID: s.ID}}
	return Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec}
}

// CopyOf returns a deep copy of o.
func (o Override) CopyOf() Override {
	switch x := o.Obj.(type) {
	case *v1.DeviceFlagOverride:
		c := x.DeepCopy()
		return Override{Obj: c, Spec: &c.Spec.FlagOverrideSpec}
	case *v1.UserFlagOverride:
		c := x.DeepCopy()
		return Override{Obj: c, Spec: &c.Spec.FlagOverrideSpec}
	}
	panic(fmt.Sprintf("not an override: %T", o.Obj))
}

// Wrap returns the Override of a typed object.
func Wrap(obj client.Object) Override {
	switch x := obj.(type) {
	case *v1.DeviceFlagOverride:
		return Override{Obj: x, Spec: &x.Spec.FlagOverrideSpec}
	case *v1.UserFlagOverride:
		return Override{Obj: x, Spec: &x.Spec.FlagOverrideSpec}
	}
	panic(fmt.Sprintf("not an override: %T", obj))
}

// Subject returns the subject of an override object.
func (o Override) Subject() Subject {
	switch x := o.Obj.(type) {
	case *v1.DeviceFlagOverride:
		return Subject{Kind: evaluator.SubjectDevice, ID: x.Spec.DeviceID}
	case *v1.UserFlagOverride:
		return Subject{Kind: evaluator.SubjectUser, ID: x.Spec.UserID}
	}
	return Subject{}
}

// Ref names the override for messages, e.g. UserFlagOverride shop/user-alice.
func (o Override) Ref(s Subject) string {
	return s.KindName() + " " + o.Obj.GetNamespace() + "/" + o.Obj.GetName()
}

// Active reports whether the override applies at now: enabled, not expired, not being
// deleted (as the admission webhook's conflict check has it).
func (o Override) Active(now time.Time) bool {
	return (o.Spec.Enabled == nil || *o.Spec.Enabled) &&
		(o.Spec.ExpiresAt == nil || now.Before(o.Spec.ExpiresAt.Time)) &&
		o.Obj.GetDeletionTimestamp().IsZero()
}

// Entry returns the index of key's entry, or -1.
func (o Override) Entry(key string) int {
	return slices.IndexFunc(o.Spec.Flags, func(e v1.FlagOverrideEntry) bool { return e.Key == key })
}

// OverridesOf returns the subject's override objects of namespace ns, sorted by name.
func (s Subject) OverridesOf(objs *Objects, ns string) []Override {
	var out []Override
	if s.Kind == evaluator.SubjectDevice {
		for i := range objs.Devices {
			if o := &objs.Devices[i]; o.Namespace == ns && o.Spec.DeviceID == s.ID {
				out = append(out, Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec})
			}
		}
	} else {
		for i := range objs.Users {
			if o := &objs.Users[i]; o.Namespace == ns && o.Spec.UserID == s.ID {
				out = append(out, Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec})
			}
		}
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.Obj.GetName(), b.Obj.GetName()) })
	return out
}

// OverridesIn returns the override objects of one kind in namespace ns, in list order.
func OverridesIn(objs *Objects, kind evaluator.SubjectKind, ns string) []Override {
	var out []Override
	if kind == evaluator.SubjectDevice {
		for i := range objs.Devices {
			if objs.Devices[i].Namespace == ns {
				out = append(out, Wrap(&objs.Devices[i]))
			}
		}
		return out
	}
	for i := range objs.Users {
		if objs.Users[i].Namespace == ns {
			out = append(out, Wrap(&objs.Users[i]))
		}
	}
	return out
}

// FindOverride returns the override object of kind and name in namespace ns, if listed.
func FindOverride(objs *Objects, kind evaluator.SubjectKind, ns, name string) (Override, bool) {
	if kind == evaluator.SubjectDevice {
		for i := range objs.Devices {
			if o := &objs.Devices[i]; o.Namespace == ns && o.Name == name {
				return Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec}, true
			}
		}
		return Override{}, false
	}
	for i := range objs.Users {
		if o := &objs.Users[i]; o.Namespace == ns && o.Name == name {
			return Override{Obj: o, Spec: &o.Spec.FlagOverrideSpec}, true
		}
	}
	return Override{}, false
}

// Replaced returns a copy of objs with obj in place of the listed object of its kind and
// name (added when there is none), or without it when deleted is true.
func Replaced(objs *Objects, obj client.Object, deleted bool) *Objects {
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

// nameInvalid matches what a DNS-1123 subdomain may not contain.
var nameInvalid = regexp.MustCompile(`[^a-z0-9.-]+`)

// SubjectObjectName is the name of the override object that set writes for a subject:
// "user-ID" or "device-ID" when that is a valid object name (a DNS-1123 subdomain: lower
// case letters, digits, '-' and '.'), else the id made lower case with every other run of
// characters replaced by '-', cut to 40 characters, and followed by the first 10 hex digits
// of the SHA-256 of the id, so that ids that differ only in case or punctuation get
// different objects.
func SubjectObjectName(kind evaluator.SubjectKind, id string) string {
	prefix := string(kind) + "-"
	if name := prefix + id; len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	s := nameInvalid.ReplaceAllString(strings.ToLower(id), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	s = strings.Trim(s, "-.")
	sum := sha256.Sum256([]byte(id))
	if s == "" {
		return prefix + hex.EncodeToString(sum[:5])
	}
	return prefix + s + "-" + hex.EncodeToString(sum[:5])
}

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
	"context"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
)

// consoleExtra are the user-info extras the console adds for the request in consoleRequest.
var consoleExtra = map[string]authenticationv1.ExtraValue{
	audit.ExtraRoute:     {"PUT /flags/{name}"},
	audit.ExtraSourceIP:  {"203.0.113.7"},
	audit.ExtraUserAgent: {"Mozilla/5.0"},
	"scopes.example.com": {"a", "b"},
}

var consoleRequest = &audit.Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0"}

// withExtra returns r sent with the user-info extras extra.
func withExtra(r admission.Request, extra map[string]authenticationv1.ExtraValue) admission.Request {
	r.UserInfo.Extra = extra
	return r
}

func unitKeys(t *testing.T) *stamp.Keys {
	t.Helper()
	k, err := stamp.ParseKeys([]byte("webhook-unit-stamp-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// applyOps applies the annotation operations of a patch to annotations; it skips the
// others (the audit finalizer of a create).
func applyOps(annotations map[string]string, ops []patchOp) map[string]string {
	out := map[string]string{}
	for k, v := range annotations {
		out[k] = v
	}
	for _, op := range ops {
		switch {
		case !strings.HasPrefix(op.Path, "/metadata/annotations"):
			continue
		case op.Path == "/metadata/annotations":
			out = map[string]string{}
			for k, v := range op.Value.(map[string]any) {
				out[k] = v.(string)
			}
		case op.Op == "remove":
			delete(out, unescapeAnnotation(op.Path))
		default:
			out[unescapeAnnotation(op.Path)] = op.Value.(string)
		}
	}
	return out
}

func unescapeAnnotation(path string) string {
	key := path[len("/metadata/annotations/"):]
	out := []byte{}
	for i := 0; i < len(key); i++ {
		if key[i] == '~' && i+1 < len(key) {
			if key[i+1] == '1' {
				out = append(out, '/')
			} else {
				out = append(out, '~')
			}
			i++
			continue
		}
		out = append(out, key[i])
	}
	return string(out)
}

func TestChangedByStamperSigns(t *testing.T) {
	keys := unitKeys(t)
	h := &changedByStamper{decoder: admission.NewDecoder(unitScheme(t)), keys: keys}
	hashOf := func(f *v1.FeatureFlag) string {
		h, err := controllers.SpecHash(f)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	stored := func(description string, annotations map[string]string) *v1.FeatureFlag {
		f := flagWith(annotations, description)
		f.UID, f.Generation = "uid-1", 4
		return f
	}
	withNames := func(r admission.Request) admission.Request {
		r.Namespace, r.Name = "shop", "beta.x"
		return r
	}
	createStamp := keys.Sign(stamp.ForWrite("FeatureFlag", "shop", "beta.x", "", 1, hashOf(flagWith(nil, "")), "alice"))
	consoleStamp := keys.Sign(stamp.ForWrite("FeatureFlag", "shop", "beta.x", "", 1, hashOf(flagWith(nil, "")), "alice").WithRequest(consoleRequest))
	ipOnlyStamp := keys.Sign(stamp.ForWrite("FeatureFlag", "shop", "beta.x", "", 1, hashOf(flagWith(nil, "")), "alice").
		WithRequest(&audit.Request{SourceIP: "203.0.113.7"}))
	aliceViaConsole := map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: consoleStamp,
		v1.AnnotationChangedByRequest: controllers.RequestAnnotation(consoleRequest)}
	forgedRequest := map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: createStamp,
		v1.AnnotationChangedByRequest: `{"route":"PUT /flags/{name}","sourceIP":"198.51.100.1"}`}
	updateStamp := keys.Sign(stamp.ForWrite("FeatureFlag", "shop", "beta.x", "uid-1", 5, hashOf(flagWith(nil, "new")), "bob"))
	aliceStamped := map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: createStamp}
	tests := []struct {
		name    string
		req     admission.Request
		current map[string]string
		want    map[string]string
		noPatch bool
	}{
		{name: "create: no uid, no generation",
			req:  withNames(request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{})),
			want: aliceStamped},
		{name: "create already stamped and finalized needs no patch",
			req: withNames(request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, func() *v1.FeatureFlag {
				f := flagWith(aliceStamped, "")
				f.Finalizers = []string{v1.FinalizerAudit}
				return f
			}()), runtime.RawExtension{})),
			current: aliceStamped, want: aliceStamped, noPatch: true},
		{name: "create with the right name and a forged stamp",
			req: withNames(request(admissionv1.Create, "FeatureFlag", "alice",
				rawOf(t, flagWith(map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: "v1.forged"}, "")), runtime.RawExtension{})),
			current: map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: "v1.forged"}, want: aliceStamped},
		{name: "update of the spec: the replaced object's uid and generation",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "bob",
				rawOf(t, stored("new", aliceStamped)), rawOf(t, stored("old", aliceStamped)))),
			current: aliceStamped, want: map[string]string{v1.AnnotationChangedBy: "bob", v1.AnnotationChangedByStamp: updateStamp}},
		{name: "metadata-only update that forges the stamp is undone",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, stored("", map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: "v1.forged"})), rawOf(t, stored("", aliceStamped)))),
			current: map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: "v1.forged"}, want: aliceStamped},
		{name: "metadata-only update that removes every annotation is undone",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, stored("", nil)), rawOf(t, stored("", aliceStamped)))),
			want: aliceStamped},
		{name: "metadata-only update that adds a stamp the object never had",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, stored("", map[string]string{v1.AnnotationChangedByStamp: "v1.x", "a": "b"})), rawOf(t, stored("", map[string]string{"a": "b"})))),
			current: map[string]string{v1.AnnotationChangedByStamp: "v1.x", "a": "b"}, want: map[string]string{"a": "b"}},
		{name: "create through the console: the request is written and signed",
			req:  withNames(withExtra(request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}), consoleExtra)),
			want: aliceViaConsole},
		{name: "create with bad extras: only the acceptable ones are kept, the write goes through",
			req: withNames(withExtra(request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}),
				map[string]authenticationv1.ExtraValue{audit.ExtraSourceIP: {"203.0.113.7"}, audit.ExtraRoute: {"PUT /a", "PUT /b"}, audit.ExtraUserAgent: {"bad\nagent"}})),
			want: map[string]string{v1.AnnotationChangedBy: "alice", v1.AnnotationChangedByStamp: ipOnlyStamp,
				v1.AnnotationChangedByRequest: `{"sourceIP":"203.0.113.7"}`}},
		{name: "create with a request written by hand and no extras: removed",
			req:     withNames(request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(forgedRequest, "")), runtime.RawExtension{})),
			current: forgedRequest, want: aliceStamped},
		{name: "update of the spec without extras removes the console's request",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "bob",
				rawOf(t, stored("new", aliceViaConsole)), rawOf(t, stored("old", aliceViaConsole)))),
			current: aliceViaConsole, want: map[string]string{v1.AnnotationChangedBy: "bob", v1.AnnotationChangedByStamp: updateStamp}},
		{name: "metadata-only update that forges the request is undone",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, stored("", forgedRequest)), rawOf(t, stored("", aliceViaConsole)))),
			current: forgedRequest, want: aliceViaConsole},
		{name: "metadata-only update that adds a request is undone",
			req: withNames(request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, stored("", forgedRequest)), rawOf(t, stored("", aliceStamped)))),
			current: forgedRequest, want: aliceStamped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := patchOps(t, h.Handle(context.Background(), tt.req))
			if tt.noPatch != (len(ops) == 0) {
				t.Fatalf("patch %+v, want a patch: %v", ops, !tt.noPatch)
			}
			got := applyOps(tt.current, ops)
			if len(got) != len(tt.want) {
				t.Fatalf("annotations %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	// The controllers verify what the webhook signed against the stored versions: the
	// create at generation 1, the update at generation 5.
	created := flagWith(aliceStamped, "")
	created.UID, created.Generation = "uid-1", 1
	if a, _ := (controllers.Actors{Keys: keys}).Of(context.Background(), controllers.KindFeatureFlag, created); !a.Verified || a.Username != "alice" {
		t.Errorf("the create stamp does not verify for the stored object: %+v", a)
	}
	viaConsole := flagWith(aliceViaConsole, "")
	viaConsole.UID, viaConsole.Generation = "uid-1", 1
	if a, r := (controllers.Actors{Keys: keys}).Of(context.Background(), controllers.KindFeatureFlag, viaConsole); !a.Verified || a.Username != "alice" ||
		r == nil || *r != *consoleRequest {
		t.Errorf("the console's create stamp does not verify for the stored object: %+v, %+v", a, r)
	}
}

func TestDeletedByStamperSigns(t *testing.T) {
	f := newDeletionFixture(t, nil)
	keys := unitKeys(t)
	f.h.keys = keys
	stored := func() *v1.UserFlagOverride {
		o := &v1.UserFlagOverride{}
		if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(f.obj), o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	// A forged name and stamp are replaced.
	forged := stored()
	forged.Annotations = map[string]string{v1.AnnotationDeletedBy: "dave", v1.AnnotationDeletedByStamp: "v1.forged"}
	if err := f.c.Update(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	f.patches = 0
	if resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", stored())); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	got := stored()
	want := keys.Sign(stamp.ForDelete("UserFlagOverride", "shop", "pilot", "uid-1", "dave"))
	if got.Annotations[v1.AnnotationDeletedByStamp] != want || got.Annotations[v1.AnnotationDeletedBy] != "dave" {
		t.Errorf("annotations = %v, want dave with stamp %q", got.Annotations, want)
	}
	if a, _ := (controllers.Actors{Keys: keys}).OfDeletion(context.Background(), controllers.KindUserFlagOverride, got); !a.Verified || a.Username != "dave" {
		t.Errorf("the delete stamp does not verify: %+v", a)
	}
	// Called again after its own patch, it does not patch again.
	if resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", got)); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if f.patches != 1 {
		t.Errorf("patches = %d, want 1", f.patches)
	}
}

// TestDeletedByStamperRequest: a deletion through the console writes and signs its request;
// one without extras removes a request written by hand.
func TestDeletedByStamperRequest(t *testing.T) {
	keys := unitKeys(t)
	stored := func(f *deletionFixture) *v1.UserFlagOverride {
		o := &v1.UserFlagOverride{}
		if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(f.obj), o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	forged := `{"sourceIP":"198.51.100.1"}`
	tests := []struct {
		name    string
		extra   map[string]authenticationv1.ExtraValue
		written string // a request annotation on the object before the deletion
		want    *audit.Request
	}{
		{name: "through the console", extra: consoleExtra, want: consoleRequest},
		{name: "through the console, over a request written by hand", extra: consoleExtra, written: forged, want: consoleRequest},
		{name: "without extras, over a request written by hand", written: forged},
		{name: "without extras", extra: map[string]authenticationv1.ExtraValue{audit.ExtraSourceIP: {"not an address"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDeletionFixture(t, nil)
			f.h.keys = keys
			if tt.written != "" {
				o := stored(f)
				o.Annotations = map[string]string{v1.AnnotationDeletedBy: "dave", v1.AnnotationDeletedByRequest: tt.written}
				if err := f.c.Update(context.Background(), o); err != nil {
					t.Fatal(err)
				}
			}
			if resp := f.h.Handle(context.Background(), withExtra(f.deleteRequest(t, "dave", stored(f)), tt.extra)); !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			got := stored(f)
			if want := controllers.RequestAnnotation(tt.want); got.Annotations[v1.AnnotationDeletedByRequest] != want {
				t.Errorf("%s = %q, want %q", v1.AnnotationDeletedByRequest, got.Annotations[v1.AnnotationDeletedByRequest], want)
			}
			a, r := (controllers.Actors{Keys: keys, APIReader: f.c}).OfDeletion(context.Background(), controllers.KindUserFlagOverride, got)
			if !a.Verified || a.Username != "dave" || !reflect.DeepEqual(r, tt.want) {
				t.Errorf("OfDeletion = %+v, %+v, want dave verified with %+v", a, r, tt.want)
			}
			// Called again after its own patch, it does not patch again.
			patches := f.patches
			if resp := f.h.Handle(context.Background(), withExtra(f.deleteRequest(t, "dave", got), tt.extra)); !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if f.patches != patches {
				t.Errorf("patched again")
			}
		})
	}
}

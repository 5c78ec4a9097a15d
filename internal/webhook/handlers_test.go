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
	"encoding/json"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// unitScheme is the scheme of the unit tests, which do not start the envtest suite.
func unitScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func rawOf(t *testing.T, obj any) runtime.RawExtension {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: raw}
}

// request builds an admission request for a flagops kind.
func request(op admissionv1.Operation, kind, user string, obj, old runtime.RawExtension) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("req-1"),
		Kind:      metav1.GroupVersionKind{Group: "flagops.dev", Version: "v1alpha1", Kind: kind},
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: user},
		Object:    obj,
		OldObject: old,
	}}
}

// patchOps decodes the JSON Patch of a response.
func patchOps(t *testing.T, resp admission.Response) []patchOp {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("the request was denied: %+v", resp.Result)
	}
	if len(resp.Patch) == 0 {
		return nil
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type = %v, want JSONPatch", resp.PatchType)
	}
	var ops []patchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	return ops
}

func flagWith(annotations map[string]string, description string) *v1.FeatureFlag {
	f := &v1.FeatureFlag{
		TypeMeta:   metav1.TypeMeta{APIVersion: "flagops.dev/v1alpha1", Kind: "FeatureFlag"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "beta.x", Annotations: annotations},
		Spec:       v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Description: description},
	}
	return f
}

func TestChangedByStamper(t *testing.T) {
	h := &changedByStamper{decoder: admission.NewDecoder(unitScheme(t))}
	garbage := runtime.RawExtension{Raw: []byte("{not json")}
	stamped := map[string]string{v1.AnnotationChangedBy: "alice"}
	finalized := func(f *v1.FeatureFlag, finalizers ...string) *v1.FeatureFlag {
		f.Finalizers = finalizers
		return f
	}
	addFinalizer := patchOp{Op: "add", Path: "/metadata/finalizers", Value: []any{v1.FinalizerAudit}}
	tests := []struct {
		name string
		req  admission.Request
		want []patchOp
	}{
		{
			name: "create without annotations adds the map and the audit finalizer",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}),
			want: []patchOp{{Op: "add", Path: "/metadata/annotations", Value: map[string]any{v1.AnnotationChangedBy: "alice"}}, addFinalizer},
		},
		{
			name: "create with other annotations adds the key and the audit finalizer",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(map[string]string{"a": "b"}, "")), runtime.RawExtension{}),
			want: []patchOp{{Op: "add", Path: "/metadata/annotations/flagops.dev~1changed-by", Value: "alice"}, addFinalizer},
		},
		{
			name: "create already stamped by the same user gets the audit finalizer",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(stamped, "")), runtime.RawExtension{}),
			want: []patchOp{addFinalizer},
		},
		{
			name: "create with another finalizer appends the audit finalizer",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, finalized(flagWith(stamped, ""), "example.com/keep")), runtime.RawExtension{}),
			want: []patchOp{{Op: "add", Path: "/metadata/finalizers/-", Value: v1.FinalizerAudit}},
		},
		{
			name: "create stamped and with the audit finalizer",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, finalized(flagWith(stamped, ""), v1.FinalizerAudit)), runtime.RawExtension{}),
		},
		{
			name: "update of the spec adds no finalizer",
			req:  request(admissionv1.Update, "FeatureFlag", "bob", rawOf(t, flagWith(nil, "new")), rawOf(t, flagWith(nil, "old"))),
			want: []patchOp{{Op: "add", Path: "/metadata/annotations", Value: map[string]any{v1.AnnotationChangedBy: "bob"}}},
		},
		{
			name: "update of the spec",
			req:  request(admissionv1.Update, "FeatureFlag", "bob", rawOf(t, flagWith(stamped, "new")), rawOf(t, flagWith(stamped, "old"))),
			want: []patchOp{{Op: "add", Path: "/metadata/annotations/flagops.dev~1changed-by", Value: "bob"}},
		},
		{
			name: "metadata-only update",
			req:  request(admissionv1.Update, "FeatureFlag", "carol", rawOf(t, flagWith(stamped, "")), rawOf(t, flagWith(stamped, ""))),
		},
		{
			name: "metadata-only update that forges the stamp",
			req: request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, flagWith(map[string]string{v1.AnnotationChangedBy: "mallory"}, "")), rawOf(t, flagWith(stamped, ""))),
			want: []patchOp{{Op: "add", Path: "/metadata/annotations/flagops.dev~1changed-by", Value: "alice"}},
		},
		{
			name: "metadata-only update that adds a stamp the object never had",
			req: request(admissionv1.Update, "FeatureFlag", "carol",
				rawOf(t, flagWith(map[string]string{v1.AnnotationChangedBy: "mallory"}, "")), rawOf(t, flagWith(nil, ""))),
			want: []patchOp{{Op: "remove", Path: "/metadata/annotations/flagops.dev~1changed-by"}},
		},
		{
			name: "another group",
			req: func() admission.Request {
				r := request(admissionv1.Create, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{})
				r.Kind.Group = "example.com"
				return r
			}(),
		},
		{
			name: "another kind",
			req:  request(admissionv1.Create, "ConfigMap", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}),
		},
		{
			name: "no user name",
			req:  request(admissionv1.Create, "FeatureFlag", "", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}),
		},
		{
			name: "undecodable object",
			req:  request(admissionv1.Create, "FeatureFlag", "alice", garbage, runtime.RawExtension{}),
		},
		{
			name: "undecodable old object",
			req:  request(admissionv1.Update, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), garbage),
		},
		{
			name: "other operations",
			req:  request(admissionv1.Connect, "FeatureFlag", "alice", rawOf(t, flagWith(nil, "")), runtime.RawExtension{}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := patchOps(t, h.Handle(context.Background(), tt.req))
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("patch = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

// deletionFixture is a deletedByStamper on a fake API server holding one override.
type deletionFixture struct {
	h       *deletedByStamper
	c       client.Client
	obj     *v1.UserFlagOverride
	patches int
}

func newDeletionFixture(t *testing.T, patch func(n int, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error) *deletionFixture {
	t.Helper()
	s := unitScheme(t)
	obj := userOverride("shop", "pilot", "user-1", on("beta.x"))
	obj.UID = "uid-1"
	f := &deletionFixture{obj: obj}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(obj.DeepCopy()).
		WithInterceptorFuncs(interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			f.patches++
			if patch != nil {
				return patch(f.patches, c, obj, p, opts...)
			}
			return c.Patch(ctx, obj, p, opts...)
		}}).Build()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), f.obj); err != nil {
		t.Fatal(err)
	}
	f.c = c
	f.h = &deletedByStamper{decoder: admission.NewDecoder(s), client: c, reader: c}
	return f
}

func (f *deletionFixture) deleteRequest(t *testing.T, user string, old client.Object) admission.Request {
	t.Helper()
	return request(admissionv1.Delete, "UserFlagOverride", user, runtime.RawExtension{}, rawOf(t, old))
}

func (f *deletionFixture) deletedBy(t *testing.T) string {
	t.Helper()
	got := &v1.UserFlagOverride{}
	if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(f.obj), got); err != nil {
		t.Fatal(err)
	}
	return got.Annotations[v1.AnnotationDeletedBy]
}

func TestDeletedByStamperStamps(t *testing.T) {
	f := newDeletionFixture(t, nil)
	resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", f.obj))
	if !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if got := f.deletedBy(t); got != "dave" {
		t.Errorf("deleted-by = %q, want dave", got)
	}
	// The API server calls again after the patch: no second patch.
	fresh := &v1.UserFlagOverride{}
	if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(f.obj), fresh); err != nil {
		t.Fatal(err)
	}
	if resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", fresh)); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if f.patches != 1 {
		t.Errorf("patches = %d, want 1", f.patches)
	}
}

func TestDeletedByStamperSkips(t *testing.T) {
	deleting := func(f *deletionFixture) client.Object {
		o := f.obj.DeepCopy()
		o.DeletionTimestamp = &metav1.Time{Time: metav1.Now().Time}
		return o
	}
	tests := []struct {
		name string
		req  func(t *testing.T, f *deletionFixture) admission.Request
	}{
		{"dry run", func(t *testing.T, f *deletionFixture) admission.Request {
			r := f.deleteRequest(t, "dave", f.obj)
			r.DryRun = new(bool)
			*r.DryRun = true
			return r
		}},
		{"not a deletion", func(t *testing.T, f *deletionFixture) admission.Request {
			return request(admissionv1.Update, "UserFlagOverride", "dave", rawOf(t, f.obj), rawOf(t, f.obj))
		}},
		{"not a flagops kind", func(t *testing.T, f *deletionFixture) admission.Request {
			r := f.deleteRequest(t, "dave", f.obj)
			r.Kind.Kind = "Secret"
			return r
		}},
		{"no user name", func(t *testing.T, f *deletionFixture) admission.Request { return f.deleteRequest(t, "", f.obj) }},
		{"undecodable object", func(t *testing.T, f *deletionFixture) admission.Request {
			return request(admissionv1.Delete, "UserFlagOverride", "dave", runtime.RawExtension{}, runtime.RawExtension{Raw: []byte("{")})
		}},
		{"already being deleted", func(t *testing.T, f *deletionFixture) admission.Request {
			return f.deleteRequest(t, "dave", deleting(f))
		}},
		{"resourceVersion precondition", func(t *testing.T, f *deletionFixture) admission.Request {
			r := f.deleteRequest(t, "dave", f.obj)
			rv := f.obj.ResourceVersion
			r.Options = rawOf(t, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDeletionFixture(t, nil)
			resp := f.h.Handle(context.Background(), tt.req(t, f))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if f.patches != 0 || f.deletedBy(t) != "" {
				t.Errorf("patches = %d, deleted-by = %q; want no stamp", f.patches, f.deletedBy(t))
			}
		})
	}
}

func TestDeletedByStamperUIDPreconditionStillStamps(t *testing.T) {
	f := newDeletionFixture(t, nil)
	r := f.deleteRequest(t, "dave", f.obj)
	uid := f.obj.UID
	r.Options = rawOf(t, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if resp := f.h.Handle(context.Background(), r); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if got := f.deletedBy(t); got != "dave" {
		t.Errorf("deleted-by = %q, want dave", got)
	}
}

func TestDeletedByStamperNeverBlocks(t *testing.T) {
	f := newDeletionFixture(t, func(int, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "flagops.dev", Resource: "userflagoverrides"}, "pilot", errors.New("no"))
	})
	resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", f.obj))
	if !resp.Allowed {
		t.Fatalf("a failed stamp denied the deletion: %+v", resp.Result)
	}
	if !strings.Contains(resp.Result.Message, "could not be recorded") {
		t.Errorf("message = %q", resp.Result.Message)
	}
}

func TestDeletedByStamperRetriesAfterConflict(t *testing.T) {
	f := newDeletionFixture(t, func(n int, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		if n == 1 {
			return apierrors.NewConflict(schema.GroupResource{Group: "flagops.dev", Resource: "userflagoverrides"}, "pilot", errors.New("changed"))
		}
		return c.Patch(context.Background(), obj, p, opts...)
	})
	if resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", f.obj)); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if f.patches != 2 || f.deletedBy(t) != "dave" {
		t.Errorf("patches = %d, deleted-by = %q; want 2 and dave", f.patches, f.deletedBy(t))
	}
}

func TestDeletedByStamperLeavesARecreatedObjectAlone(t *testing.T) {
	f := newDeletionFixture(t, func(n int, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		return apierrors.NewConflict(schema.GroupResource{Group: "flagops.dev", Resource: "userflagoverrides"}, "pilot", errors.New("changed"))
	})
	old := f.obj.DeepCopy()
	old.UID = "uid-of-an-earlier-object"
	if resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", old)); !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if f.patches != 1 {
		t.Errorf("patches = %d, want 1: the object read after the conflict is another one", f.patches)
	}
}

func TestDeletedByStamperObjectGone(t *testing.T) {
	f := newDeletionFixture(t, func(int, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
		return apierrors.NewNotFound(schema.GroupResource{Group: "flagops.dev", Resource: "userflagoverrides"}, "pilot")
	})
	resp := f.h.Handle(context.Background(), f.deleteRequest(t, "dave", f.obj))
	if !resp.Allowed || !strings.Contains(resp.Result.Message, "stamped") {
		t.Fatalf("resp = %+v", resp.Result)
	}
}

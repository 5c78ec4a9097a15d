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

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/internal/stamp"
)

// The changed-by webhook only ever adds a JSON Patch for its annotations and, at create, the
// audit finalizer, and never denies a request: when it is down (failurePolicy Ignore), edits
// still go through, the audit trail records them with an unverified actor (managedFields as
// a hint), and the controllers add the finalizer.
//
// +kubebuilder:webhook:path=/mutate-flagops-dev-v1alpha1-changed-by,mutating=true,failurePolicy=ignore,sideEffects=None,groups=flagops.dev,resources=featureflags;userflagoverrides;deviceflagoverrides,verbs=create;update,versions=v1alpha1,name=mchangedby.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=5,reinvocationPolicy=Never,serviceName=flagops-webhook-service,serviceNamespace=flagops-system

// changedByStamper adds the audit finalizer to every object created by a named user (one
// write fewer for the controllers per object, which counts in a bulk import), and stamps
// flagops.dev/changed-by with the requesting user: on every create, and on every update that
// changes the spec (the changes that move metadata.generation and that the audit trail
// records). An update that leaves the spec alone, such as the
// controllers' own finalizer patches or a label added by a tool, keeps the stamp of the
// last spec change; if such an update edits or removes the annotation itself, the webhook
// puts it back, so that the stamp cannot be changed without a spec change.
//
// A write made through flagops' console carries the console's request (route, source IP,
// user agent) in the user's extras (audit.ExtraRoute, …): the webhook writes it, as JSON,
// into flagops.dev/changed-by-request, and removes that annotation from a write without
// one.
//
// With stamp keys it also writes flagops.dev/changed-by-stamp, the signature of
// stamp.ForWrite: the user, the object's kind, namespace and name, the SHA-256 of the spec
// being written, at update the UID and generation of the object being replaced, and the
// console's request. (At create the API server assigns the UID and generation only after
// admission.) The signature and the request are kept and restored with the name.
type changedByStamper struct {
	decoder admission.Decoder
	// keys sign the stamps; nil writes the name only.
	keys *stamp.Keys
}

// changedByAnnotations are the annotations the changed-by webhook owns.
var changedByAnnotations = []string{v1.AnnotationChangedBy, v1.AnnotationChangedByStamp, v1.AnnotationChangedByRequest}

// Handle implements admission.Handler.
func (h *changedByStamper) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx)
	kind, ok := kindOf(req)
	if !ok {
		return admission.Allowed("not a flagops object")
	}
	by := requesterOf(req)
	if by.user == "" {
		return admission.Allowed("the request has no user name to record")
	}
	obj := kind.NewObject()
	if err := h.decoder.Decode(req, obj); err != nil {
		// Never block an edit for the sake of the audit trail.
		log.Error(err, "Unable to decode the object; not stamping it", "annotation", v1.AnnotationChangedBy)
		return admission.Allowed("the object could not be decoded; not stamped")
	}
	annotations := obj.GetAnnotations()

	switch req.Operation {
	case admissionv1.Create:
		ops := h.stampChangedBy(ctx, annotations, kind, req, "", 1, obj, by)
		ops = append(ops, addAuditFinalizer(obj)...)
		if len(ops) == 0 {
			return admission.Allowed("already stamped")
		}
		return patched("stamped "+v1.AnnotationChangedBy, ops...)
	case admissionv1.Update:
		old := kind.NewObject()
		if err := h.decoder.DecodeRaw(req.OldObject, old); err != nil {
			log.Error(err, "Unable to decode the old object; not stamping it", "annotation", v1.AnnotationChangedBy)
			return admission.Allowed("the old object could not be decoded; not stamped")
		}
		if !equality.Semantic.DeepEqual(specOf(old), specOf(obj)) {
			// The API server moves the generation on by one for this write.
			ops := h.stampChangedBy(ctx, annotations, kind, req, string(old.GetUID()), old.GetGeneration()+1, obj, by)
			if len(ops) == 0 {
				return admission.Allowed("already stamped")
			}
			return patched("stamped "+v1.AnnotationChangedBy, ops...)
		}
		return keepChangedBy(old.GetAnnotations(), annotations)
	default:
		return admission.Allowed("")
	}
}

// stampChangedBy returns the operations that set the annotations to the user, the
// console's request if any and, with keys, their stamp for the write that produces
// generation of obj, and that remove the ones it does not set.
func (h *changedByStamper) stampChangedBy(ctx context.Context, annotations map[string]string, kind controllers.Kind, req admission.Request,
	uid string, generation int64, obj client.Object, by requester) []patchOp {
	want := map[string]string{v1.AnnotationChangedBy: by.user}
	if r := controllers.RequestAnnotation(by.request); r != "" {
		want[v1.AnnotationChangedByRequest] = r
	}
	if h.keys != nil {
		hash, err := controllers.SpecHash(obj)
		if err != nil {
			// Typed specs always marshal; stamp the name alone rather than block the edit.
			logf.FromContext(ctx).Error(err, "Unable to hash the spec; not signing the stamp")
		} else {
			want[v1.AnnotationChangedByStamp] = h.keys.Sign(stamp.ForWrite(string(kind), req.Namespace, req.Name, uid, generation, hash, by.user).
				WithRequest(by.request))
		}
	}
	return restoreAnnotations(want, annotations, changedByAnnotations...)
}

// addAuditFinalizer returns the operations that add the audit finalizer to an object being
// created, so that the controllers need no write of their own for it (they still add it to
// an object created while this webhook was down).
func addAuditFinalizer(obj client.Object) []patchOp {
	switch {
	case controllerutil.ContainsFinalizer(obj, v1.FinalizerAudit):
		return nil
	case len(obj.GetFinalizers()) == 0:
		return []patchOp{{Op: "add", Path: "/metadata/finalizers", Value: []string{v1.FinalizerAudit}}}
	default:
		return []patchOp{{Op: "add", Path: "/metadata/finalizers/-", Value: v1.FinalizerAudit}}
	}
}

// keepChangedBy undoes a change to the webhook's annotations made by an update that leaves
// the spec alone.
func keepChangedBy(old, cur map[string]string) admission.Response {
	ops := restoreAnnotations(old, cur, changedByAnnotations...)
	if len(ops) == 0 {
		return admission.Allowed("the spec did not change")
	}
	return patched("restored "+v1.AnnotationChangedBy, ops...)
}

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
	"fmt"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/internal/stamp"
)

// The deleted-by webhook never denies a deletion: it is a separate webhook with
// failurePolicy Ignore, so that a down webhook never blocks deletes, and it allows the
// request even when it could not stamp the object. Its patch is a side effect, which it skips
// on dry-run requests (sideEffects NoneOnDryRun).
//
// +kubebuilder:webhook:path=/validate-flagops-dev-v1alpha1-deleted-by,mutating=false,failurePolicy=ignore,sideEffects=NoneOnDryRun,groups=flagops.dev,resources=featureflags;userflagoverrides;deviceflagoverrides,verbs=delete,versions=v1alpha1,name=vdeletedby.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,serviceName=flagops-webhook-service,serviceNamespace=flagops-system

// deletedByPatchTimeout bounds the patch, well within the webhook's timeoutSeconds.
const deletedByPatchTimeout = 5 * time.Second

// deletedByStamper records who deletes a flagops object. Admission cannot mutate an object
// that is being deleted, so on DELETE it patches annotations onto the object with the
// manager's client (field owner flagops-manager) before the API server goes on with the
// deletion: flagops.dev/deleted-by, the console's request from the user's extras in
// flagops.dev/deleted-by-request (removed when there is none) and, with keys,
// flagops.dev/deleted-by-stamp, the signature of stamp.ForDelete (the user, the object's
// kind, namespace, name and UID, and the request). The audit finalizer keeps the object
// until the controllers have recorded the deletion, so they read the annotations from the
// object they audit.
//
// The API server calls the webhook again when the object changed under the deletion (the
// patch itself changes it). The object then already names the deleter, and the webhook does
// not patch it again, so the deletion goes through on the second attempt.
type deletedByStamper struct {
	decoder admission.Decoder
	// client writes the patch.
	client client.Client
	// reader reads the object from the API server after a conflict.
	reader client.Reader
	// keys sign flagops.dev/deleted-by-stamp; nil writes the name only.
	keys *stamp.Keys
}

// Handle implements admission.Handler.
func (h *deletedByStamper) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx)
	kind, ok := kindOf(req)
	if !ok || req.Operation != admissionv1.Delete {
		return admission.Allowed("")
	}
	if req.DryRun != nil && *req.DryRun {
		return admission.Allowed("dry run: not stamped")
	}
	by := requesterOf(req)
	if by.user == "" {
		return admission.Allowed("the request has no user name to record")
	}
	obj := kind.NewObject()
	if err := h.decoder.DecodeRaw(req.OldObject, obj); err != nil {
		log.Error(err, "Unable to decode the object being deleted; not stamping it", "annotation", v1.AnnotationDeletedBy)
		return admission.Allowed("the object could not be decoded; not stamped")
	}
	if reason := h.skipStamp(kind, obj, by); reason != "" {
		return admission.Allowed(reason)
	}
	if req.Options.Raw != nil {
		var opts metav1.DeleteOptions
		if err := json.Unmarshal(req.Options.Raw, &opts); err == nil &&
			opts.Preconditions != nil && opts.Preconditions.ResourceVersion != nil {
			// The patch would change the resourceVersion and fail the deletion.
			log.V(1).Info("Not stamping: the deletion has a resourceVersion precondition", "annotation", v1.AnnotationDeletedBy)
			return admission.Allowed("the deletion has a resourceVersion precondition; not stamped")
		}
	}

	ctx, cancel := context.WithTimeout(ctx, deletedByPatchTimeout)
	defer cancel()
	if err := h.stamp(ctx, kind, obj, by); err != nil {
		// Never block a deletion for the sake of the audit trail.
		log.Error(err, "Unable to record the deleter; the deletion goes ahead", "annotation", v1.AnnotationDeletedBy, "user", by.user)
		return admission.Allowed("the deleter could not be recorded")
	}
	return admission.Allowed("stamped " + v1.AnnotationDeletedBy)
}

// skipStamp says why obj needs no stamp, or returns "".
func (h *deletedByStamper) skipStamp(kind controllers.Kind, obj client.Object, by requester) string {
	switch {
	case !obj.GetDeletionTimestamp().IsZero():
		// A deletion is already under way; the first deleter is the one on record.
		return "already being deleted"
	case hasAll(obj.GetAnnotations(), h.want(kind, obj, by)):
		return "already stamped"
	default:
		return ""
	}
}

// want returns the annotations that record by as the deleter of obj, "" for one that must
// be absent.
func (h *deletedByStamper) want(kind controllers.Kind, obj client.Object, by requester) map[string]string {
	m := map[string]string{
		v1.AnnotationDeletedBy:        by.user,
		v1.AnnotationDeletedByRequest: controllers.RequestAnnotation(by.request),
		v1.AnnotationDeletedByStamp:   "",
	}
	if h.keys != nil {
		m[v1.AnnotationDeletedByStamp] = h.keys.Sign(stamp.ForDelete(string(kind), obj.GetNamespace(), obj.GetName(), string(obj.GetUID()), by.user).
			WithRequest(by.request))
	}
	return m
}

// hasAll reports whether annotations has every member of want with its value, and none of
// those whose value is "".
func hasAll(annotations, want map[string]string) bool {
	for k, v := range want {
		if annotations[k] != v {
			return false
		}
	}
	return true
}

// stamp patches the annotation onto obj. The patch carries the resourceVersion, so it never
// lands on a newer version (or a re-created object of the same name) unchecked; after a
// conflict the object is read again and checked.
func (h *deletedByStamper) stamp(ctx context.Context, kind controllers.Kind, obj client.Object, by requester) error {
	uid := obj.GetUID()
	first := true
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			fresh := kind.NewObject()
			if err := h.reader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
				return client.IgnoreNotFound(err)
			}
			if fresh.GetUID() != uid || h.skipStamp(kind, fresh, by) != "" {
				return nil
			}
			obj = fresh
		}
		first = false
		annotations := map[string]any{}
		for k, v := range h.want(kind, obj, by) {
			annotations[k] = v
			if v == "" {
				annotations[k] = nil // removed by the merge patch
			}
		}
		patch := map[string]any{"metadata": map[string]any{
			"resourceVersion": obj.GetResourceVersion(),
			"annotations":     annotations,
		}}
		raw, err := json.Marshal(patch)
		if err != nil {
			return fmt.Errorf("failed to build the patch: %w", err)
		}
		err = h.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(controllers.FieldOwner))
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

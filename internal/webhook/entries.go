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
	"net/http"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/internal/entries"
)

// The entries webhook rejects the override entries of seed 000's PATCH habits, a null value
// and a repeated key, with messages that say what to do (package internal/entries). It is
// a mutating webhook that never mutates: the API server calls mutating webhooks before it
// validates the object against the CRD schema, and the schema would otherwise report a
// repeated key first, with its generic "Duplicate value" message. It fails closed, like the
// validating webhooks, and config/default gives it the same match condition, so that
// metadata-only updates do not depend on it.
//
// +kubebuilder:webhook:path=/mutate-flagops-dev-v1alpha1-override-entries,mutating=true,failurePolicy=fail,sideEffects=None,groups=flagops.dev,resources=userflagoverrides;deviceflagoverrides,verbs=create;update,versions=v1alpha1,name=moverrideentries.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,reinvocationPolicy=Never,serviceName=flagops-webhook-service,serviceNamespace=flagops-system

// entriesChecker denies a create or a spec-changing update of an override whose spec.flags
// has a null value, an entry with its key alone, or a repeated key. It reads the raw JSON
// of the request: typed decoding turns a null value into no value.
type entriesChecker struct{}

// Handle implements admission.Handler.
func (entriesChecker) Handle(ctx context.Context, req admission.Request) admission.Response {
	kind, ok := kindOf(req)
	if !ok || kind == controllers.KindFeatureFlag {
		return admission.Allowed("not an override")
	}
	var obj map[string]any
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		logf.FromContext(ctx).Error(err, "Unable to decode the object", "kind", kind)
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Update {
		var old map[string]any
		if err := json.Unmarshal(req.OldObject.Raw, &old); err == nil && reflect.DeepEqual(old["spec"], obj["spec"]) {
			return admission.Allowed("the spec did not change")
		}
	}
	errs := entries.Check(obj)
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	return invalid(kind, req.Name, errs)
}

// invalid denies a request as apierrors.NewInvalid does (422, reason Invalid, a cause per
// error), with each error's own message in place of the field.Error format, so that the
// message reads e.g. `spec.flags[3].key: duplicate of spec.flags[1].key`.
func invalid(kind controllers.Kind, name string, errs []*entries.Error) admission.Response {
	causes := make([]metav1.StatusCause, 0, len(errs))
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.Error(), Field: e.Field})
		msgs = append(msgs, e.Error())
	}
	msg := msgs[0]
	if len(msgs) > 1 {
		msg = "[" + strings.Join(msgs, ", ") + "]"
	}
	gk := groupKind(kind)
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusUnprocessableEntity,
			Reason:  metav1.StatusReasonInvalid,
			Message: gk.Kind + "." + gk.Group + " " + `"` + name + `" is invalid: ` + msg,
			Details: &metav1.StatusDetails{Name: name, Group: gk.Group, Kind: gk.Kind, Causes: causes},
		},
	}}
}

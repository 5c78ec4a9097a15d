package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/flagops/flagops/evaluator"
)

// overrideView is an override entry that applies to the subject of an
// admin view: its object, what it serves, until when and why (seed 001's
// getOverrideInfo).
type overrideView struct {
	Key       string              `json:"key"`
	Object    evaluator.ObjectRef `json:"object"`
	Source    string              `json:"source"`
	CreatedAt string              `json:"createdAt"`
	ExpiresAt string              `json:"expiresAt,omitempty"`
	Reason    string              `json:"reason,omitempty"`
	Mode      string              `json:"mode"`
	Value     json.RawMessage     `json:"value,omitempty"`
	// Applied is false when the entry does not decide the flag for the
	// view's context: a step before it decided (a device override, the
	// role gate), or the device's class is not eligible.
	Applied bool `json:"applied"`
}

// effectiveFlag is one flag of an admin view: the result for the view's
// context and where it comes from.
type effectiveFlag struct {
	Value   json.RawMessage `json:"value,omitempty"`
	Enabled bool            `json:"enabled"`
	Variant string          `json:"variant,omitempty"`
	Reason  string          `json:"reason"`
	Source  string          `json:"source,omitempty"`
	// SourceKind is the resolution step that decided: default,
	// kill-switch, role-gate, allow-list, rule, rollout, schedule,
	// user-override, device-override or error.
	SourceKind string `json:"sourceKind"`
	// Hidden is true when the role gate decided: bulk evaluation leaves
	// the flag out for this context.
	Hidden       bool   `json:"hidden,omitempty"`
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorDetails string `json:"errorDetails,omitempty"`
	// Override is the override entry that decided the flag.
	Override *overrideView `json:"override,omitempty"`
}

// effectiveView is the body of GET /v1/users/{userId}/flags and GET
// /v1/devices/{deviceId}/flags.
type effectiveView struct {
	Namespace string                   `json:"namespace"`
	Revision  uint64                   `json:"revision"`
	UserID    string                   `json:"userId,omitempty"`
	DeviceID  string                   `json:"deviceId,omitempty"`
	Context   evaluator.Context        `json:"context"`
	Flags     map[string]effectiveFlag `json:"flags"`
	// Overrides lists every override entry that applies to the device
	// (first) and the user now, sorted by key within each.
	Overrides []overrideView `json:"overrides"`
}

const timeFormat = "2006-01-02T15:04:05.999999999Z07:00"

// userFlags serves GET /v1/users/{userId}/flags, an admin route.
func (s *server) userFlags(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	s.effectiveView(w, r, ns, evaluator.AttrUserID, "user", r.PathValue("userId"))
}

// deviceFlags serves GET /v1/devices/{deviceId}/flags, an admin route.
func (s *server) deviceFlags(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	s.effectiveView(w, r, ns, evaluator.AttrDeviceID, "device", r.PathValue("deviceId"))
}

// effectiveView renders the effective flags of the subject id (attribute
// attr) with the rest of the context from the query, as explain reads
// it: every flag of the namespace, role-gated ones included (hidden), and
// every applicable override with the one deciding each flag.
func (s *server) effectiveView(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, attr, subject, id string) {
	if len(id) > s.lim.maxAttrBytes {
		s.writeError(w, http.StatusBadRequest, "", codeInvalidContext,
			fmt.Sprintf("%s: value is %d bytes, more than the limit of %d", attr, len(id), s.lim.maxAttrBytes))
		return
	}
	ctx, err := s.explainContext(r)
	if err != nil {
		s.writeRequestError(w, "", err)
		return
	}
	if r.URL.Query().Has(attr) {
		s.writeError(w, http.StatusBadRequest, "", codeInvalidQuery,
			fmt.Sprintf("query parameter %q: the %s is the path's (%s); leave it out of the query", attr, subject, strconv.Quote(id)))
		return
	}
	if attr == evaluator.AttrUserID {
		ctx.UserID = id
	} else {
		ctx.DeviceID = id
	}
	if ctx.DeviceID != "" && ctx.DeviceClass == "" {
		s.writeError(w, http.StatusBadRequest, "", codeInvalidQuery,
			fmt.Sprintf("query parameter %q is required with a device: overrides apply only to devices of an eligible class", evaluator.AttrDeviceClass))
		return
	}

	view := effectiveView{
		Namespace: ns.Name(), Revision: ns.Revision(), UserID: ctx.UserID, DeviceID: ctx.DeviceID, Context: ctx,
		Flags: map[string]effectiveFlag{}, Overrides: []overrideView{},
	}
	for _, info := range ns.DeviceOverrides(ctx.DeviceID) {
		view.Overrides = append(view.Overrides, overrideOf(&info))
	}
	for _, info := range ns.UserOverrides(ctx.EffectiveUserID()) {
		view.Overrides = append(view.Overrides, overrideOf(&info))
	}
	for _, key := range ns.Keys() {
		res := ns.Evaluate(ctx, key)
		f := effectiveFlag{
			Value: res.Raw, Enabled: res.Enabled, Variant: res.Variant, Reason: res.Reason.String(),
			Source: res.Source, SourceKind: res.SourceKind(),
			Hidden: res.Hidden(),
		}
		if res.ErrorCode != evaluator.ErrorNone {
			f.ErrorCode, f.ErrorDetails = res.ErrorCode.String(), res.ErrorMessage
		}
		view.Flags[key] = f
	}
	for i := range view.Overrides {
		ov := &view.Overrides[i]
		if f, ok := view.Flags[ov.Key]; ok && f.Source == ov.Source {
			ov.Applied = true
			decided := *ov
			f.Override = &decided
			view.Flags[ov.Key] = f
		}
	}
	s.marshal(w, http.StatusOK, view)
}

func overrideOf(info *evaluator.OverrideInfo) overrideView {
	ov := overrideView{
		Key: info.Key, Object: info.Object, Source: info.Source, CreatedAt: info.CreatedAt.UTC().Format(timeFormat),
		Reason: info.Reason, Mode: info.Mode, Value: info.Value,
	}
	if info.ExpiresAt != nil {
		ov.ExpiresAt = info.ExpiresAt.UTC().Format(timeFormat)
	}
	return ov
}

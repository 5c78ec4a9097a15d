// Package resolve turns the evaluator's results into OpenFeature resolution details
// the same way for both flagops providers: reasons as the evaluator's OFREP API gives
// them, error codes, and values of the type the caller asked for.
package resolve

import (
	"context"
	"fmt"
	"math"

	"github.com/open-feature/go-sdk/openfeature"
)

// Reason is the OpenFeature reason of a result: the one the evaluator's OFREP API
// gives (docs/ofrep.md), so that every OpenFeature client reports the same. The
// evaluator's own reasons make the kill switch and the role gate DISABLED even when
// they serve a value; OFREP says DISABLED exactly when there is no value, STATIC for
// the kill switch's off value and TARGETING_MATCH for the role gate's.
func Reason(errorCode string, hasValue bool, reason, source string) openfeature.Reason {
	switch {
	case errorCode != "":
		return openfeature.ErrorReason
	case !hasValue:
		return openfeature.DisabledReason
	case reason != string(openfeature.DisabledReason):
		return openfeature.Reason(reason)
	case source == "role-gate":
		return openfeature.TargetingMatchReason
	default:
		return openfeature.StaticReason
	}
}

// Error builds the OpenFeature error of an evaluator error code.
func Error(code openfeature.ErrorCode, msg string) openfeature.ResolutionError {
	switch code {
	case openfeature.FlagNotFoundCode:
		return openfeature.NewFlagNotFoundResolutionError(msg)
	case openfeature.ParseErrorCode:
		return openfeature.NewParseErrorResolutionError(msg)
	case openfeature.TypeMismatchCode:
		return openfeature.NewTypeMismatchResolutionError(msg)
	case openfeature.InvalidContextCode:
		return openfeature.NewInvalidContextResolutionError(msg)
	case openfeature.TargetingKeyMissingCode:
		return openfeature.NewTargetingKeyMissingResolutionError(msg)
	default:
		return openfeature.NewGeneralResolutionError(msg)
	}
}

// ErrorDetail is the detail of a failed resolution.
func ErrorDetail(e openfeature.ResolutionError) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{ResolutionError: e, Reason: openfeature.ErrorReason}
}

// Value returns value (nil: none; a bool, string, float64 or decoded JSON) as a T
// with conv and detail, or def: with detail when there is no value, with
// TYPE_MISMATCH when the value is not a T (typ names T in the message).
func Value[T any](key string, value any, detail openfeature.ProviderResolutionDetail, def T, typ string,
	conv func(any) (T, bool)) openfeature.GenericResolutionDetail[T] {
	if value == nil {
		// No value for this context, or an error: the caller's default applies.
		return openfeature.GenericResolutionDetail[T]{Value: def, ProviderResolutionDetail: detail}
	}
	v, ok := conv(value)
	if !ok {
		d := ErrorDetail(openfeature.NewTypeMismatchResolutionError(
			fmt.Sprintf("flag %q has a %s value, not %s", key, typeName(value), typ)))
		return openfeature.GenericResolutionDetail[T]{Value: def, ProviderResolutionDetail: d}
	}
	return openfeature.GenericResolutionDetail[T]{Value: v, ProviderResolutionDetail: detail}
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	default:
		return "array"
	}
}

// Conversions for Value.
func Bool(v any) (bool, bool)     { b, ok := v.(bool); return b, ok }
func String(v any) (string, bool) { s, ok := v.(string); return s, ok }
func Float(v any) (float64, bool) { f, ok := v.(float64); return f, ok }

// Object accepts JSON objects only, and returns a deep copy the caller may change.
func Object(v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return CopyJSON(m), true
}

// Int accepts whole numbers only.
func Int(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// CopyJSON deep-copies decoded JSON, so that a caller cannot change what a provider
// holds.
func CopyJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = CopyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = CopyJSON(e)
		}
		return s
	default:
		return v
	}
}

// Lookup resolves a flag for a context: its value (nil: none, the caller's default
// applies) and the detail to return with it.
type Lookup func(key string, flatCtx openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail)

// Typed implements the typed evaluations of openfeature.FeatureProvider with its
// Lookup: a value of another type than the call's gives the default with
// TYPE_MISMATCH.
type Typed struct{ Lookup Lookup }

// BooleanEvaluation implements openfeature.FeatureProvider.
func (t Typed) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d := t.Lookup(flag, flatCtx)
	return Value(flag, v, d, defaultValue, "boolean", Bool)
}

// StringEvaluation implements openfeature.FeatureProvider.
func (t Typed) StringEvaluation(_ context.Context, flag string, defaultValue string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d := t.Lookup(flag, flatCtx)
	return Value(flag, v, d, defaultValue, "string", String)
}

// FloatEvaluation implements openfeature.FeatureProvider.
func (t Typed) FloatEvaluation(_ context.Context, flag string, defaultValue float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d := t.Lookup(flag, flatCtx)
	return Value(flag, v, d, defaultValue, "number", Float)
}

// IntEvaluation implements openfeature.FeatureProvider: whole numbers only.
func (t Typed) IntEvaluation(_ context.Context, flag string, defaultValue int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d := t.Lookup(flag, flatCtx)
	return Value(flag, v, d, defaultValue, "whole number", Int)
}

// ObjectEvaluation implements openfeature.FeatureProvider: JSON objects only, as a
// map[string]any that the caller may change.
func (t Typed) ObjectEvaluation(_ context.Context, flag string, defaultValue any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d := t.Lookup(flag, flatCtx)
	return Value(flag, v, d, defaultValue, "object", Object)
}

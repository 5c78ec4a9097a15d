package flagops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/sdk/go/internal/resolve"
)

// wireFlag is one flag of the device stream: the evaluator's result for the context.
type wireFlag struct {
	Value        json.RawMessage `json:"value,omitempty"`
	Enabled      bool            `json:"enabled"`
	Variant      string          `json:"variant,omitempty"`
	Reason       string          `json:"reason"`
	Source       string          `json:"source,omitempty"`
	ErrorCode    string          `json:"errorCode,omitempty"`
	ErrorDetails string          `json:"errorDetails,omitempty"`
	// OverrideReason and OverrideExpiresAt (RFC 3339) are those of the override that
	// decided the result, when one did and they are set.
	OverrideReason    string `json:"overrideReason,omitempty"`
	OverrideExpiresAt string `json:"overrideExpiresAt,omitempty"`
}

func (w *wireFlag) equal(o *wireFlag) bool {
	return bytes.Equal(w.Value, o.Value) && w.Enabled == o.Enabled && w.Variant == o.Variant &&
		w.Reason == o.Reason && w.Source == o.Source && w.ErrorCode == o.ErrorCode && w.ErrorDetails == o.ErrorDetails &&
		w.OverrideReason == o.OverrideReason && w.OverrideExpiresAt == o.OverrideExpiresAt
}

// flagValue is one flag as evaluations read it: the wire form and what is derived
// from it once, so that an evaluation only looks it up.
type flagValue struct {
	wire wireFlag
	// value is nil (no value), a bool, a string, a float64, or the decoded JSON of an
	// object or array (shared: never handed out without a copy).
	value  any
	reason openfeature.Reason
	// expiresAt is OverrideExpiresAt parsed; nil when it is not set.
	expiresAt *time.Time
	// detail is what an evaluation returns with the value, or with the caller's
	// default when there is no value or the evaluator could not decide (an error).
	detail openfeature.ProviderResolutionDetail
}

// metaKey identifies a flag's metadata, which flags decided alike share.
type metaKey struct {
	enabled                   bool
	source, ovReason, ovUntil string
}

// newFlagValue derives a flag's values from its wire form. metas, when not nil,
// holds the metadata maps made so far in this decoding, for sharing; nil leaves
// FlagMetadata out.
func newFlagValue(w wireFlag, metas map[metaKey]openfeature.FlagMetadata) (*flagValue, error) {
	f := &flagValue{wire: w, reason: resolve.Reason(w.ErrorCode, len(w.Value) > 0, w.Reason, w.Source)}
	if len(w.Value) > 0 {
		if err := json.Unmarshal(w.Value, &f.value); err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
	}
	if w.OverrideExpiresAt != "" {
		at, err := time.Parse(time.RFC3339Nano, w.OverrideExpiresAt)
		if err != nil {
			return nil, fmt.Errorf("overrideExpiresAt: %w", err)
		}
		f.expiresAt = &at
	}
	f.detail = openfeature.ProviderResolutionDetail{Reason: f.reason, Variant: w.Variant}
	if w.ErrorCode != "" {
		f.value = nil
		f.detail = resolve.ErrorDetail(resolve.Error(openfeature.ErrorCode(w.ErrorCode), w.ErrorDetails))
	}
	if metas != nil {
		k := metaKey{w.Enabled, w.Source, w.OverrideReason, w.OverrideExpiresAt}
		m, ok := metas[k]
		if !ok {
			m = openfeature.FlagMetadata{"enabled": w.Enabled}
			if w.Source != "" {
				m["source"] = w.Source
			}
			if w.OverrideReason != "" {
				m["overrideReason"] = w.OverrideReason
			}
			if w.OverrideExpiresAt != "" {
				m["overrideExpiresAt"] = w.OverrideExpiresAt
			}
			metas[k] = m
		}
		f.detail.FlagMetadata = m
	}
	return f, nil
}

// values is one immutable state of the provider's flags.
type values struct {
	flags map[string]*flagValue
}

// decodeFlags decodes the flags of a snapshot or changed event, with their
// FlagMetadata when withMeta.
func decodeFlags(m map[string]wireFlag, withMeta bool) (map[string]*flagValue, error) {
	out := make(map[string]*flagValue, len(m))
	var metas map[metaKey]openfeature.FlagMetadata
	if withMeta {
		metas = map[metaKey]openfeature.FlagMetadata{}
	}
	for k, w := range m {
		f, err := newFlagValue(w, metas)
		if err != nil {
			return nil, fmt.Errorf("flag %q: %w", k, err)
		}
		out[k] = f
	}
	return out, nil
}

// diff returns the sorted keys whose result differs between old and new.
func diff(old, new map[string]*flagValue) []string {
	var keys []string
	for k, n := range new {
		if o, ok := old[k]; !ok || !o.wire.equal(&n.wire) {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// withChanges returns the flags of v with changed set and removed deleted, and the
// sorted keys whose result differs.
func (v *values) withChanges(changed map[string]*flagValue, removed []string) (*values, []string) {
	next := maps.Clone(v.flags)
	var keys []string
	for k, f := range changed {
		if o, ok := next[k]; !ok || !o.wire.equal(&f.wire) {
			keys = append(keys, k)
		}
		next[k] = f
	}
	for _, k := range removed {
		if _, ok := next[k]; ok {
			delete(next, k)
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return &values{flags: next}, slices.Compact(keys)
}

// lookup finds a flag for an evaluation, or returns why it cannot.
func (p *Provider) lookup(key string, flatCtx openfeature.FlattenedContext) (*flagValue, openfeature.ResolutionError) {
	tk, _ := flatCtx[openfeature.TargetingKey].(string)
	if msg := p.otherUser(flatCtx["userId"], tk); msg != "" {
		return nil, openfeature.NewInvalidContextResolutionError(msg)
	}
	v := p.vals.Load()
	if v == nil {
		return nil, openfeature.NewProviderNotReadyResolutionError("the flagops provider has no values yet")
	}
	if f, ok := v.flags[key]; ok {
		return f, openfeature.ResolutionError{}
	}
	return nil, openfeature.NewFlagNotFoundResolutionError("flag " + strconv.Quote(key) + " not found")
}

// otherUser returns why a call for the user of userID and targetingKey cannot be
// served, when that is another user than the provider's, else "".
func (p *Provider) otherUser(userID any, targetingKey string) string {
	u := p.user.Load()
	if u == nil || *u == "" {
		return ""
	}
	if call := userOf(userID, targetingKey); call != "" && call != *u {
		return "the flagops provider holds the values of user " + strconv.Quote(*u) + ", not " + strconv.Quote(call)
	}
	return ""
}

// resolveFlag is the provider's resolve.Lookup: the flag's value and detail from
// memory, or why it has none.
func (p *Provider) resolveFlag(key string, flatCtx openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
	f, rerr := p.lookup(key, flatCtx)
	if f == nil {
		return nil, resolve.ErrorDetail(rerr)
	}
	return f.value, f.detail
}

// contextParam renders an evaluation context as the stream's context parameter, a
// JSON object; "" for an empty context.
func contextParam(ec openfeature.EvaluationContext) (string, error) {
	attrs := ec.Attributes()
	m := make(map[string]any, len(attrs)+1)
	for k, v := range attrs {
		switch v.(type) {
		case nil:
			continue
		case string, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		default:
			return "", fmt.Errorf("attribute %q is a %T: want a string, number or boolean", k, v)
		}
		m[k] = v
	}
	if tk := ec.TargetingKey(); tk != "" {
		m[openfeature.TargetingKey] = tk
	}
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding it: %w", err)
	}
	return string(b), nil
}

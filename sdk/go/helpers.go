package flagops

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/sdk/go/internal/resolve"
)

// Flag is one flag's result for the provider's context (seed 001's FlagValue).
type Flag struct {
	// Value is the value the evaluator decided: a bool, a string, a float64 or a
	// map[string]any (a copy, which the caller may change). Nil when the evaluator
	// gives the context no value (the caller's default applies) or on an error.
	Value any
	// Enabled reports whether the flag is on for the context.
	Enabled bool
	// Variant and Reason are those of an evaluation; Source names the step that
	// decided, for example rule:beta or user-override:shop/beta-testers.
	Variant string
	Reason  openfeature.Reason
	Source  string
	// ErrorCode and ErrorMessage are set when the evaluator could not decide.
	ErrorCode    openfeature.ErrorCode
	ErrorMessage string
}

// Kinds of override.
const (
	OverrideUser   = "user"
	OverrideDevice = "device"
)

// OverrideInfo says which override decided a flag for the provider's context (seed
// 001's getOverrideInfo).
type OverrideInfo struct {
	// Kind is OverrideUser or OverrideDevice.
	Kind string
	// Namespace and Name name the UserFlagOverride or DeviceFlagOverride object.
	Namespace, Name string
	// Value is the value the override serves (a copy; nil when it switches the flag
	// off without an off value), Variant "override", "on" or "off".
	Value   any
	Variant string
	// ExpiresAt is when the override stops applying (nil: it does not expire), Reason
	// why it exists ("" when its object gives none): the object's spec.expiresAt and
	// spec.reason.
	ExpiresAt *time.Time
	Reason    string
}

// ErrNotReady is returned before the provider holds values.
var ErrNotReady = errors.New("flagops: the provider has no values yet")

// UserFlags returns every flag's result for the provider's context, by key (seed
// 001's getUserFlags). Flags the context may not see (the role gate) are left out, as
// the evaluator leaves them out. It fails before the first snapshot, and when the
// OpenFeature transaction context of ctx (openfeature.TransactionContext) names
// another user than the provider's.
func (p *Provider) UserFlags(ctx context.Context) (map[string]Flag, error) {
	v, err := p.valuesFor(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Flag, len(v.flags))
	for k, f := range v.flags {
		out[k] = Flag{
			Value: resolve.CopyJSON(f.value), Enabled: f.wire.Enabled, Variant: f.wire.Variant, Reason: f.reason,
			Source: f.wire.Source, ErrorCode: openfeature.ErrorCode(f.wire.ErrorCode), ErrorMessage: f.wire.ErrorDetails,
		}
	}
	return out, nil
}

// HasOverride reports whether a user or device override decides flag key for the
// provider's context (seed 001's hasOverride). It is false when the provider cannot
// tell (see UserFlags).
func (p *Provider) HasOverride(ctx context.Context, key string) bool {
	_, ok := p.OverrideInfo(ctx, key)
	return ok
}

// OverrideInfo returns the override that decides flag key for the provider's
// context, and false when none does or the provider cannot tell (see UserFlags).
// An override that exists but loses to an earlier step (a device override before a
// user override, the role gate) does not decide the flag, and is not reported.
func (p *Provider) OverrideInfo(ctx context.Context, key string) (OverrideInfo, bool) {
	v, err := p.valuesFor(ctx)
	if err != nil {
		return OverrideInfo{}, false
	}
	f, ok := v.flags[key]
	if !ok {
		return OverrideInfo{}, false
	}
	for _, kind := range []string{OverrideUser, OverrideDevice} {
		obj, found := strings.CutPrefix(f.wire.Source, kind+"-override:")
		if !found {
			continue
		}
		ns, name, _ := strings.Cut(obj, "/")
		info := OverrideInfo{Kind: kind, Namespace: ns, Name: name, Value: resolve.CopyJSON(f.value), Variant: f.wire.Variant,
			Reason: f.wire.OverrideReason}
		if f.expiresAt != nil {
			at := *f.expiresAt
			info.ExpiresAt = &at
		}
		return info, true
	}
	return OverrideInfo{}, false
}

// valuesFor returns the values for a helper call in ctx.
func (p *Provider) valuesFor(ctx context.Context) (*values, error) {
	tc := openfeature.TransactionContext(ctx)
	if msg := p.otherUser(tc.Attribute("userId"), tc.TargetingKey()); msg != "" {
		return nil, errors.New(msg)
	}
	v := p.vals.Load()
	if v == nil {
		return nil, ErrNotReady
	}
	return v, nil
}

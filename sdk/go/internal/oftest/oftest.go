// Package oftest has what the SDK's benchmarks compare the providers with.
package oftest

import (
	"context"

	"github.com/open-feature/go-sdk/openfeature"
)

// ConstProvider is the cheapest provider that is not the SDK's no-op one (which the
// SDK exempts from its state checks): a constant true with a reason and a variant.
// It measures what the SDK itself costs around a provider.
type ConstProvider struct{}

// Metadata implements openfeature.FeatureProvider.
func (ConstProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "const"} }

// Hooks implements openfeature.FeatureProvider.
func (ConstProvider) Hooks() []openfeature.Hook { return nil }

// BooleanEvaluation implements openfeature.FeatureProvider: true.
func (ConstProvider) BooleanEvaluation(context.Context, string, bool, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: true, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
		Reason: openfeature.StaticReason, Variant: "on"}}
}

// StringEvaluation implements openfeature.FeatureProvider: the default.
func (ConstProvider) StringEvaluation(_ context.Context, _ string, d string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{Value: d}
}

// FloatEvaluation implements openfeature.FeatureProvider: the default.
func (ConstProvider) FloatEvaluation(_ context.Context, _ string, d float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: d}
}

// IntEvaluation implements openfeature.FeatureProvider: the default.
func (ConstProvider) IntEvaluation(_ context.Context, _ string, d int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: d}
}

// ObjectEvaluation implements openfeature.FeatureProvider: the default.
func (ConstProvider) ObjectEvaluation(_ context.Context, _ string, d any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: d}
}

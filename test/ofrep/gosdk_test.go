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

package ofrep

import (
	"context"
	"maps"
	"net/http/httptest"
	"testing"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/evaluator/server"
)

// TestOpenFeatureGoSDK runs the cases with the OpenFeature Go SDK and its OFREP provider, which
// replaces every DISABLED answer with the caller's default.
func TestOpenFeatureGoSDK(t *testing.T) {
	srv := httptest.NewServer(server.New(newStore(t), server.Options{DefaultNamespace: "shop"}))
	defer srv.Close()
	t.Cleanup(openfeature.Shutdown)
	checkClient(t, srv.URL, clientGo, evaluateGo)
}

// evaluateGo evaluates cases with the Go SDK against baseURL, through a provider bound to a
// domain of its own.
func evaluateGo(t *testing.T, baseURL string, cases []testCase) []details {
	t.Helper()
	if err := openfeature.SetNamedProviderAndWait(baseURL, ofrep.NewProvider(baseURL)); err != nil {
		t.Fatalf("SetNamedProviderAndWait: %v", err)
	}
	client := openfeature.NewClient(baseURL)
	out := make([]details, len(cases))
	for i, c := range cases {
		out[i] = evaluateCase(t, client, c)
	}
	return out
}

// evaluationContext is the OpenFeature evaluation context of a case's context.
func evaluationContext(m map[string]any) openfeature.EvaluationContext {
	attrs := maps.Clone(m)
	tk, _ := attrs["targetingKey"].(string)
	delete(attrs, "targetingKey")
	return openfeature.NewEvaluationContext(tk, attrs)
}

// evaluateCase evaluates one case with client, in the case's context.
func evaluateCase(t *testing.T, client *openfeature.Client, c testCase) details {
	t.Helper()
	ctx := context.Background()
	evalCtx := evaluationContext(c.Context)
	var d openfeature.EvaluationDetails
	var value any
	switch c.Type {
	case "boolean":
		r, _ := client.BooleanValueDetails(ctx, c.Flag, c.Default.(bool), evalCtx)
		value, d = r.Value, r.EvaluationDetails
	case "string":
		r, _ := client.StringValueDetails(ctx, c.Flag, c.Default.(string), evalCtx)
		value, d = r.Value, r.EvaluationDetails
	case "number":
		r, _ := client.FloatValueDetails(ctx, c.Flag, float64(c.Default.(int)), evalCtx)
		value, d = r.Value, r.EvaluationDetails
	case "object":
		r, _ := client.ObjectValueDetails(ctx, c.Flag, c.Default, evalCtx)
		value, d = r.Value, r.EvaluationDetails
	default:
		t.Fatalf("unknown type %q for flag %s", c.Type, c.Flag)
	}
	out := details{Flag: d.FlagKey, Type: c.Type, Value: value, FlagMetadata: d.FlagMetadata}
	if d.Reason != "" {
		out.Reason = str(string(d.Reason))
	}
	if d.Variant != "" {
		out.Variant = str(d.Variant)
	}
	if d.ErrorCode != "" {
		out.ErrorCode = str(string(d.ErrorCode))
	}
	return out
}

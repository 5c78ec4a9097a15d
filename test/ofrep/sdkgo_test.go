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
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagops/flagops/evaluator/server"
	flagops "github.com/flagops/flagops/sdk/go"
)

// TestFlagopsGoProvider runs the cases with flagops' own Go provider (sdk/go), which
// holds one context's values from the device stream, so that it agrees with the OFREP
// clients: the same values and the same reasons, except for a role-gated flag, which
// is not in the context's map (as with the OFREP web provider).
func TestFlagopsGoProvider(t *testing.T) {
	srv := httptest.NewServer(server.New(newStore(t), server.Options{DefaultNamespace: "shop"}))
	t.Cleanup(srv.Close) // after the providers' cleanups, which close their streams
	checkClient(t, srv.URL, clientMap, func(t *testing.T, baseURL string, cases []testCase) []details {
		return evaluateFlagops(t, srv.URL, strings.TrimPrefix(baseURL[len(srv.URL):], "/namespaces/"), cases)
	})
}

// evaluateFlagops evaluates cases with the flagops provider of namespace ns ("" for the
// unprefixed routes): one provider, behind an OpenFeature API of its own, per context.
func evaluateFlagops(t *testing.T, url, ns string, cases []testCase) []details {
	t.Helper()
	clients := map[string]*openfeature.Client{}
	out := make([]details, len(cases))
	for i, c := range cases {
		key, err := json.Marshal(c.Context)
		if err != nil {
			t.Fatal(err)
		}
		client, ok := clients[string(key)]
		if !ok {
			client = flagopsClient(t, url, ns, evaluationContext(c.Context))
			clients[string(key)] = client
		}
		out[i] = evaluateCase(t, client, c)
	}
	return out
}

// flagopsClient returns a client of a ready flagops provider holding the values of
// evalCtx.
func flagopsClient(t *testing.T, url, ns string, evalCtx openfeature.EvaluationContext) *openfeature.Client {
	t.Helper()
	p, err := flagops.NewProvider(flagops.Options{URL: url, Namespace: ns, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	api.SetEvaluationContext(evalCtx)
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	return api.NewClient()
}

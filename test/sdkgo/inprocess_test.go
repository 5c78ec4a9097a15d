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

package sdkgo

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/evaluator/server"
	"github.com/flagops/flagops/sdk/go/inprocess"
	"github.com/flagops/flagops/test/servetest"
)

// expectInProcess returns when the in-process provider's next event came, which must
// be of type typ with exactly the flag changes given.
func expectInProcess(t *testing.T, p *inprocess.Provider, typ openfeature.EventType, changes ...string) time.Time {
	t.Helper()
	return expectEvent(t, p.EventChannel(), typ, changes...)
}

// TestInProcessAgainstServe runs the in-process provider against `flagops serve --dir`
// with context tokens: a device token is refused the sync stream; with a sync token
// the provider evaluates any user in process, hears file changes with exactly their
// keys, and after restarts (a new process, so a snapshot) serves current values.
func TestInProcessAgainstServe(t *testing.T) {
	bin := servetest.Build(t)
	dir := t.TempDir()
	servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", "sidebar"))
	servetest.WriteAtomic(t, filepath.Join(dir, "billing.yaml"), booleanFlag("billing.enabled", false))
	servetest.WriteAtomic(t, filepath.Join(dir, "mine.yaml"), userOverride("pilot-billing", userID, "billing.enabled"))
	keys := filepath.Join(t.TempDir(), "keys.json")
	priv := servetest.WriteKeys(t, keys)
	srv := servetest.Start(t, bin, dir, "127.0.0.1:0", "--context-token-keys-file", keys)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))

	// A device's token cannot read the namespace.
	device, err := inprocess.NewProvider(inprocess.Options{URL: srv.URL, Namespace: namespace, InitTimeout: time.Second, Logger: logger,
		Token: func(context.Context) (string, error) {
			return servetest.MintToken(t, priv, namespace, time.Hour, map[string]any{"userId": userID}), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := device.Init(openfeature.EvaluationContext{}); err == nil || !strings.Contains(err.Error(), "403") ||
		!strings.Contains(err.Error(), server.ScopeSync) {
		t.Errorf("Init with a device token: %v, want a 403 naming %s", err, server.ScopeSync)
	}
	device.Shutdown()

	p, err := inprocess.NewProvider(inprocess.Options{URL: srv.URL, Namespace: namespace, GracePeriod: 10 * time.Minute, Logger: logger,
		Token: func(context.Context) (string, error) {
			return servetest.MintScoped(t, priv, namespace, time.Hour, nil, server.ScopeSync), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(p.Shutdown)
	ctx := context.Background()
	billing := func(user string) bool {
		return p.BooleanEvaluation(ctx, "billing.enabled", false, openfeature.FlattenedContext{"userId": user}).Value
	}
	layout := func() string {
		return p.StringEvaluation(ctx, "checkout.layout", "none", openfeature.FlattenedContext{"userId": "anyone"}).Value
	}
	if !billing(userID) || billing("user-8") || layout() != "sidebar" {
		t.Fatalf("billing for %s %v, for user-8 %v, layout %q: want on, off, sidebar", userID, billing(userID), billing("user-8"), layout())
	}

	written := time.Now()
	servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", "stacked"))
	at := expectInProcess(t, p, openfeature.ProviderConfigChange, "checkout.layout")
	t.Logf("flag change: PROVIDER_CONFIGURATION_CHANGED %.3f s after the file write", at.Sub(written).Seconds())
	if layout() != "stacked" {
		t.Errorf("checkout.layout after the change = %q, want stacked", layout())
	}
	servetest.WriteAtomic(t, filepath.Join(dir, "other.yaml"), userOverride("other-billing", "user-8", "billing.enabled"))
	expectInProcess(t, p, openfeature.ProviderConfigChange, "billing.enabled")
	if !billing("user-8") {
		t.Error("user-8's override did not reach the provider")
	}
	info, ok := p.OverrideInfo(openfeature.WithTransactionContext(ctx, openfeature.NewEvaluationContext("user-8", nil)), "billing.enabled")
	if !ok || info.Name != "other-billing" || info.Reason != "The Go provider test." {
		t.Errorf("OverrideInfo for user-8 = %+v, %v", info, ok)
	}

	// Restarts: the new process cannot resume the old one's stream, so the provider
	// gets a snapshot, and a change made while it was down is reported by key.
	for i, want := range []string{"grid", ""} {
		srv.Stop()
		expectInProcess(t, p, openfeature.ProviderStale)
		if want != "" {
			servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", want))
		} else {
			want = layout()
		}
		srv = servetest.Start(t, bin, dir, srv.Addr, "--context-token-keys-file", keys)
		started := time.Now()
		ready := expectInProcess(t, p, openfeature.ProviderReady)
		if got := layout(); got != want {
			t.Errorf("restart %d: checkout.layout at READY = %q, want %q", i+1, got, want)
		}
		t.Logf("restart %d: PROVIDER_READY %.3f s after the new server reported its address", i+1, ready.Sub(started).Seconds())
		if i == 0 {
			expectInProcess(t, p, openfeature.ProviderConfigChange, "checkout.layout")
		}
	}
	servetest.WriteAtomic(t, filepath.Join(dir, "billing.yaml"), booleanFlag("billing.enabled", true))
	expectInProcess(t, p, openfeature.ProviderConfigChange, "billing.enabled")
	if !billing("user-9") {
		t.Error("billing.enabled is still off for everybody after the flag was turned on")
	}
}

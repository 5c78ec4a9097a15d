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

// Package sdkgo tests flagops' Go provider (the sdk/go module, which cannot import this
// one) end to end against the real `flagops serve --dir` binary: file changes reach the
// provider as PROVIDER_CONFIGURATION_CHANGED with exactly the keys that changed for its
// context, and it recovers from server restarts with current values.
package sdkgo

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	flagops "github.com/flagops/flagops/sdk/go"
	"github.com/flagops/flagops/test/servetest"
)

const (
	namespace = "shop"
	userID    = "user-7"
	// eventWait bounds the wait for each event: generous, since the machine may be busy.
	// The delays measured are logged; they are far below it on an idle machine.
	eventWait = 60 * time.Second
)

func stringFlag(name, value string) string {
	return `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: ` + name + `
  namespace: ` + namespace + `
spec:
  type: String
  enabled: true
  value: ` + value + `
`
}

func booleanFlag(name string, enabled bool) string {
	on := "false"
	if enabled {
		on = "true"
	}
	return `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: ` + name + `
  namespace: ` + namespace + `
spec:
  type: Boolean
  enabled: ` + on + `
`
}

func userOverride(name, user, key string) string {
	return userOverrideWith(name, user, key, "The Go provider test.", time.Time{})
}

// userOverrideWith is userOverride with a reason and, unless expires is zero, an
// expiry.
func userOverrideWith(name, user, key, reason string, expires time.Time) string {
	expiry := ""
	if !expires.IsZero() {
		expiry = "  expiresAt: \"" + expires.UTC().Format(time.RFC3339) + "\"\n"
	}
	return `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata:
  name: ` + name + `
  namespace: ` + namespace + `
spec:
  userId: ` + user + `
  reason: ` + strconv.Quote(reason) + `
` + expiry + `  flags:
  - key: ` + key + `
    enabled: true
`
}

// recorder is the provider as the SDK sees it, with every event it emits recorded in
// order before the SDK gets it (the SDK runs handlers on goroutines of their own, so
// their order is not the events').
type recorder struct {
	*flagops.Provider
	toSDK  chan openfeature.Event
	events chan openfeature.Event
}

func record(t *testing.T, p *flagops.Provider) *recorder {
	r := &recorder{Provider: p, toSDK: make(chan openfeature.Event, 64), events: make(chan openfeature.Event, 64)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case ev := <-p.EventChannel():
				r.events <- ev
				r.toSDK <- ev
			case <-stop:
				return
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return r
}

func (r *recorder) EventChannel() <-chan openfeature.Event { return r.toSDK }

// expect returns when the next event came, which must be of type typ with exactly
// the flag changes given.
func (r *recorder) expect(t *testing.T, typ openfeature.EventType, changes ...string) time.Time {
	t.Helper()
	return expectEvent(t, r.events, typ, changes...)
}

// expectEvent returns when the next event of events came, which must be of type typ
// with exactly the flag changes given.
func expectEvent(t *testing.T, events <-chan openfeature.Event, typ openfeature.EventType, changes ...string) time.Time {
	t.Helper()
	select {
	case ev := <-events:
		if ev.EventType != typ || !slices.Equal(ev.FlagChanges, changes) {
			t.Fatalf("event %s %v (%s), want %s %v", ev.EventType, ev.FlagChanges, ev.Message, typ, changes)
		}
		return time.Now()
	case <-time.After(eventWait):
		t.Fatalf("no %s %v within %s", typ, changes, eventWait)
		return time.Time{}
	}
}

// TestProviderAgainstServe runs the provider against `flagops serve --dir`: a flag
// change, a user override of the provider's user (and one of another user, which
// raises nothing), and server restarts, with and without changes while it was down.
func TestProviderAgainstServe(t *testing.T) {
	bin := servetest.Build(t)
	dir := t.TempDir()
	servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", "sidebar"))
	servetest.WriteAtomic(t, filepath.Join(dir, "billing.yaml"), booleanFlag("billing.enabled", false))
	servetest.WriteAtomic(t, filepath.Join(dir, "banner.yaml"), stringFlag("ui.banner", "sale"))
	srv := servetest.Start(t, bin, dir, "127.0.0.1:0")

	p, err := flagops.NewProvider(flagops.Options{URL: srv.URL, Namespace: namespace,
		GracePeriod: 10 * time.Minute, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, p)
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	api.SetEvaluationContext(openfeature.NewEvaluationContext(userID, nil))
	if err := api.SetProviderAndWait(context.Background(), rec); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	client := api.NewClient()
	ctx := context.Background()
	none := openfeature.EvaluationContext{}
	layout := func() string { return client.String(ctx, "checkout.layout", "none", none) }
	if got := layout(); got != "sidebar" {
		t.Fatalf("checkout.layout = %q, want sidebar", got)
	}

	// A file change: exactly the changed key, and the new value on the next evaluation.
	written := time.Now()
	servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", "stacked"))
	at := rec.expect(t, openfeature.ProviderConfigChange, "checkout.layout")
	t.Logf("flag change: PROVIDER_CONFIGURATION_CHANGED %.3f s after the file write", at.Sub(written).Seconds())
	if got := layout(); got != "stacked" {
		t.Errorf("checkout.layout after the change = %q, want stacked", got)
	}

	// Another user's override changes nothing here; the provider's user's does. The
	// next event is the latter's alone.
	servetest.WriteAtomic(t, filepath.Join(dir, "other.yaml"), userOverride("other-billing", "user-8", "billing.enabled"))
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	servetest.WriteAtomic(t, filepath.Join(dir, "mine.yaml"), userOverrideWith("pilot-billing", userID, "billing.enabled", "Pilot, ticket 1.", expires))
	rec.expect(t, openfeature.ProviderConfigChange, "billing.enabled")
	if !client.Boolean(ctx, "billing.enabled", false, none) {
		t.Error("billing.enabled is off after the user override turned it on")
	}
	want := flagops.OverrideInfo{Kind: flagops.OverrideUser, Namespace: namespace, Name: "pilot-billing", Value: true, Variant: "on",
		ExpiresAt: &expires, Reason: "Pilot, ticket 1."}
	if info, ok := p.OverrideInfo(ctx, "billing.enabled"); !ok || !reflect.DeepEqual(info, want) {
		t.Errorf("OverrideInfo = %+v, %v; want %+v", info, ok, want)
	}

	// A change of only the override's reason: an event with its key, and the new reason
	// in OverrideInfo and in the flag's metadata.
	servetest.WriteAtomic(t, filepath.Join(dir, "mine.yaml"), userOverrideWith("pilot-billing", userID, "billing.enabled", "Pilot, ticket 2.", expires))
	rec.expect(t, openfeature.ProviderConfigChange, "billing.enabled")
	want.Reason = "Pilot, ticket 2."
	if info, ok := p.OverrideInfo(ctx, "billing.enabled"); !ok || !reflect.DeepEqual(info, want) {
		t.Errorf("OverrideInfo after the reason changed = %+v, %v; want %+v", info, ok, want)
	}
	d, _ := client.BooleanValueDetails(ctx, "billing.enabled", false, none)
	if d.FlagMetadata["overrideReason"] != want.Reason || d.FlagMetadata["overrideExpiresAt"] != expires.Format(time.RFC3339) {
		t.Errorf("metadata = %v, want the new reason and the expiry", d.FlagMetadata)
	}

	// Restarts: a new process on the same port. STALE, then READY with current values;
	// a change made while the server was down is served as soon as READY is emitted,
	// and raises CONFIGURATION_CHANGED for exactly its key.
	layouts := []string{"grid", "", "list", ""} // "" changes nothing while down
	for i, want := range layouts {
		srv.Stop()
		rec.expect(t, openfeature.ProviderStale)
		if want != "" {
			servetest.WriteAtomic(t, filepath.Join(dir, "layout.yaml"), stringFlag("checkout.layout", want))
		} else {
			want = layout()
		}
		srv = servetest.Start(t, bin, dir, srv.Addr)
		started := time.Now()
		ready := rec.expect(t, openfeature.ProviderReady)
		if got := layout(); got != want {
			t.Errorf("restart %d: checkout.layout at READY = %q, want %q", i+1, got, want)
		}
		t.Logf("restart %d: PROVIDER_READY %.3f s after the new server reported its address", i+1, ready.Sub(started).Seconds())
		if layouts[i] != "" {
			rec.expect(t, openfeature.ProviderConfigChange, "checkout.layout")
		}
		// The SDK takes the event on a goroutine of its own.
		gomega.NewWithT(t).Eventually(client.State, eventWait, 10*time.Millisecond).Should(
			gomega.Equal(openfeature.ReadyState), "restart %d: client state", i+1)
	}

	// Nothing else was pending: the next change is the next event.
	servetest.WriteAtomic(t, filepath.Join(dir, "banner.yaml"), stringFlag("ui.banner", "spring"))
	rec.expect(t, openfeature.ProviderConfigChange, "ui.banner")
}

// TestProviderWithContextTokens: against a server that requires context tokens, the
// provider sends the token source's token; an expired one gets 401, and the provider
// asks for a new one and connects. The values are those of the token's context.
func TestProviderWithContextTokens(t *testing.T) {
	bin := servetest.Build(t)
	dir := t.TempDir()
	servetest.WriteAtomic(t, filepath.Join(dir, "billing.yaml"), booleanFlag("billing.enabled", false))
	servetest.WriteAtomic(t, filepath.Join(dir, "mine.yaml"), userOverride("pilot-billing", userID, "billing.enabled"))
	keys := filepath.Join(t.TempDir(), "keys.json")
	priv := servetest.WriteKeys(t, keys)
	srv := servetest.Start(t, bin, dir, "127.0.0.1:0", "--context-token-keys-file", keys)

	var mu sync.Mutex
	calls := 0
	token := func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		ttl := time.Hour
		if calls == 1 {
			ttl = -time.Minute // expired: the server answers 401
		}
		return servetest.MintToken(t, priv, namespace, ttl, map[string]any{"userId": userID}), nil
	}
	p, err := flagops.NewProvider(flagops.Options{URL: srv.URL, Token: token,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	mu.Lock()
	if calls != 2 {
		t.Errorf("the token source was called %d times, want 2 (again after the 401)", calls)
	}
	mu.Unlock()
	if !api.NewClient().Boolean(context.Background(), "billing.enabled", false, openfeature.EvaluationContext{}) {
		t.Error("billing.enabled is off: the values are not those of the token's user, whose override turns it on")
	}
	if !p.HasOverride(context.Background(), "billing.enabled") {
		t.Error("HasOverride(billing.enabled) is false for the token's user")
	}
}

package inprocess

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
	"github.com/flagops/flagops/sdk/go/internal/link"
	"github.com/flagops/flagops/sdk/go/internal/oftest"
)

// bigStore holds flags flags (a quarter each with a rule, a rollout, an allow-list
// and nothing but a value) and overrides user overrides of two entries each, for
// users user-0 ... user-(overrides-1), in namespace shop.
func bigStore(tb testing.TB, flags, overrides int) *evaluator.Store {
	tb.Helper()
	s := evaluator.NewStore()
	var ops []evaluator.Op
	for i := range flags {
		spec := evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true}
		switch i % 4 {
		case 0:
			spec.Rules = []evaluator.Rule{{Name: "beta", Match: []evaluator.Condition{{Attribute: "orgId", Operator: evaluator.OpIn, Values: []string{"acme", "globex"}}}}}
		case 1:
			spec.Rollout = &evaluator.Rollout{Percentage: 40}
		case 2:
			spec.AllowList = &evaluator.AllowList{Users: []string{"user-1", "user-2"}}
		}
		ops = append(ops, evaluator.UpsertFlag("shop", fmt.Sprintf("feature.flag-%04d", i), spec))
	}
	for i := range overrides {
		ops = append(ops, evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: fmt.Sprintf("user-%d", i),
			Namespace: "shop", Name: fmt.Sprintf("user-%d-pilot", i), UID: fmt.Sprint(i), CreatedAt: created, Enabled: true,
			Reason: "pilot", Entries: []evaluator.OverrideEntry{
				{Key: fmt.Sprintf("feature.flag-%04d", i%flags)}, {Key: fmt.Sprintf("feature.flag-%04d", (i+7)%flags), Enabled: new(bool)}}}))
	}
	if _, _, err := s.Apply(ops...); err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchProvider returns a provider of an evaluator serving store, not initialised.
func benchProvider(b *testing.B, store *evaluator.Store, o Options) *Provider {
	b.Helper()
	f := newFixture(b, server.Options{})
	f.replace(b, store, server.Options{})
	o.URL = f.srv.URL
	o.InitTimeout = time.Minute
	p, err := NewProvider(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	return p
}

// readyProvider returns an initialised provider of an evaluator serving store.
func readyProvider(b *testing.B, store *evaluator.Store, o Options) *Provider {
	b.Helper()
	p := benchProvider(b, store, o)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	return p
}

// users are evaluation contexts of random principals: 10,000 users, the first 1,000
// with overrides in bigStore(200, 1000).
func users() []openfeature.EvaluationContext {
	out := make([]openfeature.EvaluationContext, 10000)
	for i := range out {
		out[i] = openfeature.NewEvaluationContext(fmt.Sprintf("user-%d", (i*7919)%len(out)), map[string]any{"orgId": "initech"})
	}
	return out
}

// BenchmarkBooleanValue: a Boolean evaluation through an OpenFeature client
// (client.BooleanValue) for users in turn, against two baselines in the same run: the
// SDK's no-op provider and constProvider. The namespace has 200 flags and 1,000
// overrides.
func BenchmarkBooleanValue(b *testing.B) {
	store := bigStore(b, 200, 1000)
	providers := []struct {
		name string
		p    openfeature.FeatureProvider
	}{
		{"noop", openfeature.NoopProvider{}},
		{"const", oftest.ConstProvider{}},
		{"inprocess", benchProvider(b, store, Options{})},
		{"inprocess-OmitFlagMetadata", benchProvider(b, store, Options{OmitFlagMetadata: true})},
	}
	ecs := users()
	for _, pr := range providers {
		b.Run(pr.name, func(b *testing.B) {
			api := isolated.NewAPI()
			defer func() { _ = api.Shutdown(context.Background()) }()
			if err := api.SetProviderAndWait(context.Background(), pr.p); err != nil {
				b.Fatal(err)
			}
			client := api.NewClient()
			ctx := context.Background()
			if _, err := client.BooleanValue(ctx, "feature.flag-0001", false, ecs[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = client.BooleanValue(ctx, "feature.flag-0001", false, ecs[i%len(ecs)])
				i++
			}
		})
	}
}

// BenchmarkProviderBooleanEvaluation: the provider's own part of an evaluation,
// users in turn, in a namespace of 200 flags with 0 and with 100,000 overrides.
func BenchmarkProviderBooleanEvaluation(b *testing.B) {
	ecs := users()
	flat := make([]openfeature.FlattenedContext, len(ecs))
	for i, ec := range ecs {
		flat[i] = openfeature.FlattenedContext{openfeature.TargetingKey: ec.TargetingKey(), "orgId": "initech"}
	}
	for _, n := range []int{0, 100000} {
		b.Run(fmt.Sprintf("overrides=%d", n), func(b *testing.B) {
			p := readyProvider(b, bigStore(b, 200, n), Options{})
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.BooleanEvaluation(ctx, "feature.flag-0001", false, flat[i%len(flat)])
				i++
			}
		})
	}
}

// BenchmarkSnapshot: applying a snapshot event of 1,000 flags and 10,000 overrides
// (decoding and writing the store, as on connecting), and the heap the provider's
// copy holds afterwards (heap-bytes: the live heap after a GC, minus before).
func BenchmarkSnapshot(b *testing.B) {
	src := bigStore(b, 1000, 10000)
	frame := snapshotEvent(b, src)
	var total uint64
	for b.Loop() {
		before := liveHeap()
		p, err := NewProvider(Options{URL: "http://127.0.0.1:1"})
		if err != nil {
			b.Fatal(err)
		}
		if what, _, err := (syncStream{p}).Apply(frame, false); err != nil || what != link.Replaced {
			b.Fatalf("Apply: %v, %v", what, err)
		}
		total += liveHeap() - before
		runtime.KeepAlive(p)
	}
	b.ReportMetric(float64(total)/float64(b.N), "heap-bytes")
	b.ReportMetric(float64(len(frame.Data)), "event-bytes")
}

// snapshotEvent is the sync stream's snapshot event of namespace shop of store, as
// the evaluator sends it.
func snapshotEvent(b *testing.B, store *evaluator.Store) *link.Event {
	b.Helper()
	data, err := json.Marshal(store.Namespace("shop").Data())
	if err != nil {
		b.Fatal(err)
	}
	return &link.Event{ID: "bench-1", HasID: true, Name: eventSnapshot, Data: data}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

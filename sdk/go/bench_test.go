package flagops

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagops/flagops/sdk/go/internal/oftest"
)

// BenchmarkBooleanValue: a cached Boolean evaluation through an OpenFeature client
// (client.BooleanValue), against two baselines in the same run: the SDK's no-op
// provider and constProvider. The global evaluation context has a targeting key, as
// an application's would.
func BenchmarkBooleanValue(b *testing.B) {
	f := newFakeServer(b)
	withMeta := newTestProvider(b, f, Options{})
	noMeta := newTestProvider(b, f, Options{OmitFlagMetadata: true})
	providers := []struct {
		name string
		p    openfeature.FeatureProvider
	}{
		{"noop", openfeature.NoopProvider{}},
		{"const", oftest.ConstProvider{}},
		{"flagops", withMeta},
		{"flagops-OmitFlagMetadata", noMeta},
	}
	for _, pr := range providers {
		b.Run(pr.name, func(b *testing.B) {
			api := isolated.NewAPI()
			defer func() { _ = api.Shutdown(context.Background()) }()
			api.SetEvaluationContext(openfeature.NewEvaluationContext("bob", nil))
			done := make(chan error, 1)
			go func() { done <- api.SetProviderAndWait(context.Background(), pr.p) }()
			if pr.p == withMeta || pr.p == noMeta {
				f.next(b).send(snapshot("id1", flags))
			}
			if err := initResult(b, done); err != nil {
				b.Fatal(err)
			}
			client := api.NewClient()
			ctx := context.Background()
			none := openfeature.EvaluationContext{}
			if v, err := client.BooleanValue(ctx, "banner", false, none); err != nil || (pr.name != "noop" && !v) {
				b.Fatalf("BooleanValue = %v, %v", v, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = client.BooleanValue(ctx, "banner", false, none)
			}
		})
	}
}

// BenchmarkProviderBooleanEvaluation: the provider's own part of an evaluation.
func BenchmarkProviderBooleanEvaluation(b *testing.B) {
	p, _, _ := ready(b, Options{})
	ctx := context.Background()
	flat := openfeature.FlattenedContext{openfeature.TargetingKey: "bob"}
	b.ReportAllocs()
	for b.Loop() {
		p.BooleanEvaluation(ctx, "banner", false, flat)
	}
}

// manyFlags is a snapshot's flags: n flags, a quarter each Boolean, string, number
// and object, with the sources a namespace's flags typically have.
func manyFlags(n int) string {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range n {
		if i > 0 {
			sb.WriteString(",")
		}
		var value, source string
		switch i % 4 {
		case 0:
			value, source = "true", "default"
		case 1:
			value, source = fmt.Sprintf(`"variant-%d"`, i), "rule:beta-users"
		case 2:
			value, source = fmt.Sprint(i), "rollout"
		case 3:
			value, source = fmt.Sprintf(`{"limit":%d,"mode":"strict"}`, i), "user-override:shop/bob-limits"
		}
		fmt.Fprintf(&sb, `"feature.flag-%04d":{"value":%s,"enabled":true,"variant":"on","reason":"STATIC","source":%q}`, i, value, source)
	}
	sb.WriteString("}")
	return sb.String()
}

// BenchmarkMemory1000Flags reports the heap the provider's values of 1,000 flags
// hold (heap-bytes): the live heap after a GC with them, minus before; with the
// FlagMetadata maps (the default) and without (OmitFlagMetadata).
func BenchmarkMemory1000Flags(b *testing.B) {
	const n = 1000
	data := []byte(`{"flags":` + manyFlags(n) + `}`)
	for _, withMeta := range []bool{true, false} {
		name := "FlagMetadata"
		if !withMeta {
			name = "OmitFlagMetadata"
		}
		b.Run(name, func(b *testing.B) {
			var total uint64
			for b.Loop() {
				// As the provider applies a snapshot event: decode, then derive the values.
				before := liveHeap()
				var wire struct {
					Flags map[string]wireFlag `json:"flags"`
				}
				if err := json.Unmarshal(data, &wire); err != nil {
					b.Fatal(err)
				}
				flags, err := decodeFlags(wire.Flags, withMeta)
				if err != nil {
					b.Fatal(err)
				}
				wire.Flags = nil
				v := &values{flags: flags}
				total += liveHeap() - before
				runtime.KeepAlive(v)
			}
			b.ReportMetric(float64(total)/float64(b.N), "heap-bytes")
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkReconnect: the time from a dropped stream to PROVIDER_READY again, when
// the evaluator answers the resume at once (loopback, httptest): reconnecting,
// sending the request, and the evaluator's "up to date" answer.
func BenchmarkReconnect(b *testing.B) {
	p, f, c := ready(b, Options{GracePeriod: wait})
	for b.Loop() {
		c.drop(b)
		expectEvent(b, p, openfeature.ProviderStale)
		c = f.next(b)
		c.send(upToDate(c.req.Header.Get("Last-Event-ID")))
		expectEvent(b, p, openfeature.ProviderReady)
	}
}

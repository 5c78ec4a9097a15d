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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	flagops "github.com/flagops/flagops/sdk/go"
)

// probe is one provider, under a domain of its own in OpenFeature's API, with its own
// evaluation context. It sits between the provider and the SDK and records every event
// the provider emits, in order, before the SDK gets it.
type probe struct {
	*flagops.Provider
	domain string
	user   string
	body   []byte // the POST /v1/evaluate request for its context
	client *openfeature.Client
	toSDK  chan openfeature.Event
	ready  chan time.Time // PROVIDER_READY events, when the probe saw them
	stale  chan time.Time

	mu       sync.Mutex
	counts   map[openfeature.EventType]int
	keys     int             // keys in PROVIDER_CONFIGURATION_CHANGED events
	notified map[string]bool // keys changed since the last checkpoint
	baseline map[string]serverFlag
}

func newProbe(i int, base string, log *slog.Logger) (*probe, error) {
	user := userName(i)
	plan := "free"
	if i%2 == 0 {
		plan = "pro"
	}
	attrs := map[string]any{"userId": user, "role": "user", "plan": plan}
	body, err := json.Marshal(map[string]any{"context": map[string]any{
		"targetingKey": user, "userId": user, "role": "user", "plan": plan}})
	if err != nil {
		return nil, fmt.Errorf("encoding the context of %s: %w", user, err)
	}
	p, err := flagops.NewProvider(flagops.Options{URL: base, Namespace: namespace,
		Context: openfeature.NewEvaluationContext(user, attrs), Logger: log})
	if err != nil {
		return nil, err
	}
	return &probe{Provider: p, domain: fmt.Sprintf("soak-%03d", i), user: user, body: body,
		toSDK: make(chan openfeature.Event, 64), ready: make(chan time.Time, 64), stale: make(chan time.Time, 64),
		counts: map[openfeature.EventType]int{}, notified: map[string]bool{}}, nil
}

// EventChannel is the channel the SDK reads: the provider's events, once recorded.
func (p *probe) EventChannel() <-chan openfeature.Event { return p.toSDK }

// record forwards the provider's events to the SDK until stop is closed.
func (p *probe) record(stop <-chan struct{}) {
	for {
		select {
		case ev := <-p.Provider.EventChannel():
			now := time.Now()
			p.mu.Lock()
			p.counts[ev.EventType]++
			if ev.EventType == openfeature.ProviderConfigChange {
				p.keys += len(ev.FlagChanges)
				for _, k := range ev.FlagChanges {
					p.notified[k] = true
				}
			}
			p.mu.Unlock()
			switch ev.EventType { // the soak drains these before each restart
			case openfeature.ProviderReady:
				offer(p.ready, now)
			case openfeature.ProviderStale:
				offer(p.stale, now)
			}
			select {
			case p.toSDK <- ev:
			case <-stop:
				return
			}
		case <-stop:
			return
		}
	}
}

func offer(c chan time.Time, t time.Time) {
	select {
	case c <- t:
	default:
	}
}

func drain(c chan time.Time) {
	for len(c) > 0 {
		<-c
	}
}

// serverFlag is a flag of POST /v1/evaluate's answer.
type serverFlag struct {
	Value     any    `json:"value"`
	Enabled   bool   `json:"enabled"`
	Variant   string `json:"variant"`
	Reason    string `json:"reason"`
	Source    string `json:"source"`
	ErrorCode string `json:"errorCode"`
}

// evaluate asks the server for a fresh evaluation of the probe's context.
func (p *probe) evaluate(ctx context.Context, hc *http.Client, base string) (map[string]serverFlag, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/namespaces/"+namespace+"/v1/evaluate", bytes.NewReader(p.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read in full below
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the evaluation of %s: %w", p.user, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("evaluating %s: %s: %s", p.user, resp.Status, b)
	}
	var r struct {
		Flags map[string]serverFlag `json:"flags"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding the evaluation of %s: %w", p.user, err)
	}
	return r.Flags, nil
}

// stale lists the keys whose value the provider serves differently from want: through
// its own UserFlags (value, enabled, variant, source) and through its OpenFeature client
// (the value, for flags with one). A key on one side only counts too.
func (p *probe) staleKeys(ctx context.Context, want map[string]serverFlag) []string {
	have, err := p.UserFlags(ctx)
	if err != nil {
		return slices.Sorted(maps.Keys(want))
	}
	var out []string
	for k := range have {
		if _, ok := want[k]; !ok {
			out = append(out, k)
		}
	}
	none := openfeature.EvaluationContext{}
	for k, w := range want {
		h, ok := have[k]
		if !ok || !reflect.DeepEqual(h.Value, w.Value) || h.Enabled != w.Enabled || h.Variant != w.Variant || h.Source != w.Source {
			out = append(out, k)
			continue
		}
		var got any
		switch w.Value.(type) {
		case nil:
			continue
		case bool:
			got, err = p.client.BooleanValue(ctx, k, false, none)
		case string:
			got, err = p.client.StringValue(ctx, k, "", none)
		case float64:
			got, err = p.client.FloatValue(ctx, k, 0, none)
		default:
			got, err = p.client.ObjectValue(ctx, k, nil, none)
		}
		if err != nil || !reflect.DeepEqual(got, w.Value) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// unnotified lists the keys whose result changed since the last checkpoint (from the
// server's evaluations at both) that no PROVIDER_CONFIGURATION_CHANGED named since.
func (p *probe) unnotified(now map[string]serverFlag) (missed []string, expected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.baseline == nil {
		return nil, 0
	}
	for k := range keysUnion(p.baseline, now) {
		if a, b := p.baseline[k], now[k]; !sameResult(a, b) || hasKey(p.baseline, k) != hasKey(now, k) {
			expected++
			if !p.notified[k] {
				missed = append(missed, k)
			}
		}
	}
	slices.Sort(missed)
	return missed, expected
}

// checkpoint makes now the baseline of the next interval.
func (p *probe) checkpoint(now map[string]serverFlag) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.baseline = now
	clear(p.notified)
}

func hasKey(m map[string]serverFlag, k string) bool { _, ok := m[k]; return ok }

func keysUnion(a, b map[string]serverFlag) map[string]struct{} {
	u := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		u[k] = struct{}{}
	}
	for k := range b {
		u[k] = struct{}{}
	}
	return u
}

func sameResult(a, b serverFlag) bool {
	return reflect.DeepEqual(a.Value, b.Value) && a.Enabled == b.Enabled && a.Variant == b.Variant &&
		a.Reason == b.Reason && a.Source == b.Source && a.ErrorCode == b.ErrorCode
}

// eventCounts returns the events recorded so far and the keys they named.
func (p *probe) eventCounts() (map[openfeature.EventType]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts), p.keys
}

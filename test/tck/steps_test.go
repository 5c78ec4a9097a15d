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

package tck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	flagops "github.com/flagops/flagops/sdk/go"
	"github.com/flagops/flagops/test/servetest"
)

const (
	// namespace holds the flags of flags/.
	namespace = "tck"
	// eventWait bounds each wait for the provider (ready, an event): generous, since
	// the machine may be busy.
	eventWait = 60 * time.Second
)

// providerClient is a provider for one evaluation context and the OpenFeature client
// of its own API instance.
type providerClient struct {
	api    *openfeature.EvaluationAPI
	client *openfeature.Client
}

// options are what a scenario chooses about its provider besides the context.
type options struct {
	grace    time.Duration
	omitMeta bool
}

// connect makes a provider for ec against the server at url and waits until it is
// ready.
func connect(t *testing.T, url string, ec openfeature.EvaluationContext, o options) (*providerClient, error) {
	p, err := flagops.NewProvider(flagops.Options{URL: url, Namespace: namespace, Context: ec,
		GracePeriod: o.grace, OmitFlagMetadata: o.omitMeta,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, fmt.Errorf("failed to create the provider: %w", err)
	}
	api := isolated.NewAPI()
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		_ = api.Shutdown(context.Background()) // the error that matters is the first
		return nil, fmt.Errorf("the provider did not become ready: %w", err)
	}
	return &providerClient{api: api, client: api.NewClient()}, nil
}

// scenario is the state of one scenario.
type scenario struct {
	s *suite
	// srv is the server of the scenario's provider, and dir the directory it serves.
	srv *servetest.Server
	dir string
	// own says srv is the scenario's own: its provider is not shared.
	own  bool
	opts options

	targetingKey string
	attrs        map[string]any

	flagType, key, def string
	pc                 *providerClient

	value  any
	detail openfeature.EvaluationDetails

	events map[openfeature.EventType]chan openfeature.EventDetails
	change openfeature.EventDetails
}

func (s *suite) initScenario(sc *godog.ScenarioContext) {
	st := &scenario{s: s, attrs: map[string]any{}, events: map[openfeature.EventType]chan openfeature.EventDetails{}}
	sc.After(func(ctx context.Context, p *godog.Scenario, err error) (context.Context, error) {
		result := "passed"
		if err != nil {
			s.failed++
			result = "failed"
		} else {
			s.passed++
		}
		s.t.Logf("%s: %s: %s (%s-flag %q, targeting key %q, attributes %v)", result, p.Uri, p.Name, st.flagType, st.key, st.targetingKey, st.attrs)
		if st.own {
			if st.pc != nil {
				_ = st.pc.api.Shutdown(context.Background()) // the server goes too
			}
			st.srv.Stop()
		}
		return ctx, nil
	})

	sc.Step(`^a stable flagops provider$`, st.stableProvider)
	sc.Step(`^a stable flagops provider with a grace period of (\d+) seconds?$`, st.providerWithGrace)
	sc.Step(`^a stable flagops provider without flag metadata$`, st.providerWithoutMetadata)
	sc.Step(`^a flagops server of its own$`, st.ownServer)
	sc.Step(`^an? (Boolean|String|Integer|Float|Object)-flag with key "([^"]*)" and a default value "(.*)"$`, st.flag)
	sc.Step(`^a context containing a key "([^"]*)", with type "(String|Integer|Float|Boolean)" and with value "([^"]*)"$`, st.contextKey)
	sc.Step(`^a context containing a targeting key with value "([^"]*)"$`, st.contextTargetingKey)
	sc.Step(`^the flag was evaluated with details$`, st.evaluate)
	sc.Step(`^the resolved details value should be "(.*)"$`, st.valueShouldBe)
	sc.Step(`^the reason should be "([^"]*)"$`, st.reasonShouldBe)
	sc.Step(`^the variant should be "([^"]*)"$`, st.variantShouldBe)
	sc.Step(`^the error-code should be "([^"]*)"$`, st.errorCodeShouldBe)
	sc.Step(`^the resolved metadata should contain$`, st.metadataShouldContain)
	sc.Step(`^the resolved metadata is empty$`, st.metadataEmpty)
	sc.Step(`^an? (ready|error|stale|change) event handler$`, st.handler)
	sc.Step(`^the (ready|error|stale|change) event handler should have been executed$`, st.handlerExecuted)
	sc.Step(`^the (ready|error|stale|change) event handler should not have been executed$`, st.handlerNotExecuted)
	sc.Step(`^the connection is lost$`, st.connectionLost)
	sc.Step(`^the connection is restored$`, st.connectionRestored)
	sc.Step(`^the flag was modified$`, st.modifyFlag)
	sc.Step(`^a change event was fired$`, st.changeFired)
	sc.Step(`^the flag should be part of the event payload$`, st.flagInPayload)
}

func (st *scenario) stableProvider() error {
	if st.srv == nil {
		st.srv = st.s.shared
	}
	return nil
}

func (st *scenario) providerWithGrace(seconds int) error {
	st.opts.grace = time.Duration(seconds) * time.Second
	return st.stableProvider()
}

func (st *scenario) providerWithoutMetadata() error {
	st.opts.omitMeta = true
	return st.stableProvider()
}

// ownServer starts a server for this scenario alone, on a copy of flags/, for
// scenarios that stop it or change its files.
func (st *scenario) ownServer() error {
	st.dir = copyFlags(st.s.t)
	st.srv = servetest.Start(st.s.t, st.s.bin, st.dir, "127.0.0.1:0")
	st.own = true
	return nil
}

func (st *scenario) flag(typ, key, def string) error {
	st.flagType, st.key, st.def = typ, key, def
	return nil
}

func (st *scenario) contextKey(key, typ, value string) error {
	v, err := parseValue(typ, value)
	if err != nil {
		return fmt.Errorf("context key %q: %w", key, err)
	}
	st.attrs[key] = v
	return nil
}

func (st *scenario) contextTargetingKey(key string) error {
	st.targetingKey = key
	return nil
}

// evalContext is the scenario's evaluation context.
func (st *scenario) evalContext() openfeature.EvaluationContext {
	return openfeature.NewEvaluationContext(st.targetingKey, st.attrs)
}

// client returns the client of the provider for the scenario's context: on the
// shared server, the one made for that context and options by an earlier scenario,
// if any.
func (st *scenario) client() (*openfeature.Client, error) {
	if st.pc != nil {
		return st.pc.client, nil
	}
	if st.srv == nil {
		return nil, errors.New("no provider: the scenario must start with a stable flagops provider")
	}
	ec := st.evalContext()
	if st.own {
		pc, err := connect(st.s.t, st.srv.URL, ec, st.opts)
		st.pc = pc
		if err != nil {
			return nil, err
		}
		return pc.client, nil
	}
	id, err := json.Marshal(map[string]any{"targetingKey": st.targetingKey, "attributes": st.attrs,
		"grace": st.opts.grace, "omitMetadata": st.opts.omitMeta})
	if err != nil {
		return nil, fmt.Errorf("failed to encode the context: %w", err)
	}
	pc := st.s.clients[string(id)]
	if pc == nil {
		if pc, err = connect(st.s.t, st.srv.URL, ec, st.opts); err != nil {
			return nil, err
		}
		st.s.clients[string(id)] = pc
		st.s.t.Cleanup(func() { _ = pc.api.Shutdown(context.Background()) }) // nothing to do about it
	}
	st.pc = pc
	return pc.client, nil
}

// evaluate evaluates the scenario's flag with the typed details call of its type,
// passing the scenario's context as an application would.
func (st *scenario) evaluate(ctx context.Context) error {
	c, err := st.client()
	if err != nil {
		return err
	}
	def, err := parseValue(st.flagType, st.def)
	if err != nil {
		return fmt.Errorf("default value: %w", err)
	}
	ec := st.evalContext()
	// The details' error is the one in detail.ErrorCode, which the steps check.
	switch st.flagType {
	case "Boolean":
		d, _ := c.BooleanValueDetails(ctx, st.key, def.(bool), ec)
		st.value, st.detail = d.Value, d.EvaluationDetails
	case "String":
		d, _ := c.StringValueDetails(ctx, st.key, def.(string), ec)
		st.value, st.detail = d.Value, d.EvaluationDetails
	case "Integer":
		d, _ := c.IntValueDetails(ctx, st.key, def.(int64), ec)
		st.value, st.detail = d.Value, d.EvaluationDetails
	case "Float":
		d, _ := c.FloatValueDetails(ctx, st.key, def.(float64), ec)
		st.value, st.detail = d.Value, d.EvaluationDetails
	case "Object":
		d, _ := c.ObjectValueDetails(ctx, st.key, def, ec)
		st.value, st.detail = d.Value, d.EvaluationDetails
	}
	return nil
}

// parseValue reads a value written in a scenario as the given type.
func parseValue(typ, s string) (any, error) {
	var v any
	var err error
	switch typ {
	case "Boolean":
		v, err = strconv.ParseBool(s)
	case "String":
		v = s
	case "Integer":
		v, err = strconv.ParseInt(s, 10, 64)
	case "Float":
		v, err = strconv.ParseFloat(s, 64)
	case "Object":
		err = json.Unmarshal([]byte(s), &v)
	default:
		err = fmt.Errorf("unknown type %q", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%q is not a %s: %w", s, typ, err)
	}
	return v, nil
}

func (st *scenario) valueShouldBe(want string) error {
	w, err := parseValue(st.flagType, want)
	if err != nil {
		return fmt.Errorf("expected value: %w", err)
	}
	if !reflect.DeepEqual(st.value, w) {
		return fmt.Errorf("value %#v, want %#v (reason %s, error %s %s)", st.value, w, st.detail.Reason, st.detail.ErrorCode, st.detail.ErrorMessage)
	}
	return nil
}

func (st *scenario) reasonShouldBe(want string) error {
	if got := string(st.detail.Reason); got != want {
		return fmt.Errorf("reason %q, want %q (error %s %s)", got, want, st.detail.ErrorCode, st.detail.ErrorMessage)
	}
	return nil
}

func (st *scenario) variantShouldBe(want string) error {
	if st.detail.Variant != want {
		return fmt.Errorf("variant %q, want %q", st.detail.Variant, want)
	}
	return nil
}

// errorCodeShouldBe checks the error code; "" means none.
func (st *scenario) errorCodeShouldBe(want string) error {
	if got := string(st.detail.ErrorCode); got != want {
		return fmt.Errorf("error code %q, want %q (%s)", got, want, st.detail.ErrorMessage)
	}
	return nil
}

// metadataShouldContain checks the table's rows (key, metadata_type, value) against
// the flag metadata of the last evaluation.
func (st *scenario) metadataShouldContain(table *godog.Table) error {
	if len(table.Rows) < 2 {
		return errors.New("the table needs a header row (key, metadata_type, value) and at least one row")
	}
	md := st.detail.FlagMetadata
	for _, row := range table.Rows[1:] {
		if len(row.Cells) != 3 {
			return fmt.Errorf("row has %d cells, want key, metadata_type and value", len(row.Cells))
		}
		key, typ, want := row.Cells[0].Value, row.Cells[1].Value, row.Cells[2].Value
		var got any
		var err error
		switch typ {
		case "String":
			got, err = md.GetString(key)
		case "Boolean":
			got, err = md.GetBool(key)
		case "Integer":
			got, err = md.GetInt(key)
		case "Float":
			got, err = md.GetFloat(key)
		default:
			return fmt.Errorf("unknown metadata type %q", typ)
		}
		if err != nil {
			return fmt.Errorf("metadata %q: %w (metadata %v)", key, err, md)
		}
		w, err := parseValue(typ, want)
		if err != nil {
			return fmt.Errorf("expected metadata %q: %w", key, err)
		}
		if got != w {
			return fmt.Errorf("metadata %q = %#v, want %#v", key, got, w)
		}
	}
	return nil
}

func (st *scenario) metadataEmpty() error {
	if len(st.detail.FlagMetadata) != 0 {
		return fmt.Errorf("metadata %v, want none", st.detail.FlagMetadata)
	}
	return nil
}

var eventTypes = map[string]openfeature.EventType{
	"ready":  openfeature.ProviderReady,
	"error":  openfeature.ProviderError,
	"stale":  openfeature.ProviderStale,
	"change": openfeature.ProviderConfigChange,
}

// handler adds a handler of the event type to the scenario's client; the events it
// gets are kept in order.
func (st *scenario) handler(name string) error {
	c, err := st.client()
	if err != nil {
		return err
	}
	typ := eventTypes[name]
	ch := make(chan openfeature.EventDetails, 64)
	st.events[typ] = ch
	cb := func(d openfeature.EventDetails) {
		select {
		case ch <- d:
		default: // 64 events of one type: a scenario waits for far fewer
		}
	}
	c.AddHandler(typ, &cb)
	return nil
}

// next returns the next event the handler of the type got, waiting for it.
func (st *scenario) next(name string) (openfeature.EventDetails, error) {
	ch := st.events[eventTypes[name]]
	if ch == nil {
		return openfeature.EventDetails{}, fmt.Errorf("no %s event handler", name)
	}
	select {
	case d := <-ch:
		return d, nil
	case <-time.After(eventWait):
		return openfeature.EventDetails{}, fmt.Errorf("the %s event handler was not executed within %s", name, eventWait)
	}
}

func (st *scenario) handlerExecuted(name string) error {
	_, err := st.next(name)
	return err
}

// handlerNotExecuted checks that the handler has got no event so far.
func (st *scenario) handlerNotExecuted(name string) error {
	ch := st.events[eventTypes[name]]
	if ch == nil {
		return fmt.Errorf("no %s event handler", name)
	}
	if n := len(ch); n > 0 {
		return fmt.Errorf("the %s event handler was executed %d times", name, n)
	}
	return nil
}

func (st *scenario) connectionLost() error {
	if !st.own {
		return errors.New("the scenario must have a flagops server of its own to lose the connection")
	}
	st.srv.Stop()
	return nil
}

// connectionRestored starts a new server on the address of the stopped one.
func (st *scenario) connectionRestored() error {
	if !st.own {
		return errors.New("the scenario must have a flagops server of its own to restore the connection")
	}
	st.srv = servetest.Start(st.s.t, st.s.bin, st.dir, st.srv.Addr)
	return nil
}

// modifyFlag rewrites the scenario's flag, a String flag in the file named after its
// key, with the value "bar".
func (st *scenario) modifyFlag() error {
	if !st.own {
		return errors.New("the scenario must have a flagops server of its own to modify a flag")
	}
	servetest.WriteAtomic(st.s.t, filepath.Join(st.dir, st.key+".yaml"), `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: `+st.key+`
  namespace: `+namespace+`
spec:
  type: String
  enabled: true
  value: bar
`)
	return nil
}

func (st *scenario) changeFired() error {
	d, err := st.next("change")
	st.change = d
	return err
}

func (st *scenario) flagInPayload() error {
	if !slices.Contains(st.change.FlagChanges, st.key) {
		return fmt.Errorf("the change event's flags %v do not include %q", st.change.FlagChanges, st.key)
	}
	return nil
}

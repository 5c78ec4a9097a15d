package inprocess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

// wait bounds every wait for something asynchronous: generous, since the machine
// may be busy; waits end as soon as the thing happens.
const wait = 20 * time.Second

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// fixture is an evaluator (the real server package over a store) behind a switch:
// replace puts another evaluator (another replica) behind the same URL, drop ends
// every open connection.
type fixture struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	store   *evaluator.Store
	syncs   atomic.Int32 // sync requests seen
	lastIDs chan string  // Last-Event-ID of each sync request
}

func newFixture(t testing.TB, opts server.Options) *fixture {
	t.Helper()
	f := &fixture{lastIDs: make(chan string, 64)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/v1/sync") {
			f.syncs.Add(1)
			select {
			case f.lastIDs <- r.Header.Get("Last-Event-ID"):
			default:
			}
		}
		(*f.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.replace(t, newStore(t), opts)
	return f
}

// replace serves store from now on, through a new server, and drops the open
// connections.
func (f *fixture) replace(t testing.TB, store *evaluator.Store, opts server.Options) {
	t.Helper()
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "shop"
	}
	h := server.New(store, opts)
	f.store = store
	f.handler.Store(&h)
	f.srv.CloseClientConnections()
}

var created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newStore holds flags of every kind of step the evaluator has, and overrides.
func newStore(t testing.TB) *evaluator.Store {
	t.Helper()
	s := evaluator.NewStore()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	apply(t, s,
		evaluator.UpsertFlag("shop", "checkout", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true,
			Rules:   []evaluator.Rule{{Name: "beta", Match: []evaluator.Condition{{Attribute: "orgId", Operator: evaluator.OpIn, Values: []string{"acme"}}}}},
			Rollout: &evaluator.Rollout{Percentage: 30}}),
		evaluator.UpsertFlag("shop", "theme", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"dark"`),
			OffValue: raw(`"light"`), AllowList: &evaluator.AllowList{Users: []string{"vip"}}}),
		evaluator.UpsertFlag("shop", "banner", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: false, Value: raw(`"sale"`)}),
		evaluator.UpsertFlag("shop", "limits", evaluator.FlagSpec{Type: evaluator.TypeObject, Enabled: true, Value: raw(`{"max":5}`)}),
		evaluator.UpsertFlag("shop", "ratio", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true, Value: raw(`2.5`)}),
		evaluator.UpsertFlag("shop", "seats", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true, Value: raw(`7`)}),
		evaluator.UpsertFlag("shop", "admin", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true, AllowedRoles: []string{"admin"}}),
		evaluator.UpsertFlag("shop", "broken", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true}),
		evaluator.UpsertFlag("other", "theme", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"other"`)}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "alice", Namespace: "shop", Name: "alice-pilot",
			UID: "u1", CreatedAt: created, Enabled: true, ExpiresAt: &exp, Reason: "pilot customer",
			Entries: []evaluator.OverrideEntry{{Key: "theme", Value: raw(`"neon"`)}, {Key: "checkout"}}}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectDevice, SubjectID: "tab-1", Namespace: "shop", Name: "tab-1-qa",
			UID: "d1", CreatedAt: created, Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "limits", Value: raw(`{"max":99}`)}}}),
	)
	return s
}

func apply(t testing.TB, s *evaluator.Store, ops ...evaluator.Op) {
	t.Helper()
	if _, _, err := s.Apply(ops...); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestProvider returns a provider of the fixture, not initialised, shut down at
// cleanup.
func newTestProvider(t *testing.T, f *fixture, o Options) *Provider {
	t.Helper()
	o.URL = f.srv.URL
	o.Logger = testLogger(t)
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = wait
	}
	p, err := NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p
}

// start returns an initialised provider of the fixture, whose events the test reads.
func start(t *testing.T, f *fixture, o Options) *Provider {
	t.Helper()
	p := newTestProvider(t, f, o)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return p
}

// startWithSDK returns a provider of the fixture set in an OpenFeature domain of its
// own, and a client of that domain. The SDK reads its events.
func startWithSDK(t *testing.T, f *fixture, o Options) (*Provider, *openfeature.Client) {
	t.Helper()
	p := newTestProvider(t, f, o)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), p); err != nil {
		t.Fatalf("init: %v", err)
	}
	return p, openfeature.NewClient(t.Name())
}

// expectEvent waits for the provider's next event, which must be of type et with
// exactly keys.
func expectEvent(t *testing.T, p *Provider, et openfeature.EventType, keys ...string) {
	t.Helper()
	select {
	case ev := <-p.EventChannel():
		if ev.EventType != et || !slices.Equal(ev.FlagChanges, keys) {
			t.Fatalf("event %s %v (%s), want %s %v", ev.EventType, ev.FlagChanges, ev.Message, et, keys)
		}
	case <-time.After(wait):
		t.Fatalf("no %s event within %s", et, wait)
	}
}

// noEvent asserts that no event comes while a write to another namespace has had
// time to reach the stream: it writes a marker to the namespace and expects the
// marker's event alone.
func noEvent(t *testing.T, p *Provider, f *fixture) {
	t.Helper()
	apply(t, f.store, evaluator.UpsertFlag("shop", "marker", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true}))
	expectEvent(t, p, openfeature.ProviderConfigChange, "marker")
}

// str evaluates a string flag for ec through the provider.
func str(p *Provider, key string, ec openfeature.EvaluationContext) openfeature.StringResolutionDetail {
	return p.StringEvaluation(context.Background(), key, "none", flatten(ec))
}

func flatten(ec openfeature.EvaluationContext) openfeature.FlattenedContext {
	m := openfeature.FlattenedContext{}
	for k, v := range ec.Attributes() {
		m[k] = v
	}
	if tk := ec.TargetingKey(); tk != "" {
		m[openfeature.TargetingKey] = tk
	}
	return m
}

var contexts = []openfeature.EvaluationContext{
	openfeature.NewEvaluationContext("alice", nil),
	openfeature.NewEvaluationContext("bob", map[string]any{"orgId": "acme"}),
	openfeature.NewEvaluationContext("vip", nil),
	openfeature.NewEvaluationContext("carol", map[string]any{"role": "admin"}),
	openfeature.NewEvaluationContext("dave", map[string]any{"role": "user", "deviceId": "tab-1", "deviceClass": "tablet"}),
	openfeature.NewTargetlessEvaluationContext(map[string]any{"userId": "u-17", "plan": "pro", "age": 42}),
	openfeature.NewTargetlessEvaluationContext(nil),
}

var keys = []string{"checkout", "theme", "banner", "limits", "ratio", "seats", "admin", "broken", "missing"}

// ofrep asks the evaluator's OFREP route (single evaluation) for key in ec.
func ofrep(t *testing.T, f *fixture, key string, ec openfeature.EvaluationContext) map[string]any {
	t.Helper()
	c := map[string]any{}
	for k, v := range ec.Attributes() {
		c[k] = v
	}
	if tk := ec.TargetingKey(); tk != "" {
		c["targetingKey"] = tk
	}
	body, _ := json.Marshal(map[string]any{"context": c})
	resp, err := http.Post(f.srv.URL+"/ofrep/v1/evaluate/flags/"+key, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("OFREP %s: %s", key, b)
	}
	return out
}

// TestEvaluationAsTheEvaluator: every flag, for every context, resolves in process
// to what the evaluator's OFREP single evaluation answers: value, reason, variant,
// error code and metadata.
func TestEvaluationAsTheEvaluator(t *testing.T) {
	f := newFixture(t, server.Options{})
	_, client := startWithSDK(t, f, Options{})
	ctx := context.Background()
	for _, ec := range contexts {
		for _, key := range keys {
			want := ofrep(t, f, key, ec)
			d, err := client.ObjectValueDetails(ctx, key, "default", ec)
			got := map[string]any{"key": key}
			switch {
			case err != nil:
				got["errorCode"] = string(d.ErrorCode)
			default:
				got["reason"] = string(d.Reason)
				if d.Variant != "" {
					got["variant"] = d.Variant
				}
				if d.Value != "default" {
					got["value"] = d.Value
				}
				got["metadata"] = map[string]any(d.FlagMetadata)
			}
			// The object call gets a TYPE_MISMATCH for other types: ask by type.
			if d.ErrorCode == openfeature.TypeMismatchCode {
				got = typed(t, client, key, ec)
			}
			delete(want, "errorDetails")
			if !reflect.DeepEqual(normalise(got), normalise(want)) {
				t.Errorf("%s for %v %v:\n in process %v\n evaluator  %v", key, ec.TargetingKey(), ec.Attributes(), got, want)
			}
		}
	}
}

// typed resolves key with the call of its value's type.
func typed(t *testing.T, client *openfeature.Client, key string, ec openfeature.EvaluationContext) map[string]any {
	t.Helper()
	ctx := context.Background()
	got := map[string]any{"key": key}
	var value any
	var d openfeature.EvaluationDetails
	if b, err := client.BooleanValueDetails(ctx, key, false, ec); err == nil {
		value, d = b.Value, b.EvaluationDetails
	} else if s, err := client.StringValueDetails(ctx, key, "", ec); err == nil {
		value, d = s.Value, s.EvaluationDetails
	} else if n, err := client.FloatValueDetails(ctx, key, 0, ec); err == nil {
		value, d = n.Value, n.EvaluationDetails
	} else {
		t.Fatalf("%s resolves with no type: %v", key, err)
	}
	got["reason"] = string(d.Reason)
	if d.Variant != "" {
		got["variant"] = d.Variant
	}
	if d.Reason != openfeature.DisabledReason {
		got["value"] = value
	}
	got["metadata"] = map[string]any(d.FlagMetadata)
	return got
}

// normalise compares JSON forms (numbers as float64).
func normalise(m map[string]any) any {
	b, _ := json.Marshal(m)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestChangesReachTheProvider(t *testing.T) {
	f := newFixture(t, server.Options{})
	p := start(t, f, Options{})
	alice := openfeature.NewEvaluationContext("alice", nil)
	bob := openfeature.NewEvaluationContext("bob", nil)

	steps := []struct {
		name  string
		ops   []evaluator.Op
		keys  []string
		check func(t *testing.T)
	}{
		{"a flag flipped", []evaluator.Op{evaluator.UpsertFlag("shop", "banner",
			evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"sale"`)})}, []string{"banner"},
			func(t *testing.T) {
				if d := str(p, "banner", bob); d.Value != "sale" {
					t.Errorf("banner = %q, want sale", d.Value)
				}
			}},
		{"an override for bob", []evaluator.Op{evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser,
			SubjectID: "bob", Namespace: "shop", Name: "bob-theme", CreatedAt: created, Enabled: true, Reason: "support",
			Entries: []evaluator.OverrideEntry{{Key: "theme", Value: raw(`"blue"`)}}})}, []string{"theme"},
			func(t *testing.T) {
				if d := str(p, "theme", bob); d.Value != "blue" || d.FlagMetadata["overrideReason"] != "support" {
					t.Errorf("bob's theme = %q %v, want blue with its reason", d.Value, d.FlagMetadata)
				}
				if d := str(p, "theme", alice); d.Value != "neon" {
					t.Errorf("alice's theme = %q, want neon", d.Value)
				}
			}},
		{"only the reason changed", []evaluator.Op{evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser,
			SubjectID: "bob", Namespace: "shop", Name: "bob-theme", CreatedAt: created, Enabled: true, Reason: "ticket 7",
			Entries: []evaluator.OverrideEntry{{Key: "theme", Value: raw(`"blue"`)}}})}, []string{"theme"},
			func(t *testing.T) {
				if d := str(p, "theme", bob); d.FlagMetadata["overrideReason"] != "ticket 7" {
					t.Errorf("bob's theme metadata %v, want the new reason", d.FlagMetadata)
				}
			}},
		{"the override deleted", []evaluator.Op{evaluator.DeleteOverride(evaluator.SubjectUser, "shop", "bob-theme")}, []string{"theme"},
			func(t *testing.T) {
				if d := str(p, "theme", bob); d.Value != "dark" {
					t.Errorf("bob's theme = %q, want dark", d.Value)
				}
			}},
		{"a flag deleted", []evaluator.Op{evaluator.DeleteFlag("shop", "ratio")}, []string{"ratio"},
			func(t *testing.T) {
				d := p.FloatEvaluation(context.Background(), "ratio", 1, flatten(bob))
				if d.ResolutionDetail().ErrorCode != openfeature.FlagNotFoundCode {
					t.Errorf("ratio after deletion: %+v, want FLAG_NOT_FOUND", d)
				}
			}},
	}
	for _, st := range steps {
		apply(t, f.store, st.ops...)
		expectEvent(t, p, openfeature.ProviderConfigChange, st.keys...)
		st.check(t)
	}
	// Another namespace's write changes nothing here.
	apply(t, f.store, evaluator.UpsertFlag("other", "theme", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"x"`)}))
	noEvent(t, p, f)
}

// TestResumeAndReplicas: a dropped stream resumes where it was on the same evaluator
// (changes made while it was down arrive, without a snapshot); on another evaluator
// it gets a snapshot, and the keys that differ are reported.
func TestResumeAndReplicas(t *testing.T) {
	f := newFixture(t, server.Options{})
	p := start(t, f, Options{GracePeriod: time.Hour})
	bob := openfeature.NewEvaluationContext("bob", nil)
	<-f.lastIDs // the first request

	// Down while a write happens: the gate holds the handler, so the provider cannot
	// reconnect before the write.
	gate := make(chan struct{})
	h := *f.handler.Load()
	held := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		h.ServeHTTP(w, r)
	}))
	f.handler.Store(&held)
	f.srv.CloseClientConnections()
	expectEvent(t, p, openfeature.ProviderStale)
	apply(t, f.store, evaluator.UpsertFlag("shop", "seats", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true, Value: raw(`8`)}))
	close(gate)
	if id := <-f.lastIDs; id == "" {
		t.Fatal("the provider reconnected without Last-Event-ID")
	}
	expectEvent(t, p, openfeature.ProviderReady)
	expectEvent(t, p, openfeature.ProviderConfigChange, "seats")
	if d := p.IntEvaluation(context.Background(), "seats", 0, flatten(bob)); d.Value != 8 {
		t.Errorf("seats = %d, want 8", d.Value)
	}

	// Another replica, whose store differs: a snapshot, then exactly the keys whose
	// definition differs from what the provider held. alice's override there has
	// another UID and creation time (as after a restart of flagops serve --dir) but
	// serves the same: no result changes, so its keys are not reported.
	other := newStore(t)
	alice, _ := f.store.Namespace("shop").Override(evaluator.SubjectUser, "alice-pilot")
	alice.UID, alice.CreatedAt = "u2", alice.CreatedAt.Add(time.Hour)
	apply(t, other, evaluator.UpsertOverride(alice),
		evaluator.UpsertFlag("shop", "seats", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true, Value: raw(`8`)}),
		evaluator.UpsertFlag("shop", "banner", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"new"`)}),
		evaluator.DeleteFlag("shop", "limits"))
	f.replace(t, other, server.Options{})
	expectEvent(t, p, openfeature.ProviderStale)
	expectEvent(t, p, openfeature.ProviderReady)
	expectEvent(t, p, openfeature.ProviderConfigChange, "banner", "limits")
	if d := str(p, "banner", bob); d.Value != "new" {
		t.Errorf("banner = %q after the snapshot, want new", d.Value)
	}
	_, client := startWithSDK(t, f, Options{})
	for _, key := range keys {
		want := ofrep(t, f, key, bob)
		got := typedOrError(t, client, key, bob)
		if fmt.Sprint(got) != fmt.Sprint(want["value"]) {
			t.Errorf("%s = %v after the snapshot, evaluator %v", key, got, want["value"])
		}
	}
}

// typedOrError is the value key resolves to, or <nil> when the caller's default applies.
func typedOrError(t *testing.T, client *openfeature.Client, key string, ec openfeature.EvaluationContext) any {
	t.Helper()
	ctx := context.Background()
	d, err := client.ObjectValueDetails(ctx, key, nil, ec)
	switch {
	case err == nil:
		return d.Value
	case d.ErrorCode != openfeature.TypeMismatchCode:
		return nil
	}
	m := typed(t, client, key, ec)
	return m["value"]
}

func TestHelpers(t *testing.T) {
	f := newFixture(t, server.Options{})
	p := start(t, f, Options{})
	as := func(ec openfeature.EvaluationContext) context.Context {
		return openfeature.WithTransactionContext(context.Background(), ec)
	}
	alice := as(openfeature.NewEvaluationContext("alice", nil))
	info, ok := p.OverrideInfo(alice, "theme")
	if !ok || info.Kind != "user" || info.Namespace != "shop" || info.Name != "alice-pilot" || info.Value != "neon" ||
		info.Reason != "pilot customer" || info.ExpiresAt == nil || info.Variant != "override" {
		t.Errorf("alice's theme override: %+v, %v", info, ok)
	}
	if !p.HasOverride(alice, "checkout") || p.HasOverride(alice, "banner") || p.HasOverride(alice, "missing") {
		t.Error("HasOverride: want checkout only")
	}
	dev := as(openfeature.NewEvaluationContext("dave", map[string]any{"deviceId": "tab-1", "deviceClass": "tablet"}))
	if info, ok := p.OverrideInfo(dev, "limits"); !ok || info.Kind != "device" || info.Name != "tab-1-qa" {
		t.Errorf("dave's device override of limits: %+v, %v", info, ok)
	}
	flags, err := p.UserFlags(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, seen := flags["admin"]; seen || len(flags) != 7 {
		t.Errorf("alice's flags %v: want 7, without the role-gated admin", flags)
	}
	if fl := flags["theme"]; fl.Value != "neon" || fl.Source != "user-override:shop/alice-pilot" {
		t.Errorf("alice's theme %+v", fl)
	}
	if fl := flags["broken"]; fl.ErrorCode != openfeature.ParseErrorCode || fl.Value != nil {
		t.Errorf("broken %+v, want PARSE_ERROR", fl)
	}
	// The caller owns the values it gets.
	flags["limits"].Value.(map[string]any)["max"] = 1000.0
	if again, _ := p.UserFlags(alice); again["limits"].Value.(map[string]any)["max"] != 5.0 {
		t.Error("changing a returned object changed the provider's")
	}
	if _, err := p.UserFlags(as(openfeature.NewTargetlessEvaluationContext(map[string]any{"userId": 7}))); err == nil {
		t.Error("UserFlags with a userId that is a number: no error")
	}
}

func TestNotReadyAndBadContext(t *testing.T) {
	p, err := NewProvider(Options{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	d := p.BooleanEvaluation(context.Background(), "checkout", true, openfeature.FlattenedContext{})
	if d.Value != true || d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Errorf("before Init: %+v", d)
	}
	if _, err := p.UserFlags(context.Background()); err == nil {
		t.Error("UserFlags before Init: no error")
	}
	f := newFixture(t, server.Options{})
	p = start(t, f, Options{})
	d = p.BooleanEvaluation(context.Background(), "checkout", true, openfeature.FlattenedContext{"userId": []int{1}})
	if d.Value != true || d.ResolutionDetail().ErrorCode != openfeature.InvalidContextCode {
		t.Errorf("a context attribute of an unsupported type: %+v", d)
	}
}

func TestNewProviderChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no URL", Options{}, "Options.URL"},
		{"relative URL", Options{URL: "/x"}, "Options.URL"},
		{"negative grace", Options{URL: "http://x", GracePeriod: -1}, "Options.GracePeriod"},
		{"client timeout", Options{URL: "http://x", HTTPClient: &http.Client{Timeout: time.Second}}, "Options.HTTPClient"},
		{"negative max event", Options{URL: "http://x", MaxEventBytes: -1}, "Options.MaxEventBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewProvider(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewProvider: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	p, err := NewProvider(Options{URL: "https://flags.example.com/", Namespace: "a b"})
	if err != nil || p.url != "https://flags.example.com/namespaces/a%20b/v1/sync" {
		t.Errorf("URL %q, %v", p.url, err)
	}
}

func TestMetadataCache(t *testing.T) {
	p, err := NewProvider(Options{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	a := p.meta(true, "rule:beta")
	if b := p.meta(true, "rule:beta"); fmt.Sprintf("%p", a) != fmt.Sprintf("%p", b) {
		t.Error("the same metadata twice: not shared")
	}
	for i := range maxMetas + 10 {
		if m := p.meta(i%2 == 0, fmt.Sprint("rule:r", i)); m["source"] != fmt.Sprint("rule:r", i) || m["enabled"] != (i%2 == 0) {
			t.Fatalf("meta %d = %v", i, m)
		}
	}
	if len(p.metas) > maxMetas {
		t.Errorf("the cache holds %d entries, more than %d", len(p.metas), maxMetas)
	}
	if m := p.meta(false, ""); len(m) != 1 || m["enabled"] != false {
		t.Errorf("metadata without a source: %v", m)
	}
}

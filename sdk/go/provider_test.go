package flagops

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
)

// flags is a snapshot's flags: one of each kind of result the evaluator sends.
const flags = `{
	"banner":{"value":true,"enabled":true,"variant":"on","reason":"STATIC","source":"default"},
	"layout":{"value":"stacked","enabled":true,"variant":"beta","reason":"TARGETING_MATCH","source":"rule:beta"},
	"limit":{"value":5,"enabled":true,"variant":"on","reason":"SPLIT","source":"rollout"},
	"ratio":{"value":0.25,"enabled":true,"variant":"on","reason":"STATIC","source":"default"},
	"limits":{"value":{"maxStudents":1,"tags":["a"]},"enabled":true,"variant":"on","reason":"STATIC","source":"default"},
	"promo":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch"},
	"legacy":{"value":"classic","enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch"},
	"admin":{"value":"hidden","enabled":false,"variant":"off","reason":"DISABLED","source":"role-gate"},
	"broken":{"enabled":false,"reason":"ERROR","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
	"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme",
		"overrideReason":"pilot","overrideExpiresAt":"2030-01-01T13:00:00Z"},
	"dark":{"value":false,"enabled":false,"variant":"off","reason":"TARGETING_MATCH","source":"device-override:shop/d1-dark","overrideReason":"kiosk"}
}`

// ready returns a provider of a new fake server that holds flags for bob, and the
// stream connection.
func ready(t testing.TB, o Options) (*Provider, *fakeServer, *fakeConn) {
	t.Helper()
	f := newFakeServer(t)
	p := newTestProvider(t, f, o)
	done := initAsync(p, openfeature.NewEvaluationContext("bob", nil))
	c := f.next(t)
	c.send(snapshot("id1", flags))
	if err := initResult(t, done); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return p, f, c
}

// TestEvaluationThroughOpenFeature evaluates every kind of result through an
// OpenFeature client: value, variant, reason, metadata, and the caller's default
// with the error code when there is no value of the type asked for.
func TestEvaluationThroughOpenFeature(t *testing.T) {
	f := newFakeServer(t)
	p := newTestProvider(t, f, Options{})
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	api.SetEvaluationContext(openfeature.NewEvaluationContext("bob", nil))
	done := make(chan error, 1)
	go func() { done <- api.SetProviderAndWait(context.Background(), p) }()
	f.next(t).send(snapshot("id1", flags))
	if err := initResult(t, done); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	client := api.NewClient()
	if s := client.State(); s != openfeature.ReadyState {
		t.Fatalf("client state %s, want READY", s)
	}
	ctx := context.Background()
	none := openfeature.EvaluationContext{}

	tests := []struct {
		name, flag, typ string
		def             any
		value           any
		reason          openfeature.Reason
		variant         string
		errCode         openfeature.ErrorCode
		meta            openfeature.FlagMetadata
	}{
		{"boolean", "banner", "bool", false, true, openfeature.StaticReason, "on", "",
			openfeature.FlagMetadata{"source": "default", "enabled": true}},
		{"string of a rule", "layout", "string", "none", "stacked", openfeature.TargetingMatchReason, "beta", "",
			openfeature.FlagMetadata{"source": "rule:beta", "enabled": true}},
		{"whole number as int", "limit", "int", int64(1), int64(5), openfeature.SplitReason, "on", "", nil},
		{"whole number as float", "limit", "float", 1.0, 5.0, openfeature.SplitReason, "on", "", nil},
		{"fraction as float", "ratio", "float", 1.0, 0.25, openfeature.StaticReason, "on", "", nil},
		{"object", "limits", "object", nil, map[string]any{"maxStudents": 1.0, "tags": []any{"a"}},
			openfeature.StaticReason, "on", "", nil},
		{"user override", "theme", "string", "none", "neon", openfeature.TargetingMatchReason, "override", "",
			openfeature.FlagMetadata{"source": "user-override:shop/bob-theme", "enabled": true,
				"overrideReason": "pilot", "overrideExpiresAt": "2030-01-01T13:00:00Z"}},
		{"device override", "dark", "bool", true, false, openfeature.TargetingMatchReason, "off", "",
			openfeature.FlagMetadata{"source": "device-override:shop/d1-dark", "enabled": false, "overrideReason": "kiosk"}},
		{"no value: the default, DISABLED", "promo", "string", "none", "none", openfeature.DisabledReason, "off", "",
			openfeature.FlagMetadata{"source": "kill-switch", "enabled": false}},
		{"kill switch with an off value: STATIC, as OFREP says", "legacy", "string", "none", "classic", openfeature.StaticReason, "off", "",
			openfeature.FlagMetadata{"source": "kill-switch", "enabled": false}},
		{"role gate with an off value: TARGETING_MATCH, as OFREP says", "admin", "string", "none", "hidden", openfeature.TargetingMatchReason, "off", "", nil},
		{"unknown key", "nope", "bool", true, true, openfeature.ErrorReason, "", openfeature.FlagNotFoundCode, nil},
		{"string as boolean", "layout", "bool", true, true, openfeature.ErrorReason, "", openfeature.TypeMismatchCode, nil},
		{"fraction as int", "ratio", "int", int64(7), int64(7), openfeature.ErrorReason, "", openfeature.TypeMismatchCode, nil},
		{"boolean as object", "banner", "object", "dflt", "dflt", openfeature.ErrorReason, "", openfeature.TypeMismatchCode, nil},
		{"number as string", "limit", "string", "none", "none", openfeature.ErrorReason, "", openfeature.TypeMismatchCode, nil},
		{"evaluator error", "broken", "string", "none", "none", openfeature.ErrorReason, "", openfeature.ParseErrorCode, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var value any
			var d openfeature.EvaluationDetails
			switch tc.typ {
			case "bool":
				r, _ := client.BooleanValueDetails(ctx, tc.flag, tc.def.(bool), none)
				value, d = r.Value, r.EvaluationDetails
			case "string":
				r, _ := client.StringValueDetails(ctx, tc.flag, tc.def.(string), none)
				value, d = r.Value, r.EvaluationDetails
			case "int":
				r, _ := client.IntValueDetails(ctx, tc.flag, tc.def.(int64), none)
				value, d = r.Value, r.EvaluationDetails
			case "float":
				r, _ := client.FloatValueDetails(ctx, tc.flag, tc.def.(float64), none)
				value, d = r.Value, r.EvaluationDetails
			case "object":
				r, _ := client.ObjectValueDetails(ctx, tc.flag, tc.def, none)
				value, d = r.Value, r.EvaluationDetails
			}
			if !reflect.DeepEqual(value, tc.value) || d.Reason != tc.reason || d.Variant != tc.variant || d.ErrorCode != tc.errCode {
				t.Errorf("got %#v, reason %s, variant %q, error %q (%s)\nwant %#v, reason %s, variant %q, error %q",
					value, d.Reason, d.Variant, d.ErrorCode, d.ErrorMessage, tc.value, tc.reason, tc.variant, tc.errCode)
			}
			if tc.meta != nil && !reflect.DeepEqual(d.FlagMetadata, tc.meta) {
				t.Errorf("metadata %v, want %v", d.FlagMetadata, tc.meta)
			}
		})
	}

	t.Run("an object is a copy", func(t *testing.T) {
		v, _ := client.ObjectValue(ctx, "limits", nil, none)
		v.(map[string]any)["maxStudents"] = 99.0
		v.(map[string]any)["tags"].([]any)[0] = "changed"
		again, _ := client.ObjectValue(ctx, "limits", nil, none)
		if want := map[string]any{"maxStudents": 1.0, "tags": []any{"a"}}; !reflect.DeepEqual(again, want) {
			t.Errorf("after the caller changed its copy: %v, want %v", again, want)
		}
	})
	t.Run("another user's context", func(t *testing.T) {
		r, err := client.BooleanValueDetails(ctx, "banner", false, openfeature.NewEvaluationContext("carol", nil))
		if err == nil || r.ErrorCode != openfeature.InvalidContextCode || r.Value {
			t.Errorf("got %v, %s, %v; want the default with INVALID_CONTEXT", r.Value, r.ErrorCode, err)
		}
		r, err = client.BooleanValueDetails(ctx, "banner", false, openfeature.NewEvaluationContext("", map[string]any{"userId": "bob"}))
		if err != nil || !r.Value {
			t.Errorf("the provider's own user as userId: %v, %v", r.Value, err)
		}
	})
}

// TestOmitFlagMetadata: results without FlagMetadata, the same otherwise.
func TestOmitFlagMetadata(t *testing.T) {
	p, _, _ := ready(t, Options{OmitFlagMetadata: true})
	d := p.StringEvaluation(context.Background(), "theme", "none", openfeature.FlattenedContext{})
	if d.Value != "neon" || d.Variant != "override" || d.Reason != openfeature.TargetingMatchReason || d.FlagMetadata != nil {
		t.Errorf("got %v %s %s, metadata %v; want neon, override, TARGETING_MATCH and no metadata", d.Value, d.Variant, d.Reason, d.FlagMetadata)
	}
	if info, ok := p.OverrideInfo(context.Background(), "theme"); !ok || info.Name != "bob-theme" || info.Reason != "pilot" || info.ExpiresAt == nil {
		t.Errorf("OverrideInfo without metadata: %+v, %v", info, ok)
	}
}

// TestEvents follows a provider through changes, drops and resumes: the events, the
// keys they list, and the resume request.
func TestEvents(t *testing.T) {
	f := newFakeServer(t)
	p := newTestProvider(t, f, Options{GracePeriod: time.Hour})
	done := initAsync(p, openfeature.NewEvaluationContext("bob", map[string]any{"role": "admin", "age": 42}))
	c := f.next(t)
	if got, want := c.req.URL.Query().Get("context"), `{"age":42,"role":"admin","targetingKey":"bob"}`; got != want {
		t.Errorf("context parameter %s, want %s", got, want)
	}
	if c.req.URL.Path != "/v1/stream" || c.req.Header.Get("Last-Event-ID") != "" || c.req.Header.Get("Authorization") != "" {
		t.Errorf("first request %s, Last-Event-ID %q, Authorization %q", c.req.URL.Path,
			c.req.Header.Get("Last-Event-ID"), c.req.Header.Get("Authorization"))
	}
	c.send(snapshot("id1", flags))
	if err := initResult(t, done); err != nil {
		t.Fatalf("Init: %v", err)
	}
	noEvent(t, p) // the SDK emits READY when Init returns

	// A change: exactly the keys whose result differs. The evaluator sends only those;
	// a key repeated with the result held raises nothing.
	c.send(changedEvent("id2", `{"banner":{"value":false,"enabled":false,"variant":"off","reason":"STATIC","source":"kill-switch"},
		"layout":{"value":"stacked","enabled":true,"variant":"beta","reason":"TARGETING_MATCH","source":"rule:beta"},
		"fresh":{"value":"new","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}`, `["dark","gone"]`))
	expectEvent(t, p, openfeature.ProviderConfigChange, "banner", "dark", "fresh")
	if d := boolOf(p, "banner"); d.Value || d.Reason != openfeature.StaticReason {
		t.Errorf("banner after the change: %v %s", d.Value, d.Reason)
	}
	c.send(changedEvent("id3", `{"layout":{"value":"stacked","enabled":true,"variant":"beta","reason":"TARGETING_MATCH","source":"rule:beta"}}`, `[]`),
		changedEvent("id4", `{"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/other"}}`, `[]`))
	expectEvent(t, p, openfeature.ProviderConfigChange, "theme")

	// A drop: STALE, and the resume names the last event applied. Nothing changed
	// meanwhile: the evaluator answers with that ID alone, and the provider is READY
	// with no change.
	c.drop(t)
	expectEvent(t, p, openfeature.ProviderStale)
	if d := boolOf(p, "banner"); d.Value || d.ResolutionDetail().ErrorCode != "" {
		t.Errorf("banner while stale: %v %s; want the last value", d.Value, d.ResolutionDetail().ErrorCode)
	}
	c = f.next(t)
	if id := c.req.Header.Get("Last-Event-ID"); id != "id4" {
		t.Fatalf("resume with Last-Event-ID %q, want id4", id)
	}
	c.send(upToDate("id4"))
	expectEvent(t, p, openfeature.ProviderReady)

	// Another drop, and values changed meanwhile: a snapshot, READY, then the keys that
	// differ from what the provider held.
	c.drop(t)
	expectEvent(t, p, openfeature.ProviderStale)
	c = f.next(t)
	if id := c.req.Header.Get("Last-Event-ID"); id != "id4" {
		t.Fatalf("resume with Last-Event-ID %q, want id4", id)
	}
	c.send(snapshot("id5", flags))
	expectEvent(t, p, openfeature.ProviderReady)
	expectEvent(t, p, openfeature.ProviderConfigChange, "banner", "dark", "fresh", "theme")
	if d := boolOf(p, "banner"); !d.Value {
		t.Errorf("banner after the snapshot: %v, want true", d.Value)
	}

	// The next change event after the snapshot counts from it.
	c.send(changedEvent("id6", `{}`, `["promo"]`))
	expectEvent(t, p, openfeature.ProviderConfigChange, "promo")
}

// TestGracePeriod: a stream that stays down past the grace period turns STALE into
// ERROR; the provider keeps serving its last values and is READY again once the
// evaluator is back.
func TestGracePeriod(t *testing.T) {
	p, f, c := ready(t, Options{GracePeriod: 50 * time.Millisecond})
	f.setRefuse(func(*http.Request) (int, string) {
		return http.StatusServiceUnavailable, `{"errorCode":"TOO_MANY_SUBSCRIBERS","errorDetails":"too many"}`
	})
	c.drop(t)
	expectEvent(t, p, openfeature.ProviderStale)
	ev := expectEvent(t, p, openfeature.ProviderError)
	if ev.ErrorCode != openfeature.GeneralCode || !strings.Contains(ev.Message, "TOO_MANY_SUBSCRIBERS") {
		t.Errorf("error event %s: %s; want GENERAL naming the last failure", ev.ErrorCode, ev.Message)
	}
	if d := boolOf(p, "banner"); !d.Value || d.ResolutionDetail().ErrorCode != "" {
		t.Errorf("banner in ERROR: %v %s; want the last value", d.Value, d.ResolutionDetail().ErrorCode)
	}
	f.setRefuse(nil)
	c = f.next(t)
	c.send(upToDate(c.req.Header.Get("Last-Event-ID")))
	expectEvent(t, p, openfeature.ProviderReady)
}

// TestGap: an event the provider cannot apply makes it reconnect without
// Last-Event-ID, which refetches the whole snapshot.
func TestGap(t *testing.T) {
	tests := []struct {
		name  string
		frame string
	}{
		{"undecodable change", "id: id2\nevent: device.feature-flags.changed\ndata: {\"changed\":\n\n"},
		{"undecodable value", changedEvent("id2", `{"banner":{"value":tru,"enabled":true}}`, `[]`)},
		{"undecodable snapshot", "id: id2\nevent: snapshot\ndata: [\n\n"},
		{"undecodable override expiry", changedEvent("id2", `{"theme":{"value":"neon","enabled":true,"overrideExpiresAt":"tomorrow"}}`, `[]`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, f, c := ready(t, Options{GracePeriod: time.Hour})
			c.send(tc.frame)
			expectEvent(t, p, openfeature.ProviderStale)
			c = f.next(t)
			if id := c.req.Header.Get("Last-Event-ID"); id != "" {
				t.Fatalf("reconnected with Last-Event-ID %q, want none", id)
			}
			c.send(snapshot("id3", strings.Replace(flags, `"banner":{"value":true`, `"banner":{"value":false`, 1)))
			expectEvent(t, p, openfeature.ProviderReady)
			expectEvent(t, p, openfeature.ProviderConfigChange, "banner")
		})
	}
	t.Run("a change before the snapshot", func(t *testing.T) {
		p, f, c := ready(t, Options{GracePeriod: time.Hour})
		c.drop(t)
		expectEvent(t, p, openfeature.ProviderStale)
		c = f.next(t)
		c.send(changedEvent("id2", `{}`, `["banner"]`))
		c = f.next(t)
		if id := c.req.Header.Get("Last-Event-ID"); id != "" {
			t.Fatalf("reconnected with Last-Event-ID %q, want none", id)
		}
		c.send(snapshot("id3", flags))
		expectEvent(t, p, openfeature.ProviderReady)
		if d := boolOf(p, "banner"); !d.Value {
			t.Errorf("banner: %v; the change before the snapshot was applied", d.Value)
		}
	})
}

// TestIdleTimeout: a stream silent for IdleTimeout is dropped and resumed.
func TestIdleTimeout(t *testing.T) {
	p, f, _ := ready(t, Options{GracePeriod: time.Hour, IdleTimeout: 100 * time.Millisecond})
	ev := expectEvent(t, p, openfeature.ProviderStale)
	if !strings.Contains(ev.Message, "silent") {
		t.Errorf("stale event %q, want it to say the stream was silent", ev.Message)
	}
	c := f.next(t)
	if id := c.req.Header.Get("Last-Event-ID"); id != "id1" {
		t.Fatalf("resume with Last-Event-ID %q, want id1", id)
	}
	c.send(upToDate("id1"))
	expectEvent(t, p, openfeature.ProviderReady)
}

// TestContextTokens: the token goes in the Authorization header; after a 401 the
// provider asks for a new one and retries at once.
func TestContextTokens(t *testing.T) {
	f := newFakeServer(t)
	var mu sync.Mutex
	calls := 0
	p := newTestProvider(t, f, Options{Token: func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 2 {
			return "", errors.New("the identity provider is down")
		}
		return "t" + string(rune('0'+calls)), nil
	}})
	f.setRefuse(func(r *http.Request) (int, string) {
		if r.Header.Get("Authorization") != "Bearer t3" {
			return http.StatusUnauthorized, `{"errorCode":"UNAUTHORIZED","errorDetails":"invalid context token: token is expired"}`
		}
		return 0, ""
	})
	done := initAsync(p, openfeature.EvaluationContext{})
	// t1 is refused; the token source fails once, then gives t3, which is accepted.
	c := f.next(t)
	c.send(snapshot("id1", flags))
	if err := initResult(t, done); err != nil {
		t.Fatalf("Init: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("the token source was called %d times, want 3", calls)
	}
	if _, ok := c.req.URL.Query()["context"]; ok {
		t.Errorf("an empty context was sent: %s", c.req.URL.RawQuery)
	}
}

// TestInitFailures: Init fails at once on a malformed request (400), and after its
// timeout when no snapshot comes, in which case the provider keeps trying and emits
// READY later.
func TestInitFailures(t *testing.T) {
	t.Run("bad request is fatal", func(t *testing.T) {
		f := newFakeServer(t)
		f.setRefuse(func(*http.Request) (int, string) {
			return http.StatusBadRequest, `{"errorCode":"INVALID_QUERY","errorDetails":"query parameter \"deviceClass\" is required"}`
		})
		p := newTestProvider(t, f, Options{})
		err := p.Init(openfeature.NewEvaluationContext("", map[string]any{"deviceId": "d1"}))
		var ie *openfeature.ProviderInitError
		if !errors.As(err, &ie) || ie.ErrorCode != openfeature.ProviderFatalCode || !strings.Contains(ie.Message, "deviceClass") {
			t.Fatalf("Init: %v, want a fatal ProviderInitError naming the evaluator's complaint", err)
		}
	})
	t.Run("timeout, then READY", func(t *testing.T) {
		f := newFakeServer(t)
		p := newTestProvider(t, f, Options{InitTimeout: 50 * time.Millisecond})
		done := initAsync(p, openfeature.EvaluationContext{})
		c := f.next(t)
		if err := initResult(t, done); err == nil || !strings.Contains(err.Error(), "no snapshot") {
			t.Fatalf("Init: %v, want a timeout", err)
		}
		c.send(snapshot("id1", flags))
		expectEvent(t, p, openfeature.ProviderReady)
		if d := boolOf(p, "banner"); !d.Value {
			t.Errorf("banner after the late snapshot: %v", d.Value)
		}
	})
	t.Run("a snapshot longer than MaxEventBytes", func(t *testing.T) {
		f := newFakeServer(t)
		p := newTestProvider(t, f, Options{InitTimeout: 200 * time.Millisecond, MaxEventBytes: 100})
		done := initAsync(p, openfeature.EvaluationContext{})
		f.next(t).send(snapshot("id1", flags))
		if err := initResult(t, done); err == nil || !strings.Contains(err.Error(), "longer than Options.MaxEventBytes (100)") {
			t.Fatalf("Init: %v, want it to name MaxEventBytes", err)
		}
	})
	t.Run("evaluations before the first snapshot", func(t *testing.T) {
		f := newFakeServer(t)
		p := newTestProvider(t, f, Options{})
		if d := boolOf(p, "banner"); d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
			t.Errorf("before Init: %s, want PROVIDER_NOT_READY", d.ResolutionDetail().ErrorCode)
		}
		if _, err := p.UserFlags(context.Background()); !errors.Is(err, ErrNotReady) {
			t.Errorf("UserFlags before Init: %v, want ErrNotReady", err)
		}
	})
}

// TestShutdownAndInitAgain: Shutdown closes the stream and forgets the values; Init
// starts afresh.
func TestShutdownAndInitAgain(t *testing.T) {
	p, f, c := ready(t, Options{})
	if err := p.InitWithContext(context.Background(), openfeature.EvaluationContext{}); err == nil {
		t.Error("a second Init while running succeeded")
	}
	p.Shutdown()
	select {
	case <-c.ended:
	case <-time.After(wait):
		t.Fatal("Shutdown left the stream open")
	}
	if d := boolOf(p, "banner"); d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Errorf("after Shutdown: %s, want PROVIDER_NOT_READY", d.ResolutionDetail().ErrorCode)
	}
	done := initAsync(p, openfeature.NewEvaluationContext("bob", nil))
	c = f.next(t)
	if id := c.req.Header.Get("Last-Event-ID"); id != "" {
		t.Errorf("Init after Shutdown resumed from %q", id)
	}
	c.send(snapshot("id2", flags))
	if err := initResult(t, done); err != nil {
		t.Fatalf("Init after Shutdown: %v", err)
	}
	if d := boolOf(p, "banner"); !d.Value {
		t.Error("banner after Init again: false")
	}
}

// TestNamespace: a namespace selects the prefixed route.
func TestNamespace(t *testing.T) {
	f := newFakeServer(t)
	p := newTestProvider(t, f, Options{Namespace: "shop", Context: openfeature.NewEvaluationContext("bob", nil)})
	done := initAsync(p, openfeature.NewEvaluationContext("ignored", nil))
	c := f.next(t)
	if c.req.URL.Path != "/namespaces/shop/v1/stream" || c.req.URL.Query().Get("context") != `{"targetingKey":"bob"}` {
		t.Errorf("request %s, want /namespaces/shop/v1/stream with the options' context", c.req.URL)
	}
	c.send(snapshot("id1", flags))
	if err := initResult(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestHelpers: seed 001's getUserFlags, hasOverride and getOverrideInfo.
func TestHelpers(t *testing.T) {
	p, _, _ := ready(t, Options{})
	ctx := context.Background()
	all, err := p.UserFlags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 11 {
		t.Errorf("UserFlags has %d flags, want 11", len(all))
	}
	want := Flag{Value: "neon", Enabled: true, Variant: "override", Reason: openfeature.TargetingMatchReason, Source: "user-override:shop/bob-theme"}
	if !reflect.DeepEqual(all["theme"], want) {
		t.Errorf("theme = %+v, want %+v", all["theme"], want)
	}
	if b := all["broken"]; b.ErrorCode != openfeature.ParseErrorCode || b.Value != nil {
		t.Errorf("broken = %+v, want PARSE_ERROR without a value", b)
	}

	expires := time.Date(2030, 1, 1, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		key  string
		want OverrideInfo
		has  bool
	}{
		{"theme", OverrideInfo{Kind: OverrideUser, Namespace: "shop", Name: "bob-theme", Value: "neon", Variant: "override",
			ExpiresAt: &expires, Reason: "pilot"}, true},
		{"dark", OverrideInfo{Kind: OverrideDevice, Namespace: "shop", Name: "d1-dark", Value: false, Variant: "off", Reason: "kiosk"}, true},
		{"layout", OverrideInfo{}, false},
		{"nope", OverrideInfo{}, false},
	}
	for _, tc := range tests {
		info, ok := p.OverrideInfo(ctx, tc.key)
		if ok != tc.has || !reflect.DeepEqual(info, tc.want) || p.HasOverride(ctx, tc.key) != tc.has {
			t.Errorf("OverrideInfo(%s) = %+v, %v; want %+v, %v", tc.key, info, ok, tc.want, tc.has)
		}
	}

	other := openfeature.WithTransactionContext(ctx, openfeature.NewEvaluationContext("carol", nil))
	if _, err := p.UserFlags(other); err == nil || !strings.Contains(err.Error(), `"carol"`) {
		t.Errorf("UserFlags for carol: %v, want an error naming her", err)
	}
	if p.HasOverride(other, "theme") {
		t.Error("HasOverride for carol answered with bob's override")
	}
	same := openfeature.WithTransactionContext(ctx, openfeature.NewEvaluationContext("bob", nil))
	if !p.HasOverride(same, "theme") {
		t.Error("HasOverride in bob's transaction context is false")
	}

	info, _ := p.OverrideInfo(ctx, "theme")
	*info.ExpiresAt = time.Time{}
	if again, _ := p.OverrideInfo(ctx, "theme"); !again.ExpiresAt.Equal(expires) {
		t.Errorf("after the caller changed its ExpiresAt: %v, want %v", again.ExpiresAt, expires)
	}
}

// TestOverrideReasonAndExpiryChange: a change of only the reason or the expiry of
// the override that decides a flag raises PROVIDER_CONFIGURATION_CHANGED with its
// key, and the helpers and the metadata give the new ones.
func TestOverrideReasonAndExpiryChange(t *testing.T) {
	p, _, c := ready(t, Options{})
	ctx := context.Background()
	const theme = `"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"`
	c.send(changedEvent("id2", `{`+theme+`,"overrideReason":"ticket 2","overrideExpiresAt":"2030-01-01T13:00:00Z"}}`, `[]`))
	expectEvent(t, p, openfeature.ProviderConfigChange, "theme")
	if info, _ := p.OverrideInfo(ctx, "theme"); info.Reason != "ticket 2" {
		t.Errorf("reason %q, want ticket 2", info.Reason)
	}
	d := p.StringEvaluation(ctx, "theme", "none", openfeature.FlattenedContext{})
	if d.FlagMetadata["overrideReason"] != "ticket 2" {
		t.Errorf("metadata %v, want overrideReason ticket 2", d.FlagMetadata)
	}

	c.send(changedEvent("id3", `{`+theme+`,"overrideReason":"ticket 2"}}`, `[]`))
	expectEvent(t, p, openfeature.ProviderConfigChange, "theme")
	if info, _ := p.OverrideInfo(ctx, "theme"); info.ExpiresAt != nil || info.Reason != "ticket 2" {
		t.Errorf("after the expiry was removed: %+v", info)
	}
	d = p.StringEvaluation(ctx, "theme", "none", openfeature.FlattenedContext{})
	if _, ok := d.FlagMetadata["overrideExpiresAt"]; ok {
		t.Errorf("metadata %v still has overrideExpiresAt", d.FlagMetadata)
	}
}

func TestNewProviderChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no URL", Options{}, "Options.URL"},
		{"relative URL", Options{URL: "/flags"}, "Options.URL"},
		{"other scheme", Options{URL: "ftp://x"}, "Options.URL"},
		{"client timeout", Options{URL: "http://x", HTTPClient: &http.Client{Timeout: time.Second}}, "Timeout"},
		{"negative grace", Options{URL: "http://x", GracePeriod: -1}, "Options.GracePeriod"},
		{"negative event bytes", Options{URL: "http://x", MaxEventBytes: -1}, "Options.MaxEventBytes"},
		{"context attribute type", Options{URL: "http://x",
			Context: openfeature.NewEvaluationContext("bob", map[string]any{"since": time.Time{}})}, `attribute "since"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewProvider(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewProvider: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

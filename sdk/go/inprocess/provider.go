// Package inprocess is an OpenFeature provider for server-side Go applications that
// evaluate flags for many users: it holds a copy of a whole namespace (every flag and
// every override) and evaluates with the evaluator core itself, in the application's
// process. The copy comes from the evaluator's sync stream (GET /v1/sync), which
// needs a token with the scope flagops:sync.
//
// It is a Go module of its own because it depends on the evaluator core (package
// github.com/flagops/flagops/evaluator, which compiles no Kubernetes code); the
// device-stream provider, package github.com/flagops/flagops/sdk/go, depends on the
// OpenFeature SDK alone.
package inprocess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/evaluator"
	flagops "github.com/flagops/flagops/sdk/go"
	"github.com/flagops/flagops/sdk/go/internal/link"
	"github.com/flagops/flagops/sdk/go/internal/resolve"
)

// ProviderName is the provider's name in its metadata and events.
const ProviderName = "flagops-inprocess"

// DefaultMaxEventBytes bounds a line of the sync stream unless Options say
// otherwise: a snapshot of the whole namespace is one line.
const DefaultMaxEventBytes = 512 << 20

// Options configures a Provider. The durations have the defaults of the
// device-stream provider (flagops.DefaultGracePeriod, ...).
type Options struct {
	// URL is the evaluator's base URL, for example http://127.0.0.1:8080 (required).
	URL string
	// Namespace selects /namespaces/{Namespace}/v1/sync; empty uses the unprefixed
	// route, that of the evaluator's default namespace.
	Namespace string
	// Token returns a sync token (scope flagops:sync), sent as "Authorization:
	// Bearer". It is called before the first connection and again after a 401 or a
	// failure. Nil sends no token (an open evaluator).
	Token func(ctx context.Context) (string, error)
	// HTTPClient sends the requests; nil uses a client without timeouts. Its Timeout
	// must be zero.
	HTTPClient *http.Client
	// GracePeriod, MinBackoff, MaxBackoff, IdleTimeout and InitTimeout work as in
	// flagops.Options.
	GracePeriod, MinBackoff, MaxBackoff, IdleTimeout, InitTimeout time.Duration
	// MaxEventBytes bounds one line of the stream (a snapshot is one line). Zero
	// selects DefaultMaxEventBytes.
	MaxEventBytes int
	// OmitFlagMetadata leaves FlagMetadata ("source", "enabled") out of results.
	OmitFlagMetadata bool
	// Logger receives connection problems; nil uses slog.Default().
	Logger *slog.Logger
}

// Provider evaluates flags of one namespace in process. It implements
// openfeature.FeatureProvider, openfeature.ContextAwareStateHandler and
// openfeature.EventHandler. Create it with NewProvider; it is safe for concurrent use.
type Provider struct {
	// Typed has the typed evaluations (BooleanEvaluation, ...), in process.
	resolve.Typed

	opts  Options
	url   string
	link  *link.Link
	store *evaluator.Store

	// mu guards ns and synced, written by the stream's goroutine (the only writer of
	// the store) after the store has the snapshot.
	mu     sync.RWMutex
	ns     string // the namespace of the snapshot
	synced bool   // a snapshot is in the store

	// metas holds the metadata of results not decided by an override, shared: the
	// SDK hands out copies.
	metaMu sync.RWMutex
	metas  map[metaKey]openfeature.FlagMetadata
}

// metaKey identifies the metadata of a result not decided by an override.
type metaKey struct {
	enabled bool
	source  string
}

// maxMetas bounds the metadata cache; sources are a flag's steps (rule names,
// schedule instants), so it holds a namespace's many times over.
const maxMetas = 4096

// NewProvider checks o and returns a provider. It does not connect: Init does.
func NewProvider(o Options) (*Provider, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("flagops: Options.URL %q: want an absolute http or https URL", o.URL)
	}
	cfg, err := link.Checked(link.Config{Name: ProviderName, Token: o.Token, Client: o.HTTPClient, Log: o.Logger,
		GracePeriod: o.GracePeriod, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, IdleTimeout: o.IdleTimeout,
		InitTimeout: o.InitTimeout, MaxEventBytes: o.MaxEventBytes}, DefaultMaxEventBytes)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(u.String(), "/")
	if o.Namespace != "" {
		s += "/namespaces/" + url.PathEscape(o.Namespace)
	}
	p := &Provider{opts: o, url: s + "/v1/sync", store: evaluator.NewStore()}
	p.Typed = resolve.Typed{Lookup: p.resolveFlag}
	cfg.Log = cfg.Log.With("provider", ProviderName, "url", p.url)
	p.link = link.New(cfg, syncStream{p})
	return p, nil
}

// Metadata implements openfeature.FeatureProvider.
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: ProviderName} }

// Hooks implements openfeature.FeatureProvider: the provider has none.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel implements openfeature.EventHandler.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.link.Events() }

// Init implements openfeature.StateHandler.
func (p *Provider) Init(ec openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), ec)
}

// Shutdown implements openfeature.StateHandler.
func (p *Provider) Shutdown() {
	_ = p.ShutdownWithContext(context.Background()) // fails only when the context ends
}

// InitWithContext implements openfeature.ContextAwareStateHandler: it opens the sync
// stream and returns once the namespace's snapshot is in memory, or fails as
// flagops.Provider's does.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	return p.link.Start(ctx, p.url, func() {})
}

// ShutdownWithContext implements openfeature.ContextAwareStateHandler: it closes the
// stream and forgets the namespace. The provider can be initialised again afterwards.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	ended, err := p.link.Stop(ctx)
	if ended {
		p.mu.Lock()
		p.synced = false
		p.mu.Unlock()
	}
	return err
}

// Event names and data of the sync stream (the evaluator's server package
// documents them).
const (
	eventSnapshot = "sync.snapshot"
	eventChanged  = "sync.changed"
)

// syncStream applies the sync stream's events to the provider's store.
type syncStream struct{ p *Provider }

// Apply implements link.Handler.
func (s syncStream) Apply(ev *link.Event, synced bool) (link.Applied, []string, error) {
	p := s.p
	switch ev.Name {
	case eventSnapshot:
		var d evaluator.NamespaceData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return 0, nil, fmt.Errorf("%w: snapshot: %w", link.ErrGap, err)
		}
		if d.Namespace == "" {
			return 0, nil, fmt.Errorf("%w: snapshot without a namespace", link.ErrGap)
		}
		// The store takes writes while evaluations read it; only ns and synced need
		// the lock, so that a large snapshot never holds up an evaluation.
		keys, err := p.apply(d.Ops(p.store.Snapshot()))
		if err != nil {
			return 0, nil, err
		}
		p.mu.Lock()
		p.ns, p.synced = d.Namespace, true
		p.mu.Unlock()
		return link.Replaced, keys, nil
	case eventChanged:
		if !synced {
			return 0, nil, fmt.Errorf("%w: a change before the snapshot", link.ErrGap)
		}
		var d evaluator.NamespaceChanges
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return 0, nil, fmt.Errorf("%w: change: %w", link.ErrGap, err)
		}
		p.mu.RLock()
		ns := p.ns
		p.mu.RUnlock()
		keys, err := p.apply(d.Ops(ns))
		if err != nil {
			return 0, nil, err
		}
		return link.Changed, keys, nil
	}
	return link.Ignored, nil, nil // an event this provider does not know
}

// apply writes ops to the store and returns the keys whose result may have changed
// for some context, sorted. A malformed op is a gap (the snapshot is fetched again),
// since the store took none of them.
func (p *Provider) apply(ops []evaluator.Op) ([]string, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	old := p.store.Snapshot()
	snap, cs, err := p.store.Apply(ops...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", link.ErrGap, err)
	}
	var keys []string
	for _, f := range cs.Flags {
		keys = append(keys, f.Key)
	}
	for _, sc := range cs.Subjects {
		if !sameOverride(old.Namespace(sc.Namespace), snap.Namespace(sc.Namespace), sc) {
			keys = append(keys, sc.Key)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// sameOverride reports whether the override that applies to the pair of sc serves the
// same thing in a and b, from the same object, until the same time, for the same
// reason. The store reports a pair also when only the object's UID or creation time
// changed (its precedence among conflicting objects), which a new evaluator process
// serving files (flagops serve --dir) does for every object; no result changes then.
func sameOverride(a, b evaluator.Namespace, sc evaluator.SubjectChange) bool {
	get := func(n evaluator.Namespace) (evaluator.OverrideInfo, bool) {
		if sc.Kind == evaluator.SubjectDevice {
			return n.DeviceOverride(sc.SubjectID, sc.Key)
		}
		return n.UserOverride(sc.SubjectID, sc.Key)
	}
	ia, oka := get(a)
	ib, okb := get(b)
	if !oka || !okb {
		return oka == okb
	}
	ia.Object.UID = ib.Object.UID
	return ia.Mode == ib.Mode && bytes.Equal(ia.Value, ib.Value) && ia.Source == ib.Source &&
		ia.Object == ib.Object && ia.Reason == ib.Reason &&
		(ia.ExpiresAt == nil) == (ib.ExpiresAt == nil) && (ia.ExpiresAt == nil || ia.ExpiresAt.Equal(*ib.ExpiresAt))
}

// namespace returns the namespace to evaluate, or false before the first snapshot.
func (p *Provider) namespace() (evaluator.Namespace, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.synced {
		return evaluator.Namespace{}, false
	}
	return p.store.Namespace(p.ns), true
}

// evaluation is one flag's result and what it was evaluated in.
type evaluation struct {
	ns  evaluator.Namespace
	ctx evaluator.Context
	res evaluator.Result
}

// result evaluates key for flatCtx.
func (p *Provider) result(key string, flatCtx map[string]any) (evaluation, openfeature.ResolutionError, bool) {
	ns, ok := p.namespace()
	if !ok {
		return evaluation{}, openfeature.NewProviderNotReadyResolutionError("the flagops provider has no values yet"), false
	}
	ctx, err := evaluator.ContextFromMap(flatCtx)
	if err != nil {
		return evaluation{}, openfeature.NewInvalidContextResolutionError(err.Error()), false
	}
	return evaluation{ns: ns, ctx: ctx, res: ns.Evaluate(ctx, key)}, openfeature.ResolutionError{}, true
}

// override returns the override that decided the result, if one did.
func (e *evaluation) override() (evaluator.OverrideInfo, bool) {
	var info evaluator.OverrideInfo
	var ok bool
	switch {
	case strings.HasPrefix(e.res.Source, evaluator.SourceUserOverride):
		info, ok = e.ns.UserOverride(e.ctx.EffectiveUserID(), e.res.Key)
	case strings.HasPrefix(e.res.Source, evaluator.SourceDeviceOverride):
		info, ok = e.ns.DeviceOverride(e.ctx.DeviceID, e.res.Key)
	}
	// Another source: the override expired between the evaluation and now.
	return info, ok && info.Source == e.res.Source
}

// expiryFormat is how the evaluator writes an override's expiry in metadata.
const expiryFormat = "2006-01-02T15:04:05.999999999Z07:00"

// detail is the resolution detail of a result, and its value (nil: none). Its
// metadata is the evaluator's OFREP metadata: source, enabled, and the deciding
// override's overrideReason and overrideExpiresAt.
func (p *Provider) detail(e *evaluation) (any, openfeature.ProviderResolutionDetail) {
	res := &e.res
	if res.ErrorCode != evaluator.ErrorNone {
		return nil, resolve.ErrorDetail(resolve.Error(openfeature.ErrorCode(res.ErrorCode.String()), res.ErrorMessage))
	}
	d := openfeature.ProviderResolutionDetail{
		Reason:  resolve.Reason("", res.Raw != nil, res.Reason.String(), res.Source),
		Variant: res.Variant,
	}
	if p.opts.OmitFlagMetadata {
		return res.Value, d
	}
	info, decided := e.override()
	if !decided {
		d.FlagMetadata = p.meta(res.Enabled, res.Source)
		return res.Value, d
	}
	d.FlagMetadata = openfeature.FlagMetadata{"enabled": res.Enabled, "source": res.Source}
	if info.Reason != "" {
		d.FlagMetadata["overrideReason"] = info.Reason
	}
	if info.ExpiresAt != nil {
		d.FlagMetadata["overrideExpiresAt"] = info.ExpiresAt.UTC().Format(expiryFormat)
	}
	return res.Value, d
}

// meta returns the shared metadata of a result not decided by an override.
func (p *Provider) meta(enabled bool, source string) openfeature.FlagMetadata {
	k := metaKey{enabled, source}
	p.metaMu.RLock()
	m, ok := p.metas[k]
	p.metaMu.RUnlock()
	if ok {
		return m
	}
	m = openfeature.FlagMetadata{"enabled": enabled}
	if source != "" {
		m["source"] = source
	}
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.metas == nil || len(p.metas) >= maxMetas {
		p.metas = make(map[metaKey]openfeature.FlagMetadata)
	}
	p.metas[k] = m
	return m
}

// resolveFlag is the provider's resolve.Lookup: an evaluation in process.
func (p *Provider) resolveFlag(key string, flatCtx openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
	e, rerr, ok := p.result(key, flatCtx)
	if !ok {
		return nil, resolve.ErrorDetail(rerr)
	}
	return p.detail(&e)
}

// contextOf is the evaluation context of a helper call: the OpenFeature transaction
// context of ctx, flattened.
func contextOf(ctx context.Context) map[string]any {
	tc := openfeature.TransactionContext(ctx)
	m := make(map[string]any, len(tc.Attributes())+1)
	for k, v := range tc.Attributes() {
		m[k] = v
	}
	if tk := tc.TargetingKey(); tk != "" {
		m[openfeature.TargetingKey] = tk
	}
	return m
}

// UserFlags returns every flag's result for the evaluation context of ctx (its
// OpenFeature transaction context, openfeature.WithTransactionContext), by key (seed
// 001's getUserFlags). Flags the role gate keeps from the context are left out, as
// the evaluator's bulk evaluation leaves them out. It fails before the first
// snapshot and for a context the evaluator cannot use.
func (p *Provider) UserFlags(ctx context.Context) (map[string]flagops.Flag, error) {
	ns, ok := p.namespace()
	if !ok {
		return nil, flagops.ErrNotReady
	}
	ectx, err := evaluator.ContextFromMap(contextOf(ctx))
	if err != nil {
		return nil, fmt.Errorf("flagops: the transaction context: %w", err)
	}
	results := ns.EvaluateAll(ectx)
	out := make(map[string]flagops.Flag, len(results))
	for i := range results {
		res := &results[i]
		v, d := p.detail(&evaluation{ns: ns, ctx: ectx, res: *res})
		out[res.Key] = flagops.Flag{Value: resolve.CopyJSON(v), Enabled: res.Enabled, Variant: res.Variant,
			Reason: d.Reason, Source: res.Source, ErrorCode: openfeature.ErrorCode(res.ErrorCode.String()), ErrorMessage: res.ErrorMessage}
	}
	return out, nil
}

// HasOverride reports whether a user or device override decides flag key for the
// evaluation context of ctx (seed 001's hasOverride).
func (p *Provider) HasOverride(ctx context.Context, key string) bool {
	_, ok := p.OverrideInfo(ctx, key)
	return ok
}

// OverrideInfo returns the override that decides flag key for the evaluation
// context of ctx (seed 001's getOverrideInfo), with its expiry and reason, and false
// when none does.
func (p *Provider) OverrideInfo(ctx context.Context, key string) (flagops.OverrideInfo, bool) {
	e, _, ok := p.result(key, contextOf(ctx))
	if !ok || e.res.ErrorCode != evaluator.ErrorNone {
		return flagops.OverrideInfo{}, false
	}
	info, ok := e.override()
	if !ok {
		return flagops.OverrideInfo{}, false
	}
	return flagops.OverrideInfo{Kind: string(info.Kind), Namespace: info.Object.Namespace, Name: info.Object.Name,
		Value: resolve.CopyJSON(e.res.Value), Variant: e.res.Variant, ExpiresAt: info.ExpiresAt, Reason: info.Reason}, true
}

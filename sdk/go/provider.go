package flagops

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagops/flagops/sdk/go/internal/link"
	"github.com/flagops/flagops/sdk/go/internal/resolve"
)

// Defaults for Options.
const (
	DefaultGracePeriod   = link.DefaultGracePeriod
	DefaultMinBackoff    = link.DefaultMinBackoff
	DefaultMaxBackoff    = link.DefaultMaxBackoff
	DefaultIdleTimeout   = link.DefaultIdleTimeout
	DefaultInitTimeout   = link.DefaultInitTimeout
	DefaultMaxEventBytes = link.DefaultMaxEventBytes
)

// ProviderName is the provider's name in its metadata and events.
const ProviderName = "flagops"

// Options configures a Provider.
type Options struct {
	// URL is the evaluator's base URL, for example http://127.0.0.1:8080 (required).
	URL string
	// Namespace selects the routes under /namespaces/{Namespace}; empty uses the
	// unprefixed routes, those of the evaluator's default namespace.
	Namespace string
	// Context is the evaluation context whose values the provider holds. When it is
	// empty (no targeting key, no attribute), the context Init receives is used: the
	// OpenFeature API's global evaluation context. Attributes must be strings, numbers
	// or booleans. With context tokens the evaluator takes the context from the token
	// and ignores this one, except the attributes it lets clients set.
	Context openfeature.EvaluationContext
	// Token returns the context token sent as "Authorization: Bearer". It is called
	// before the first connection and again after a 401 (then the request is retried
	// once at once) or after it failed. Nil sends no token (an open evaluator).
	Token func(ctx context.Context) (string, error)
	// HTTPClient sends the requests; nil uses a client without timeouts (the stream is
	// long-lived; Options.IdleTimeout bounds its silences). Its Timeout must be zero.
	HTTPClient *http.Client
	// GracePeriod is how long the stream may stay down, after PROVIDER_STALE, before
	// the provider emits PROVIDER_ERROR. Zero selects DefaultGracePeriod.
	GracePeriod time.Duration
	// MinBackoff and MaxBackoff bound the delay between reconnection attempts after
	// the first, which is immediate: MinBackoff, doubling up to MaxBackoff, each
	// drawn at random between half and all of it. Zero selects the defaults.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout drops a stream (and a request waiting for its response) that
	// receives nothing for that long; the evaluator sends a heartbeat every 15 s by
	// default. Zero selects DefaultIdleTimeout.
	IdleTimeout time.Duration
	// InitTimeout bounds Init when its context has no earlier deadline. Zero selects
	// DefaultInitTimeout. After a timeout the provider keeps trying and emits
	// PROVIDER_READY once it has the values.
	InitTimeout time.Duration
	// MaxEventBytes bounds one line of the stream (a snapshot is one line). Zero
	// selects DefaultMaxEventBytes.
	MaxEventBytes int
	// OmitFlagMetadata leaves FlagMetadata ("source", "enabled") out of evaluation
	// results. The SDK copies a provider's metadata map on every evaluation (2
	// allocations); without metadata, an evaluation allocates only what the SDK
	// allocates around any provider. UserFlags still has the source.
	OmitFlagMetadata bool
	// Logger receives connection problems; nil uses slog.Default().
	Logger *slog.Logger
}

// Provider is an OpenFeature provider that serves the effective values of one
// evaluation context from memory, kept current by the evaluator's device stream. It
// implements openfeature.FeatureProvider, openfeature.ContextAwareStateHandler and
// openfeature.EventHandler. Create it with NewProvider; it is safe for concurrent use.
type Provider struct {
	// Typed has the typed evaluations (BooleanEvaluation, ...), from memory.
	resolve.Typed

	opts   Options
	stream string // the stream URL without query
	link   *link.Link

	// vals is what evaluations read: nil before the first snapshot.
	vals atomic.Pointer[values]
	// user is the provider's user (userId, else targetingKey), "" when unknown.
	user atomic.Pointer[string]

	mu      sync.Mutex
	ctxJSON string // the stream's context parameter
}

// NewProvider checks o and returns a provider. It does not connect: Init (called by
// openfeature.SetProviderAndWait and friends) does.
func NewProvider(o Options) (*Provider, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("flagops: Options.URL %q: want an absolute http or https URL", o.URL)
	}
	ctxJSON, err := contextParam(o.Context)
	if err != nil {
		return nil, fmt.Errorf("flagops: Options.Context: %w", err)
	}
	cfg, err := link.Checked(link.Config{Name: ProviderName, Token: o.Token, Client: o.HTTPClient, Log: o.Logger,
		GracePeriod: o.GracePeriod, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, IdleTimeout: o.IdleTimeout,
		InitTimeout: o.InitTimeout, MaxEventBytes: o.MaxEventBytes}, DefaultMaxEventBytes)
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: o, stream: streamURL(u, o.Namespace), ctxJSON: ctxJSON}
	p.Typed = resolve.Typed{Lookup: p.resolveFlag}
	cfg.Log = cfg.Log.With("provider", ProviderName, "url", p.stream)
	p.link = link.New(cfg, deviceStream{p})
	return p, nil
}

// streamURL is the device stream's URL of namespace ns ("" for the unprefixed route).
func streamURL(base *url.URL, ns string) string {
	s := strings.TrimSuffix(base.String(), "/")
	if ns != "" {
		s += "/namespaces/" + url.PathEscape(ns)
	}
	return s + "/v1/stream"
}

// Metadata implements openfeature.FeatureProvider.
func (p *Provider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: ProviderName}
}

// Hooks implements openfeature.FeatureProvider: the provider has none.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel implements openfeature.EventHandler.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.link.Events() }

// Init implements openfeature.StateHandler: InitWithContext without a deadline of
// its own (Options.InitTimeout still applies).
func (p *Provider) Init(ec openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), ec)
}

// Shutdown implements openfeature.StateHandler.
func (p *Provider) Shutdown() {
	_ = p.ShutdownWithContext(context.Background()) // fails only when the context ends
}

// InitWithContext implements openfeature.ContextAwareStateHandler: it starts the
// stream and returns once the first snapshot is in memory. It fails when ctx ends or
// Options.InitTimeout passes first (the provider keeps trying and emits
// PROVIDER_READY when it succeeds), or at once when the evaluator refuses the request
// as malformed (an openfeature.ProviderInitError with PROVIDER_FATAL).
func (p *Provider) InitWithContext(ctx context.Context, ec openfeature.EvaluationContext) error {
	p.mu.Lock()
	ctxJSON := p.ctxJSON
	if isEmpty(p.opts.Context) {
		var err error
		ctxJSON, err = contextParam(ec)
		if err != nil {
			p.mu.Unlock()
			return &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode,
				Message: "flagops: the evaluation context given to Init: " + err.Error()}
		}
	}
	p.mu.Unlock()
	u := p.stream
	if ctxJSON != "" {
		u += "?" + url.Values{"context": {ctxJSON}}.Encode()
	}
	return p.link.Start(ctx, u, func() {
		// Only once the link is known to start: a provider already running keeps
		// its context.
		p.mu.Lock()
		defer p.mu.Unlock()
		p.ctxJSON = ctxJSON
		if isEmpty(p.opts.Context) {
			p.setUser(ec)
		} else {
			p.setUser(p.opts.Context)
		}
	})
}

// ShutdownWithContext implements openfeature.ContextAwareStateHandler: it closes the
// stream and waits for the provider's goroutine to end, or for ctx. The provider can
// be initialised again afterwards.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	ended, err := p.link.Stop(ctx)
	if ended {
		p.vals.Store(nil)
	}
	return err
}

// setUser records the user of ec for the evaluation context check.
func (p *Provider) setUser(ec openfeature.EvaluationContext) {
	u := userOf(ec.Attribute("userId"), ec.TargetingKey())
	p.user.Store(&u)
}

// userOf is the user of a context: its userId, else its targeting key.
func userOf(userID any, targetingKey string) string {
	if s, ok := userID.(string); ok && s != "" {
		return s
	}
	return targetingKey
}

func isEmpty(ec openfeature.EvaluationContext) bool {
	return ec.TargetingKey() == "" && len(ec.Attributes()) == 0
}

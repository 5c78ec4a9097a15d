// Package server serves a flag store over HTTP: the OpenFeature Remote
// Evaluation Protocol (OFREP), a native JSON API, a per-user view and a
// decision-trace endpoint. It depends only on the standard library and the
// evaluator package, so the controller, the sidecar and local mode can all
// mount it.
//
// # Routes
//
// Every route is served both unprefixed (against Options.DefaultNamespace)
// and under /namespaces/{namespace}:
//
//	POST /ofrep/v1/evaluate/flags/{key}   OFREP single evaluation
//	POST /ofrep/v1/evaluate/flags         OFREP bulk evaluation (ETag, 304)
//	POST /v1/evaluate                     native evaluation
//	GET  /v1/users/{userId}/flags         admin: effective flags and overrides of a user
//	GET  /v1/devices/{deviceId}/flags     admin: effective flags and overrides of a device
//	GET  /v1/flags/{key}/explain          admin: decision trace
//	GET  /v1/flags/{key}/overrides        admin: every override naming a flag (see below)
//	GET  /v1/stream                       server-sent events for devices
//	GET  /ofrep/v1/sse                    OFREP event stream
//	GET  /v1/sync                         sync: every flag and override, for in-process providers
//	GET  /healthz                         liveness (unprefixed only, never authenticated)
//
// A namespace without flags in the current snapshot is unknown: 404.
//
// # Override expiry and reason
//
// A result decided by a user or device override (source
// "user-override:<ns>/<name>" or "device-override:<ns>/<name>") also
// carries overrideExpiresAt (RFC 3339, UTC; only when the override
// expires) and overrideReason (only when not empty): in the OFREP result's
// metadata, and beside source in the native API and stream. Only the
// client whose context the override decided gets them (seed 001's
// getOverrideInfo); no other subject's override reaches a client.
//
// # Context tokens
//
// Without Options.Auth serving is open: there is no authentication,
// anyone who reaches the handler can evaluate any context, read any
// user's overrides and explain any flag. Bind it to localhost.
//
// With Options.Auth (an Authenticator) every route above but /healthz
// requires a context token, a JWT, in "Authorization: Bearer <token>"; the
// stream routes also accept it as the access_token query parameter, which
// is removed from the query before the route reads it and makes the
// response Cache-Control: no-store; when both are sent, the header is
// used. Elsewhere access_token gets 400 INVALID_QUERY, with or without
// Options.Auth. A token is accepted when:
//
//   - it is signed with EdDSA, RS256 or ES256 by the key its kid names (a
//     key set of one key also accepts a token without kid), or with HS256
//     by the opt-in secret; alg none and any other algorithm are refused;
//   - exp is present and in the future, exp - iat (exp - now without iat)
//     is at most the maximum lifetime, and nbf and iat are not in the
//     future;
//   - aud contains "flagops:<namespace>" for the namespace of the route
//     (Options.DefaultNamespace for unprefixed routes);
//   - its ctx claim is a valid context object (as an OFREP context), with
//     a deviceClass whenever it has a deviceId, and no context attribute
//     is a top-level claim.
//
// Otherwise the answer is 401 UNAUTHORIZED with WWW-Authenticate: Bearer.
//
// The token's ctx is the whole evaluation context of device routes: the
// request's context (body or query) is ignored, except the free
// attributes listed as client-settable that the token does not set.
// targetingKey defaults to the token's userId. A token whose deviceClass
// is eligible for no flag of the namespace gets 403
// DEVICE_CLASS_NOT_ELIGIBLE.
//
// Explain, the user and device views and the overrides of a flag are
// admin routes: they need "flagops:admin" in the token's scope claim (a
// space-separated string or an array), else 403 FORBIDDEN; their context
// comes from the query.
//
// The sync stream needs "flagops:sync" in the scope (an admin token is
// not enough), else 403 FORBIDDEN: it sends every override of the
// namespace, so only server-side services may hold such a token.
//
// Verified tokens are cached by their raw text until exp; new keys drop
// the cache. The token of a request is available to handlers through
// requestToken.
//
// Without Options.Auth, a stream whose context (its parameters or its
// context JSON) has a deviceId without a deviceClass gets 400
// INVALID_QUERY: a device context without its class gets no override of
// either tier.
//
// # CORS
//
// With Options.CORSAllowedOrigins ("*" for any), a preflight OPTIONS
// request is answered with 204 (allowed methods GET, POST, OPTIONS;
// headers Content-Type, Authorization, If-None-Match, Last-Event-ID;
// Max-Age DefaultCORSMaxAge) and responses to an allowed Origin carry
// Access-Control-Allow-Origin and Access-Control-Expose-Headers: ETag.
// Requests with an Origin get Vary: Origin; other origins get no grant.
//
// # Metrics
//
// Options.Metrics receives the stream instrumentation below and, through
// Evaluated, one call per flag result served by OFREP single and bulk
// evaluation and by POST /v1/evaluate.
//
// # Event streams
//
// GET /v1/stream (native) and GET /ofrep/v1/sse (OFREP) push changes of
// one context's effective values. The context is either the query
// parameter context, a JSON object like the context of an evaluation
// request (well-known and free attributes), or the query parameters
// userId, orgId, role, deviceId, deviceClass and targetingKey; not both
// (400 INVALID_QUERY), and no other parameters but lastEventId and
// access_token (which the token check reads). A deviceClass eligible for
// device overrides of no flag of the namespace (for example charger with
// the default classes) gets 403 DEVICE_CLASS_NOT_ELIGIBLE.
//
// The response (text/event-stream, Cache-Control: no-cache) starts with
// "retry: <ms>" (Options.Retry). Every event is flushed when written; a
// comment ": heartbeat" is written every Options.Heartbeat.
//
//   - Native: an event "snapshot" with data {"namespace","revision",
//     "flags"}, flags being the map of POST /v1/evaluate (role-gated flags
//     left out); afterwards an event "device.feature-flags.changed" with
//     data {"revision","changed":{key: flag},"removed":[key]} whenever the
//     context's effective values differ from what the client was last
//     sent. revision is this server's store revision, for diagnostics
//     only: it differs between replicas.
//   - OFREP: no snapshot; whenever the context's values change, a
//     data-only event {"type":"refetchEvaluation","etag","lastModified"}:
//     etag is the ETag bulk evaluation returns for the context at that
//     moment and lastModified the time of the latest store write in Unix
//     seconds.
//
// # Event IDs and resume
//
// An event's ID is a digest of the values the client holds once it has
// the event: the result (value, enabled, variant, reason, source, error,
// and the deciding override's expiry and reason) of every flag of its
// effective map, so that a change of only an override's reason or expiry
// is an event with a new ID. It does not depend on the store's
// history, so it means the same on every replica and after a restart.
// A reconnecting client sends its last ID as Last-Event-ID (or, failing
// that, the lastEventId query parameter). If it equals the digest of the
// context's current values the stream starts with nothing new: on the
// native stream, a block "id: <that ID>" without data (which EventSource
// does not dispatch), so that the client knows at once that it is up to
// date; on the OFREP stream, nothing. Any other ID gets a fresh snapshot
// (native) or a refetch event (OFREP). A client that resumes anywhere
// therefore gets either nothing new, because it is up to date, or the
// current values: never silence over a change. A native stream without an
// ID starts with a snapshot, an OFREP stream without one with nothing.
//
// The bulk response's eventStreams[0].endpoint.requestUri is the OFREP
// stream of the caller's context: /ofrep/v1/sse (under the request's
// namespace prefix) with the effective context as the context parameter,
// the ID of the response's values as lastEventId, and the request's
// context token, if any, as access_token (RFC 6750, section 2.3; the bulk
// response then has Cache-Control: no-store). A client that opens it
// verbatim, as the OFREP web provider does with EventSource, hears about
// its own user's and device's override changes and about every change
// after the response it got. The URI grows with the context (up to
// Options.MaxAttributes attributes of Options.MaxAttributeBytes), and a
// token in it can reach proxy logs. The URI changes whenever the values
// do (its lastEventId); a client that reconnects to the new URI resumes
// from the values it just fetched. The bulk ETag is a digest of that URI and
// the namespace, so it changes exactly when the context's values (or the
// context, or the token) change, not on unrelated writes.
//
// # How streams follow the store
//
// There is no dispatcher: each stream runs in its own handler goroutine
// and follows the store's change feed itself through an
// evaluator.Follower on its topics: the flags of its namespace, and the
// overrides of its user (userId, else targetingKey) and of its device. The
// invariants:
//
//  1. The client holds the digest of one result per key (sorted by key);
//     its ID is the digest of those. It starts as the effective map of a
//     snapshot at revision pos.
//  2. Each read of the feed (Follower.ChangesFor(pos)) returns the current
//     snapshot, the keys touched for the stream's topics in (pos, that
//     snapshot], and the channel to wait on, all from one critical
//     section. The stream re-evaluates those keys (every key, when the
//     history since pos is gone) against that snapshot, sends the keys
//     whose result differs from what the client holds, and sets pos to
//     the snapshot's revision.
//  3. The stream waits only on the channel of the read that left it up to
//     date; a write touching its topics after that read closes it. So no
//     write is ever missed, and a write wakes only the streams whose
//     topics it touches.
//  4. A slow client delays nobody else: its stream reads the feed when it
//     is done writing and sends one event for everything since.
//
// Override expiries and schedule steps reach streams when the store's
// owner calls Store.Tick (see Store.RunClock).
//
// # Sync stream
//
// GET /v1/sync sends everything a namespace holds, as given to the store,
// for in-process providers that evaluate with their own evaluator.Store:
// an event "sync.snapshot" with data {"namespace","flags":{key: spec},
// "overrides":[override]} (evaluator.FlagSpec and evaluator.Override in
// their JSON form), then, after each write to the namespace, an event
// "sync.changed" with data {"flags":{key: spec},"deletedFlags":[key],
// "overrides":[override],"deletedOverrides":[{"kind","name"}]}: every
// flag and override object the write touched, as it is now (a client
// upserts them and deletes the others). Expiries and schedule steps send
// nothing: the client's store applies them at their instant by its own
// clock. A value the store keeps but that is not JSON (never served) is
// left out or, in a flag spec, replaced by an invalid type, so that the
// copy evaluates alike (with another error message). It takes no query
// parameters but lastEventId, and a stream slot like the other streams.
//
// Its event IDs are "<epoch>-<store revision>", the epoch drawn at random
// by New: they hold only in the handler that sent them. A client that
// resumes with an ID of this handler whose revision the change history still holds gets the ID alone
// (as on the native stream) and then what changed since; any other ID,
// or none, gets a snapshot. A client that moves to another replica
// therefore fetches the whole namespace again; so does one that fell
// behind the history while connected.
//
// # Limits
//
// The subscriber cap (Options.MaxSubscribers, by default
// MaxSubscribersFor(StreamMemoryBudget()): half of GOMEMLIMIT, else 128
// MiB, at MemoryPerStream each) is checked before anything else is done
// with a stream request: beyond it the answer is 503 TOO_MANY_SUBSCRIBERS
// with Retry-After. So is the accept rate (Options.AcceptRate, none by
// default): beyond it, 503 TOO_MANY_NEW_STREAMS. A request refused at the
// cap spends none of the rate. Each stream's retry field and each 503's
// Retry-After are jittered (Options.Retry), so that clients dropped at
// once, by a rolling update or a full replica, spread their returns. Every stream write (events and heartbeats) has a
// deadline of Options.StreamWriteTimeout: a client that does not take it
// in time is dropped, which frees its slot. The http.Server's own write
// timeout does not end streams, since each write sets its own deadline.
//
// # Overrides of a flag
//
// GET /v1/flags/{key}/overrides lists every user and device override
// entry of the namespace that names the key (evaluator.Namespace.FlagOverrides,
// which scans the namespace's overrides), sorted by kind (device
// first), subject id and object name. Each item has its object, what the
// entry serves (mode, value), the object's enabled, createdAt, expiresAt
// and reason, and its state now: invalid (with error), disabled, expired,
// lost (with the winner) or applies. Pages hold limit items (default
// DefaultOverridesLimit, at most MaxOverridesLimit); a response with more
// after it has continue, an opaque token to pass as the continue parameter
// of the next request. Each page is read from the current snapshot: an
// entry that exists from the first page to the last is listed exactly
// once, entries written in between may or may not be. A key that no flag
// has but overrides name is listed (flagExists false, every entry invalid:
// unknown flag); a key that neither a flag nor an override names gets 404
// FLAG_NOT_FOUND, as explain does. Other query parameters, repeated ones,
// a limit out of range and a token of another flag or namespace get 400
// INVALID_QUERY naming the parameter.
//
// # Errors
//
// Every error body is JSON: {"key" (when a flag key is involved),
// "errorCode", "errorDetails"}. OFREP codes are used where they exist
// (PARSE_ERROR, INVALID_CONTEXT, FLAG_NOT_FOUND, GENERAL); other conditions
// use NAMESPACE_NOT_FOUND, PAYLOAD_TOO_LARGE, INVALID_QUERY, NOT_FOUND,
// METHOD_NOT_ALLOWED, DEVICE_CLASS_NOT_ELIGIBLE, TOO_MANY_SUBSCRIBERS,
// TOO_MANY_NEW_STREAMS,
// UNAUTHORIZED and FORBIDDEN.
//
// TARGETING_KEY_MISSING is never returned: the evaluator treats a context
// without a principal as valid (a rollout serves the off value, rules on a
// missing attribute do not match), so a missing targeting key is not an
// error for any flag (docs/requests.md).
//
// # Request bodies
//
// OFREP bodies have the one member "context", native bodies "context" and
// "flags". Names match exactly (case-sensitive); an unknown or repeated
// member gets 400 PARSE_ERROR and a context naming an attribute twice 400
// INVALID_CONTEXT, each naming the member or attribute. An empty (or
// whitespace-only) body and null are an empty request; the Content-Type
// header is not checked.
//
// # OFREP reasons
//
// OFREP answers say DISABLED exactly when the result has no value (and then
// leave the value out), so that every OpenFeature client returns the
// caller's default then and flagops' value otherwise: the kill switch with
// a value is STATIC, the role gate with a value TARGETING_MATCH
// (ofrepReason, docs/ofrep.md). The native API keeps the evaluator's
// reasons.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/flagops/flagops/evaluator"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes      = 64 << 10
	DefaultMaxAttributes     = 64
	DefaultMaxAttributeBytes = 1 << 10
)

// Options configures the handler. Zero values select the defaults.
type Options struct {
	// DefaultNamespace is the namespace served by the unprefixed routes.
	DefaultNamespace string
	// MaxBodyBytes limits request bodies; larger bodies get 413.
	MaxBodyBytes int64
	// MaxAttributes limits the number of context attributes (well-known
	// and free).
	MaxAttributes int
	// MaxAttributeBytes limits the length of an attribute name and of a
	// string attribute value.
	MaxAttributeBytes int
	// Logger receives internal errors (failed writes, encoding failures).
	// Nil discards them.
	Logger *slog.Logger

	// Heartbeat is the interval of the comment lines keeping event
	// streams alive. Zero selects DefaultHeartbeat.
	Heartbeat time.Duration
	// NewTicker, when set, replaces time.NewTicker for heartbeats; it
	// returns the tick channel and a stop function (tests inject ticks).
	NewTicker func(d time.Duration) (<-chan time.Time, func())
	// MaxSubscribers caps the number of open streams; more get 503 with
	// Retry-After. Zero selects MaxSubscribersFor(StreamMemoryBudget());
	// a negative value means no cap.
	MaxSubscribers int
	// StreamWriteTimeout bounds every write to an event stream: a client
	// that does not take an event (or a heartbeat) within it is dropped
	// and its slot freed. Zero selects DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// Retry is the reconnection delay advertised to stream clients. Each
	// stream's SSE retry field is drawn between half and one and a half of
	// it, and each 503's Retry-After between it (rounded up to seconds)
	// and twice that, so that clients dropped together do not come back
	// together. Zero selects DefaultRetry.
	Retry time.Duration
	// AcceptRate caps the new streams this handler accepts per second
	// (token bucket, AcceptBurst deep): beyond it a stream request gets 503
	// TOO_MANY_NEW_STREAMS with Retry-After, which bounds the work of a
	// reconnect storm on one replica. Zero or less means no limit (the
	// default: docs/capacity.md measures what a limit costs).
	AcceptRate float64
	// AcceptBurst is how many streams may be accepted at once above
	// AcceptRate. Zero selects one second's worth of AcceptRate, at least 1.
	AcceptBurst int
	// Metrics, when set, receives stream and evaluation instrumentation.
	Metrics Metrics

	// Auth, when set, authenticates every route but /healthz with context
	// tokens (see Context tokens in the package documentation and
	// docs/security.md). Nil leaves every route open to anyone who can
	// reach the handler.
	Auth *Authenticator
	// CORSAllowedOrigins are the origins browsers may call from ("*" for
	// any). Empty disables CORS handling.
	CORSAllowedOrigins []string
}

// Error codes used besides the OpenFeature ones.
const (
	codeParse             = "PARSE_ERROR"
	codeInvalidContext    = "INVALID_CONTEXT"
	codeFlagNotFound      = "FLAG_NOT_FOUND"
	codeGeneral           = "GENERAL"
	codeNamespaceNotFound = "NAMESPACE_NOT_FOUND"
	codeTooLarge          = "PAYLOAD_TOO_LARGE"
	codeInvalidQuery      = "INVALID_QUERY"
	codeNotFound          = "NOT_FOUND"
	codeMethodNotAllowed  = "METHOD_NOT_ALLOWED"
)

func (o *Options) streamDefaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.NewTicker == nil {
		o.NewTicker = systemTicker
	}
	if o.MaxSubscribers == 0 {
		o.MaxSubscribers = MaxSubscribersFor(StreamMemoryBudget())
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.AcceptRate > 0 && o.AcceptBurst <= 0 {
		o.AcceptBurst = max(1, int(math.Ceil(o.AcceptRate)))
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
}

type server struct {
	store *evaluator.Store
	opts  Options
	lim   limits
	log   *slog.Logger
	known atomic.Pointer[nsCache]
	// slots guards streams, the number of stream slots in use (see
	// takeSlot), and its report to Options.Metrics: the counts are reported
	// in the order they are counted, so that the last report is current.
	slots   sync.Mutex
	streams int
	// accepts limits new streams to Options.AcceptRate; nil means no limit.
	accepts *rate.Limiter
	// syncEpoch prefixes the sync stream's event IDs (newSyncEpoch).
	syncEpoch string
}

// nsCache remembers which namespaces of one snapshot have flags, so that
// the hot path does not list namespaces per request.
type nsCache struct {
	snap  *evaluator.Snapshot
	names map[string]struct{}
}

var (
	jsonCT      = []string{"application/json"}
	bufPool     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	resultsPool = sync.Pool{New: func() any { s := make([]evaluator.Result, 0, 64); return &s }}
)

// maxPooledBuf is the largest buffer returned to the pool.
const maxPooledBuf = 1 << 20

// New returns the HTTP handler serving store.
func New(store *evaluator.Store, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxAttributes <= 0 {
		opts.MaxAttributes = DefaultMaxAttributes
	}
	if opts.MaxAttributeBytes <= 0 {
		opts.MaxAttributeBytes = DefaultMaxAttributeBytes
	}
	opts.streamDefaults()
	s := &server{
		store: store,
		opts:  opts,
		lim:   limits{maxAttrs: opts.MaxAttributes, maxAttrBytes: opts.MaxAttributeBytes},
		log:   opts.Logger,

		syncEpoch: newSyncEpoch(),
	}
	if opts.AcceptRate > 0 {
		s.accepts = rate.NewLimiter(rate.Limit(opts.AcceptRate), opts.AcceptBurst)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	routes := []struct {
		method, path string
		nsCode       string
		access       routeAccess
		h            func(http.ResponseWriter, *http.Request, evaluator.Namespace, string)
	}{
		// OFREP clients map 404 to FLAG_NOT_FOUND; keep the code they
		// expect and say in the details that the namespace is unknown.
		{http.MethodPost, "/ofrep/v1/evaluate/flags/{key}", codeFlagNotFound, accessDevice, s.ofrepSingle},
		{http.MethodPost, "/ofrep/v1/evaluate/flags", codeNamespaceNotFound, accessDevice, s.ofrepBulk},
		{http.MethodPost, "/v1/evaluate", codeNamespaceNotFound, accessDevice, s.native},
		{http.MethodGet, "/v1/users/{userId}/flags", codeNamespaceNotFound, accessAdmin, s.userFlags},
		{http.MethodGet, "/v1/devices/{deviceId}/flags", codeNamespaceNotFound, accessAdmin, s.deviceFlags},
		{http.MethodGet, "/v1/flags/{key}/explain", codeNamespaceNotFound, accessAdmin, s.explain},
		{http.MethodGet, "/v1/flags/{key}/overrides", codeNamespaceNotFound, accessAdmin, s.flagOverrides},
		{http.MethodGet, "/v1/stream", codeNamespaceNotFound, accessStream, s.nativeStream},
		{http.MethodGet, "/ofrep/v1/sse", codeNamespaceNotFound, accessStream, s.ofrepStream},
		{http.MethodGet, "/v1/sync", codeNamespaceNotFound, accessSync, s.syncStream},
	}
	for _, rt := range routes {
		for _, prefix := range []string{"", "/namespaces/{namespace}"} {
			// Authentication first: an unauthenticated caller learns
			// nothing, not even which namespaces exist.
			h := s.withAuth(rt.access, prefix != "", s.withNamespace(prefix != "", rt.nsCode, rt.h))
			mux.Handle(rt.method+" "+prefix+rt.path, h)
			mux.Handle(prefix+rt.path, methodNotAllowed(rt.method))
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.Handle("/healthz", methodNotAllowed(http.MethodGet))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, "", codeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	if len(opts.CORSAllowedOrigins) > 0 {
		return newCORS(mux, opts.CORSAllowedOrigins)
	}
	return mux
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeErrorBody(w, http.StatusMethodNotAllowed, "", codeMethodNotAllowed,
			"method "+r.Method+" is not allowed; use "+allow)
	})
}

// withNamespace resolves the namespace of a request, answers 404 for a
// namespace without flags and hands the handle on.
func (s *server) withNamespace(prefixed bool, nsCode string, h func(http.ResponseWriter, *http.Request, evaluator.Namespace, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := s.opts.DefaultNamespace
		prefix := ""
		if prefixed {
			name = r.PathValue("namespace")
			prefix = "/namespaces/" + url.PathEscape(name)
		}
		snap := s.store.Snapshot()
		if !s.hasNamespace(snap, name) {
			s.writeError(w, http.StatusNotFound, r.PathValue("key"), nsCode,
				"namespace "+strconv.Quote(name)+" not found: it has no flags")
			return
		}
		h(w, r, snap.Namespace(name), prefix)
	})
}

func (s *server) hasNamespace(snap *evaluator.Snapshot, name string) bool {
	old := s.known.Load()
	c := old
	if c == nil || c.snap != snap {
		c = &nsCache{snap: snap, names: make(map[string]struct{})}
		for _, n := range snap.Namespaces() {
			if len(snap.Namespace(n).Keys()) > 0 {
				c.names[n] = struct{}{}
			}
		}
		// A request holding an older snapshot must not replace a newer
		// cache; losing the race only costs a recomputation.
		if old == nil || old.snap.Revision() < snap.Revision() {
			s.known.CompareAndSwap(old, c)
		}
	}
	_, ok := c.names[name]
	return ok
}

// readBody reads the request body into a pooled buffer. It writes the
// error response itself and returns nil on failure; the caller must
// release the buffer with putBuf.
func (s *server) readBody(w http.ResponseWriter, r *http.Request, key string) *bytes.Buffer {
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeTooLarge(w, key)
		return nil
	}
	buf := getBuf()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		putBuf(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeTooLarge(w, key)
			return nil
		}
		s.writeError(w, http.StatusBadRequest, key, codeParse, fmt.Errorf("reading request body: %w", err).Error())
		return nil
	}
	return buf
}

func (s *server) writeTooLarge(w http.ResponseWriter, key string) {
	s.writeError(w, http.StatusRequestEntityTooLarge, key, codeTooLarge,
		"request body exceeds "+strconv.FormatInt(s.opts.MaxBodyBytes, 10)+" bytes")
}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

func (s *server) writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("writing response", "error", err)
	}
}

func (s *server) writeError(w http.ResponseWriter, status int, key, code, details string) {
	writeErrorBody(w, status, key, code, details)
}

func writeErrorBody(w http.ResponseWriter, status int, key, code, details string) {
	b := make([]byte, 0, 64+len(key)+len(details))
	b = append(b, '{')
	if key != "" {
		b = append(b, `"key":`...)
		b = appendString(b, key)
		b = append(b, ',')
	}
	b = append(b, `"errorCode":`...)
	b = appendString(b, code)
	b = append(b, `,"errorDetails":`...)
	b = appendString(b, details)
	b = append(b, '}')
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// requestError is a decoding or validation failure of a request.
type requestError struct {
	code string
	err  error
	// msg, when set, replaces err's message.
	msg string
}

func (e *requestError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return e.err.Error()
}
func (e *requestError) Unwrap() error { return e.err }

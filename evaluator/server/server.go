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
//	GET  /v1/users/{userId}/flags         effective flags and overrides of a user
//	GET  /v1/flags/{key}/explain          decision trace
//	GET  /v1/stream                       server-sent events for devices
//	GET  /ofrep/v1/sse                    OFREP event stream
//	GET  /healthz                         liveness (unprefixed only, never authenticated)
//
// A namespace without flags in the current snapshot is unknown: 404.
//
// # Context tokens
//
// Without Options.TokenKey serving is open: there is no authentication,
// anyone who reaches the handler can evaluate any context, read any
// user's overrides and explain any flag. Bind it to localhost or put it
// behind an authenticating proxy.
//
// With Options.TokenKey every route above but /healthz requires
// "Authorization: Bearer <JWT>", signed with HS256 and that key (no other
// algorithm is accepted). Its string claims userId, orgId, role, deviceId
// and deviceClass replace those of the request (query or body context;
// an absent claim leaves the attribute empty) and targetingKey becomes the
// token's userId, so that a device cannot read another user's or device's
// overrides; free attributes still come from the request. GET
// /v1/users/{userId}/flags answers 403 FORBIDDEN unless {userId} is the
// token's userId. A missing, malformed, forged, expired (exp) or not yet
// valid (nbf) token gets 401 UNAUTHORIZED with WWW-Authenticate: Bearer.
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
// GET /v1/stream takes the context from the query parameters userId, orgId,
// role, deviceId, deviceClass and targetingKey (others: 400 INVALID_QUERY
// naming them). A deviceClass eligible for device overrides of no flag of
// the namespace (for example charger with the default classes) gets 403
// DEVICE_CLASS_NOT_ELIGIBLE. Beyond Options.MaxSubscribers open streams the
// answer is 503 TOO_MANY_SUBSCRIBERS with Retry-After.
//
// The response (text/event-stream, Cache-Control: no-cache, no write
// timeout, flushed after every event) starts with "retry: <ms>" and an
// event "snapshot" whose id is the revision and whose data is
// {"namespace","revision","flags"}, flags being the map of POST
// /v1/evaluate (role-gated flags left out). Afterwards an event
// "device.feature-flags.changed" with data {"revision","changed":{key:
// flag},"removed":[key]} is sent only when this subscriber's effective
// values differ from what it was last sent. A comment ": heartbeat" is
// written every Options.Heartbeat.
//
// One dispatcher goroutine per handler (running while streams are open)
// follows Store.Changes and fans each batch of change sets out: a flag
// change re-evaluates that key for the subscribers of its namespace, a
// user or device override change only that key for the subscribers of
// that (namespace, userId) or (namespace, deviceId), against the current
// snapshot. Override expiries and schedule steps reach streams when the
// store's owner calls Tick.
//
// A reconnecting client sends Last-Event-ID (or the lastEventId query
// parameter). If the store still retains the change sets since that
// revision, the stream starts with one changed event holding the current
// values of every key touched for the subscriber since then (removed:
// deleted or now role-gated keys), or with nothing when none was touched;
// otherwise it starts with a snapshot. A Last-Event-ID that is not a
// revision number gets 400 INVALID_QUERY.
//
// Each stream has a buffer of Options.SubscriberBuffer pending events; a
// subscriber that falls further behind has its pending events dropped and
// gets one fresh snapshot when it catches up, so a slow client never
// delays the dispatcher or other clients.
//
// GET /ofrep/v1/sse is the same subscription for OFREP clients. It sends
// no snapshot; whenever the subscriber's effective values change (or after
// an overflow, or on a resume whose history is gone) it sends a data-only
// event {"type":"refetchEvaluation","etag","lastModified"}: etag is the
// ETag the bulk evaluation for that context returns at that revision and
// lastModified the time of the write (HTTP date).
//
// # Errors
//
// Every error body is JSON: {"key" (when a flag key is involved),
// "errorCode", "errorDetails"}. OFREP codes are used where they exist
// (PARSE_ERROR, INVALID_CONTEXT, FLAG_NOT_FOUND, GENERAL); other conditions
// use NAMESPACE_NOT_FOUND, PAYLOAD_TOO_LARGE, INVALID_QUERY, NOT_FOUND,
// METHOD_NOT_ALLOWED, DEVICE_CLASS_NOT_ELIGIBLE, TOO_MANY_SUBSCRIBERS,
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
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	// SubscriberBuffer is the number of events a stream may have pending;
	// beyond it the pending events are dropped and one fresh snapshot is
	// sent instead. Zero selects DefaultSubscriberBuffer.
	SubscriberBuffer int
	// MaxSubscribers caps the number of open streams; more get 503 with
	// Retry-After. Zero means unlimited.
	MaxSubscribers int
	// Retry is the reconnection delay advertised to stream clients (the
	// SSE retry field) and, rounded up to seconds, the Retry-After of a
	// 503. Zero selects DefaultRetry.
	Retry time.Duration
	// Metrics, when set, receives stream and evaluation instrumentation.
	Metrics Metrics

	// TokenKey, when set, is the HS256 secret of context tokens: the
	// device-facing routes then require Authorization: Bearer <JWT> and
	// take the identity from its claims. Nil leaves every route open.
	TokenKey []byte
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
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
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
	hub   *hub
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
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.hub = newHub(store, &s.opts)
	mux := http.NewServeMux()
	routes := []struct {
		method, path string
		nsCode       string
		auth         bool
		h            func(http.ResponseWriter, *http.Request, evaluator.Namespace, string)
	}{
		// OFREP clients map 404 to FLAG_NOT_FOUND; keep the code they
		// expect and say in the details that the namespace is unknown.
		{http.MethodPost, "/ofrep/v1/evaluate/flags/{key}", codeFlagNotFound, true, s.ofrepSingle},
		{http.MethodPost, "/ofrep/v1/evaluate/flags", codeNamespaceNotFound, true, s.ofrepBulk},
		{http.MethodPost, "/v1/evaluate", codeNamespaceNotFound, true, s.native},
		{http.MethodGet, "/v1/users/{userId}/flags", codeNamespaceNotFound, true, s.userFlags},
		{http.MethodGet, "/v1/flags/{key}/explain", codeNamespaceNotFound, true, s.explain},
		{http.MethodGet, "/v1/stream", codeNamespaceNotFound, true, s.nativeStream},
		{http.MethodGet, "/ofrep/v1/sse", codeNamespaceNotFound, true, s.ofrepStream},
	}
	for _, rt := range routes {
		for _, prefix := range []string{"", "/namespaces/{namespace}"} {
			h := s.withNamespace(prefix != "", rt.nsCode, rt.h)
			if rt.auth && s.opts.TokenKey != nil {
				h = s.withToken(h)
			}
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

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// Stream defaults for Options.
const (
	DefaultHeartbeat          = 15 * time.Second
	DefaultRetry              = 3 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
	// DefaultStreamMemoryBudget is the memory budget of open streams when
	// GOMEMLIMIT is not set (see StreamMemoryBudget).
	DefaultStreamMemoryBudget int64 = 128 << 20
	// MemoryPerStream is the memory one idle stream holds in the server
	// process with a namespace of 100 flags, 10 of them with rules,
	// rounded up: measured with hack/fanout (41.6 KiB, docs/capacity.md).
	MemoryPerStream int64 = 42 << 10
)

// MaxSubscribersFor returns the number of streams that fit in budget bytes
// at MemoryPerStream each, at least 1.
func MaxSubscribersFor(budget int64) int {
	return int(max(1, min(budget/MemoryPerStream, math.MaxInt32)))
}

// StreamMemoryBudget returns the default memory budget of open streams:
// half of the Go memory limit (GOMEMLIMIT, debug.SetMemoryLimit) when one
// is set, else DefaultStreamMemoryBudget.
func StreamMemoryBudget() int64 {
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
		return limit / 2
	}
	return DefaultStreamMemoryBudget
}

// Metrics receives instrumentation of the event streams. Implementations
// must be safe for concurrent use and must not block: they are called from
// stream handlers.
type Metrics interface {
	// Subscribers reports the number of stream slots in use (open streams
	// and stream requests being validated) after one was taken or freed.
	// Calls do not overlap and come in the order of the counts, so the
	// last one reported is the current number.
	Subscribers(n int)
	// EventSent counts an event written to a stream, by kind: "snapshot",
	// "changed", "refetch" or "heartbeat".
	EventSent(kind string)
	// Overflowed counts streams that fell further behind than the store's
	// change history and were compared in full with the current state.
	Overflowed()
	// Propagation observes the delay between the latest store write an
	// event reflects (its snapshot's time, by the store's clock) and the
	// event being flushed.
	Propagation(d time.Duration)
	// Evaluated counts one flag result served by OFREP single or bulk
	// evaluation or by POST /v1/evaluate, by its OpenFeature reason
	// (STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT or ERROR). It is
	// on the request path: it must be cheap and must not allocate.
	Evaluated(reason string)
}

type noMetrics struct{}

func (noMetrics) Subscribers(int)           {}
func (noMetrics) EventSent(string)          {}
func (noMetrics) Overflowed()               {}
func (noMetrics) Propagation(time.Duration) {}
func (noMetrics) Evaluated(string)          {}

// Error codes of the stream endpoints.
const (
	codeTooManySubscribers = "TOO_MANY_SUBSCRIBERS"
	codeTooManyNewStreams  = "TOO_MANY_NEW_STREAMS"
)

// Event kinds (the SSE event field of /v1/stream).
const (
	eventSnapshot = "snapshot"
	eventChanged  = "device.feature-flags.changed"
)

// Query parameters of the stream endpoints besides the well-known context
// attributes (streamParams).
const (
	paramContext     = "context"
	paramLastEventID = "lastEventId"
)

var streamParams = []string{
	evaluator.AttrUserID, evaluator.AttrOrgID, evaluator.AttrRole,
	evaluator.AttrDeviceID, evaluator.AttrDeviceClass, evaluator.AttrTargetingKey,
}

// streamKind says how a stream renders events.
type streamKind uint8

const (
	streamNative streamKind = iota // /v1/stream
	streamOFREP                    // /ofrep/v1/sse
)

// testHookBeforeFeedRead, when set, runs in a stream's loop just before it
// reads the change feed: tests place writes there.
var testHookBeforeFeedRead atomic.Pointer[func()]

func (s *server) nativeStream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string) {
	s.stream(w, r, ns, prefix, streamNative)
}

func (s *server) ofrepStream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string) {
	s.stream(w, r, ns, prefix, streamOFREP)
}

// stream serves GET /v1/stream and GET /ofrep/v1/sse: it takes a slot,
// validates the request, sends what the client lacks and then follows the
// store's change feed for the stream's topics until the client leaves or a
// write fails.
func (s *server) stream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string, kind streamKind) {
	if !s.takeSlotOr503(w) {
		return
	}
	defer s.freeSlot()
	ctx, lastID, err := s.streamRequest(r)
	if err != nil {
		s.writeRequestError(w, "", err)
		return
	}
	s.applyClaims(r, &ctx)
	if ctx.DeviceID != "" && ctx.DeviceClass == "" {
		// Without its class no override of either tier could apply to the device (seed
		// 000), which it would silently mistake for the flags' defaults. (A token with a
		// deviceId and no deviceClass is refused before this.)
		s.writeError(w, http.StatusBadRequest, "", codeInvalidQuery,
			fmt.Sprintf("query parameter %q is required with %q: name the device's class (for example phone)",
				evaluator.AttrDeviceClass, evaluator.AttrDeviceID))
		return
	}
	if !ns.EligibleDeviceClass(ctx.DeviceClass) {
		s.writeError(w, http.StatusForbidden, "", codeDeviceClassNotEligible,
			"device class "+strconv.Quote(ctx.DeviceClass)+" is not eligible for any flag of namespace "+
				strconv.Quote(ns.Name()))
		return
	}
	st := &streamState{kind: kind, ns: ns.Name(), prefix: prefix, ctx: ctx}
	if kind == streamOFREP {
		st.ctxJSON, st.token = contextJSON(&ctx), s.requestToken(r)
	}
	fo := s.store.Follow(streamTopics(st.ns, &ctx)...)
	defer fo.Close()

	// The client's state: the current snapshot, read before the feed.
	snap := s.store.Snapshot()
	cur := snap.Namespace(st.ns)
	results := st.reset(cur)
	var first []byte
	upToDate := lastID == st.id()
	switch {
	case upToDate && kind == streamNative:
		// The client holds these values already: their ID alone (a block without data,
		// which EventSource does not dispatch) tells it so, where silence could be a
		// snapshot still on its way.
		first = []byte("id: " + lastID + "\n\n")
	case upToDate:
	case kind == streamNative:
		first = st.snapshotFrame(cur, results)
	case lastID != "":
		first = st.refetchFrame(cur, snap.AsOf())
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !s.write(w, rc, append(s.retryFrame(), first...)) {
		return
	}
	if first != nil && !upToDate {
		s.opts.Metrics.EventSent(st.kindName(eventSnapshot))
	}
	s.follow(w, rc, r, st, fo, snap.Revision())
}

// streamTopics are the topics of a stream of namespace ns: its flags, and
// the overrides of the context's user and device.
func streamTopics(ns string, ctx *evaluator.Context) []evaluator.Topic {
	topics := []evaluator.Topic{evaluator.FlagsTopic(ns)}
	if id := ctx.EffectiveUserID(); id != "" {
		topics = append(topics, evaluator.SubjectTopic(ns, evaluator.SubjectUser, id))
	}
	if ctx.DeviceID != "" {
		topics = append(topics, evaluator.SubjectTopic(ns, evaluator.SubjectDevice, ctx.DeviceID))
	}
	return topics
}

// follow keeps the client of st, which holds the values of revision pos,
// up to date until it leaves or a write fails (package doc, "How streams
// follow the store"): read the feed, send what changed, wait on the
// channel of that read.
func (s *server) follow(w http.ResponseWriter, rc *http.ResponseController, r *http.Request, st *streamState, fo *evaluator.Follower, pos uint64) {
	tick, stop := s.opts.NewTicker(s.opts.Heartbeat)
	defer stop()
	for {
		if f := testHookBeforeFeedRead.Load(); f != nil {
			(*f)()
		}
		ch := fo.ChangesFor(pos)
		pos = ch.Snapshot.Revision()
		cur := ch.Snapshot.Namespace(st.ns)
		keys := ch.Keys
		if !ch.Complete {
			s.opts.Metrics.Overflowed()
			keys = st.allKeys(cur)
		}
		if data, changed := st.update(cur, keys); changed {
			if !s.write(w, rc, st.changedFrame(cur, ch.Snapshot.AsOf(), data)) {
				return
			}
			s.opts.Metrics.EventSent(st.kindName("changed"))
			s.opts.Metrics.Propagation(time.Since(ch.Snapshot.AsOf()))
		}
		if !s.await(w, rc, r, tick, ch.Wake) {
			return
		}
	}
}

// await writes a heartbeat at each tick until wake is closed; it reports
// false when the stream must end (the client left, a write failed).
func (s *server) await(w http.ResponseWriter, rc *http.ResponseController, r *http.Request, tick <-chan time.Time, wake <-chan struct{}) bool {
	for {
		select {
		case <-r.Context().Done():
			return false
		case <-tick:
			if !s.write(w, rc, []byte(": heartbeat\n\n")) {
				return false
			}
			s.opts.Metrics.EventSent("heartbeat")
		case <-wake:
			return true
		}
	}
}

// takeSlotOr503 takes a stream slot, or answers 503 (TOO_MANY_SUBSCRIBERS at
// the cap, TOO_MANY_NEW_STREAMS beyond the accept rate) with a jittered
// Retry-After and reports false.
func (s *server) takeSlotOr503(w http.ResponseWriter) bool {
	var code, details string
	switch s.takeSlot() {
	case slotTaken:
		return true
	case slotCap:
		code, details = codeTooManySubscribers, "too many event stream subscribers (limit "+strconv.Itoa(s.opts.MaxSubscribers)+")"
	default:
		code, details = codeTooManyNewStreams, "more than "+strconv.FormatFloat(s.opts.AcceptRate, 'g', -1, 64)+
			" new event streams a second on this replica; retry after the delay given"
	}
	base := retryAfterSeconds(s.opts.Retry)
	w.Header().Set("Retry-After", strconv.Itoa(base+rand.IntN(base+1)))
	s.writeError(w, http.StatusServiceUnavailable, "", code, details)
	return false
}

// retryFrame is the SSE block a stream starts with: its reconnection
// delay, drawn between half and one and a half of Options.Retry.
func (s *server) retryFrame() []byte {
	d := s.opts.Retry/2 + rand.N(s.opts.Retry+1)
	return []byte("retry: " + strconv.FormatInt(d.Milliseconds(), 10) + "\n\n")
}

// Outcomes of takeSlot.
const (
	slotTaken = iota
	slotCap   // every slot is in use
	slotRate  // beyond the accept rate
)

// takeSlot takes one of Options.MaxSubscribers stream slots (any number
// when it is negative) within the accept rate. A request refused at the
// cap spends none of the rate.
func (s *server) takeSlot() int {
	s.slots.Lock()
	defer s.slots.Unlock()
	if s.opts.MaxSubscribers > 0 && s.streams >= s.opts.MaxSubscribers {
		return slotCap
	}
	if s.accepts != nil && !s.accepts.Allow() {
		return slotRate
	}
	s.streams++
	s.opts.Metrics.Subscribers(s.streams)
	return slotTaken
}

func (s *server) freeSlot() {
	s.slots.Lock()
	defer s.slots.Unlock()
	s.streams--
	s.opts.Metrics.Subscribers(s.streams)
}

// write writes and flushes b within Options.StreamWriteTimeout (when the
// ResponseWriter supports deadlines, as net/http's does); it reports false
// when the stream must end.
func (s *server) write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	if err := rc.SetWriteDeadline(time.Now().Add(s.opts.StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Debug("setting the stream write deadline", "error", err)
		return false
	}
	if _, err := w.Write(b); err != nil {
		s.log.Debug("writing stream", "error", err)
		return false
	}
	if err := rc.Flush(); err != nil {
		s.log.Debug("flushing stream", "error", err)
		return false
	}
	return true
}

// streamRequest returns the context and the last event ID of a stream
// request. The context is either the JSON object of the context query
// parameter or the well-known attributes as parameters, not both; the
// last event ID is the Last-Event-ID header, else the lastEventId
// parameter. access_token is left to the token check.
func (s *server) streamRequest(r *http.Request) (evaluator.Context, string, error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return evaluator.Context{}, "", err
	}
	var unknown []string
	m := make(map[string]any, len(q))
	lastID := r.Header.Get("Last-Event-ID")
	rawCtx, haveCtx := "", false
	for name, vals := range q {
		switch {
		case name == paramAccessToken:
			continue
		case name == paramContext || name == paramLastEventID || slices.Contains(streamParams, name):
		default:
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		if len(vals) > 1 {
			return evaluator.Context{}, "", &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("query parameter %q is given %d times", name, len(vals))}
		}
		switch name {
		case paramContext:
			rawCtx, haveCtx = vals[0], true
		case paramLastEventID:
			if lastID == "" {
				lastID = vals[0]
			}
		default:
			m[name] = vals[0]
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return evaluator.Context{}, "", &requestError{code: codeInvalidQuery,
			err: fmt.Errorf("unknown query parameters %s (want %s, or %s, %s or %s)", strings.Join(unknown, ", "),
				strings.Join(streamParams, ", "), paramContext, paramLastEventID, paramAccessToken)}
	}
	if haveCtx {
		if len(m) > 0 {
			return evaluator.Context{}, "", &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("query parameter %q: give the context either as a JSON object in %s or as the parameters %s, not both",
					paramContext, paramContext, strings.Join(streamParams, ", "))}
		}
		if m, err = decodeContextParam(rawCtx); err != nil {
			return evaluator.Context{}, "", err
		}
	}
	ctx, err := contextFromMap(m, s.lim)
	return ctx, strings.TrimSpace(lastID), err
}

// decodeContextParam decodes the context query parameter: one JSON object.
func decodeContextParam(raw string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil && m == nil {
		err = errors.New("got null")
	}
	if err != nil {
		return nil, &requestError{code: codeInvalidContext,
			err: fmt.Errorf("query parameter %q: must be a JSON object: %w", paramContext, err)}
	}
	return m, nil
}

func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

func systemTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

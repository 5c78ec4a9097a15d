package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// Stream defaults for Options.
const (
	DefaultHeartbeat        = 15 * time.Second
	DefaultSubscriberBuffer = 16
	DefaultRetry            = 3 * time.Second
)

// Metrics receives instrumentation of the event streams. Implementations
// must be safe for concurrent use and must not block: they are called from
// the dispatcher and from stream handlers.
type Metrics interface {
	// Subscribers reports the number of open streams after one opened or
	// closed.
	Subscribers(n int)
	// EventSent counts an event written to a stream, by kind: "snapshot",
	// "changed", "refetch" or "heartbeat".
	EventSent(kind string)
	// Overflowed counts subscriber buffer overflows: the pending events of
	// a slow subscriber were dropped in favour of one fresh snapshot.
	Overflowed()
	// Propagation observes the delay between the dispatcher learning of a
	// write and the resulting event being flushed to a subscriber.
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
	codeDeviceNotEligible  = "DEVICE_CLASS_NOT_ELIGIBLE"
	codeTooManySubscribers = "TOO_MANY_SUBSCRIBERS"
)

// Event kinds (the SSE event field of /v1/stream).
const (
	eventSnapshot = "snapshot"
	eventChanged  = "device.feature-flags.changed"
)

// streamParams are the query parameters of the stream endpoints besides
// lastEventId: the well-known context attributes.
var streamParams = []string{
	evaluator.AttrUserID, evaluator.AttrOrgID, evaluator.AttrRole,
	evaluator.AttrDeviceID, evaluator.AttrDeviceClass, evaluator.AttrTargetingKey,
}

const paramLastEventID = "lastEventId"

// streamKind says how a subscriber renders events.
type streamKind uint8

const (
	streamNative streamKind = iota // /v1/stream
	streamOFREP                    // /ofrep/v1/sse
)

// event is one rendered SSE frame waiting to be written.
type event struct {
	kind  string // metrics kind
	frame []byte
	at    time.Time // when the dispatcher learned of the write; zero for snapshots
}

// subscriber is one open stream. The dispatcher and the stream handler
// share its state under mu; neither blocks while holding it.
type subscriber struct {
	ns     string
	ctx    evaluator.Context
	user   string // effective user ID
	kind   streamKind
	prefix string
	log    *slog.Logger

	notify chan struct{} // capacity 1: events are pending

	mu       sync.Mutex
	rev      uint64                      // lastSent reflects every write up to rev
	lastSent map[string]evaluator.Result // what the client has, by key
	queue    []event
	resync   bool // the queue overflowed: send a fresh snapshot instead
}

func (sub *subscriber) wake() {
	select {
	case sub.notify <- struct{}{}:
	default:
	}
}

type subjectKey struct {
	ns, id string
}

// hub indexes subscribers and runs the dispatcher while any are open.
type hub struct {
	store   *evaluator.Store
	metrics Metrics
	buffer  int
	max     int

	mu       sync.Mutex
	count    int
	byNS     map[string]map[*subscriber]struct{}
	byUser   map[subjectKey]map[*subscriber]struct{}
	byDevice map[subjectKey]map[*subscriber]struct{}
	running  bool
	kick     chan struct{} // capacity 1: re-check whether to stop
}

func newHub(store *evaluator.Store, opts *Options) *hub {
	return &hub{
		store: store, metrics: opts.Metrics, buffer: opts.SubscriberBuffer, max: opts.MaxSubscribers,
		byNS:     map[string]map[*subscriber]struct{}{},
		byUser:   map[subjectKey]map[*subscriber]struct{}{},
		byDevice: map[subjectKey]map[*subscriber]struct{}{},
		kick:     make(chan struct{}, 1),
	}
}

func addTo[K comparable](m map[K]map[*subscriber]struct{}, k K, sub *subscriber) {
	set := m[k]
	if set == nil {
		set = map[*subscriber]struct{}{}
		m[k] = set
	}
	set[sub] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*subscriber]struct{}, k K, sub *subscriber) {
	if set := m[k]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// register adds sub, whose state reflects revision sub.rev, and starts the
// dispatcher if needed. It reports false when the subscriber cap is
// reached.
func (h *hub) register(sub *subscriber) bool {
	h.mu.Lock()
	if h.max > 0 && h.count >= h.max {
		h.mu.Unlock()
		return false
	}
	h.count++
	n := h.count
	addTo(h.byNS, sub.ns, sub)
	if sub.user != "" {
		addTo(h.byUser, subjectKey{sub.ns, sub.user}, sub)
	}
	if sub.ctx.DeviceID != "" {
		addTo(h.byDevice, subjectKey{sub.ns, sub.ctx.DeviceID}, sub)
	}
	if !h.running {
		h.running = true
		go h.dispatch(sub.rev)
	}
	h.mu.Unlock()
	h.metrics.Subscribers(n)
	return true
}

func (h *hub) unregister(sub *subscriber) {
	h.mu.Lock()
	h.count--
	n := h.count
	removeFrom(h.byNS, sub.ns, sub)
	if sub.user != "" {
		removeFrom(h.byUser, subjectKey{sub.ns, sub.user}, sub)
	}
	if sub.ctx.DeviceID != "" {
		removeFrom(h.byDevice, subjectKey{sub.ns, sub.ctx.DeviceID}, sub)
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
	h.metrics.Subscribers(n)
}

// dispatch follows the store's change feed from revision pos and fans each
// batch of change sets out to the subscribers it concerns. It returns when
// no subscriber is left.
func (h *hub) dispatch(pos uint64) {
	for {
		// Snapshot first: the change sets up to its revision are then
		// all in the feed (see Store.Changes).
		snap := h.store.Snapshot()
		css, wake, ok := h.store.Changes(pos)
		if !ok {
			// The feed moved past our position: every subscriber
			// resynchronises with a snapshot.
			pos = snap.Revision()
			h.resyncAll()
			continue
		}
		css = upTo(css, snap.Revision())
		if len(css) == 0 {
			if pos < snap.Revision() {
				continue
			}
			select {
			case <-wake:
			case <-h.kick:
				h.mu.Lock()
				if h.count == 0 {
					h.running = false
					h.mu.Unlock()
					return
				}
				h.mu.Unlock()
			}
			continue
		}
		pos = snap.Revision()
		h.fanOut(css, snap, time.Now())
	}
}

// upTo drops the change sets after revision rev.
func upTo(css []evaluator.ChangeSet, rev uint64) []evaluator.ChangeSet {
	for i := range css {
		if css[i].Revision > rev {
			return css[:i]
		}
	}
	return css
}

func (h *hub) resyncAll() {
	h.mu.Lock()
	var subs []*subscriber
	for _, set := range h.byNS {
		for sub := range set {
			subs = append(subs, sub)
		}
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.mu.Lock()
		sub.queue, sub.resync = nil, true
		sub.mu.Unlock()
		sub.wake()
	}
}

// touched collects, per subscriber, the flag keys a batch of change sets
// may have changed for it.
func (h *hub) touched(css []evaluator.ChangeSet) map[*subscriber]map[string]struct{} {
	out := map[*subscriber]map[string]struct{}{}
	add := func(set map[*subscriber]struct{}, key string) {
		for sub := range set {
			keys := out[sub]
			if keys == nil {
				keys = map[string]struct{}{}
				out[sub] = keys
			}
			keys[key] = struct{}{}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range css {
		for _, f := range css[i].Flags {
			add(h.byNS[f.Namespace], f.Key)
		}
		for _, sc := range css[i].Subjects {
			idx := h.byUser
			if sc.Kind == evaluator.SubjectDevice {
				idx = h.byDevice
			}
			add(idx[subjectKey{sc.Namespace, sc.SubjectID}], sc.Key)
		}
	}
	return out
}

// fanOut re-evaluates, for each subscriber concerned, the keys that css
// (every change set up to snap's revision not yet dispatched) touched.
func (h *hub) fanOut(css []evaluator.ChangeSet, snap *evaluator.Snapshot, at time.Time) {
	work := h.touched(css)
	for sub, keys := range work {
		sub.mu.Lock()
		if sub.resync || sub.rev >= snap.Revision() {
			// A snapshot is pending, or the subscriber's state already
			// reflects every write up to snap.
			sub.mu.Unlock()
			continue
		}
		ev, ok := sub.diff(snap, keys, at)
		if ok {
			sub.queue = append(sub.queue, ev)
			if len(sub.queue) > h.buffer {
				sub.queue, sub.resync = nil, true
				h.metrics.Overflowed()
			}
		}
		sub.mu.Unlock()
		if ok {
			sub.wake()
		}
	}
}

// visible evaluates key for the subscriber; ok is false when the key is
// not part of its effective map (unknown or role-gated flag).
func visible(ns evaluator.Namespace, ctx *evaluator.Context, key string) (evaluator.Result, bool) {
	res := ns.Evaluate(*ctx, key)
	if res.ErrorCode == evaluator.ErrorFlagNotFound ||
		(res.Source == evaluator.SourceRoleGate && res.Reason == evaluator.ReasonDisabled) {
		return evaluator.Result{}, false
	}
	return res, true
}

func sameResult(a, b *evaluator.Result) bool {
	return string(a.Raw) == string(b.Raw) && a.Enabled == b.Enabled && a.Variant == b.Variant &&
		a.Reason == b.Reason && a.Source == b.Source && a.ErrorCode == b.ErrorCode && a.ErrorMessage == b.ErrorMessage
}

type changedData struct {
	Revision uint64                `json:"revision"`
	Changed  map[string]nativeFlag `json:"changed"`
	Removed  []string              `json:"removed"`
}

// diff re-evaluates keys against snap, records the new values as sent and
// renders the event for what changed. With all set, keys that did not
// change are reported too (resume). Called with sub.mu held.
func (sub *subscriber) diff(snap *evaluator.Snapshot, keys map[string]struct{}, at time.Time) (event, bool) {
	ns := snap.Namespace(sub.ns)
	data := changedData{Revision: snap.Revision(), Changed: map[string]nativeFlag{}, Removed: []string{}}
	for key := range keys {
		res, ok := visible(ns, &sub.ctx, key)
		prev, had := sub.lastSent[key]
		switch {
		case ok && (!had || !sameResult(&prev, &res)):
			sub.lastSent[key] = res
			data.Changed[key] = nativeOf(&res)
		case !ok && had:
			delete(sub.lastSent, key)
			data.Removed = append(data.Removed, key)
		}
	}
	sub.rev = snap.Revision()
	if len(data.Changed) == 0 && len(data.Removed) == 0 {
		return event{}, false
	}
	slices.Sort(data.Removed)
	return sub.changedEvent(snap, &data, at), true
}

func (sub *subscriber) changedEvent(snap *evaluator.Snapshot, data *changedData, at time.Time) event {
	if sub.kind == streamOFREP {
		return sub.refetchEvent(snap, at)
	}
	return sub.encode("changed", data.Revision, eventChanged, data, at)
}

// encode renders an event with JSON data. nativeFlag holds only strings,
// bools and JSON values produced by the evaluator, so encoding does not
// fail in practice; if it does, the error is logged and the subscriber is
// sent a bare comment naming the failure instead.
func (sub *subscriber) encode(kind string, id uint64, name string, v any, at time.Time) event {
	body, err := json.Marshal(v)
	if err != nil {
		err = fmt.Errorf("encoding %s event: %w", kind, err)
		sub.log.Error("event stream", "error", err)
		return event{kind: "error", frame: []byte(": encoding error\n\n")}
	}
	return event{kind: kind, frame: frame(id, name, body), at: at}
}

// refetchEvent renders the OFREP refetch event, tagged like the bulk
// response the client will get for its context.
func (sub *subscriber) refetchEvent(snap *evaluator.Snapshot, at time.Time) event {
	ns := snap.Namespace(sub.ns)
	buf, etag := bulkResponse(ns, &sub.ctx, sub.prefix, nil)
	putBuf(buf)
	b := []byte(`{"type":"refetchEvaluation","etag":`)
	b = appendString(b, etag)
	b = append(b, `,"lastModified":`...)
	b = appendString(b, snap.AsOf().UTC().Format(http.TimeFormat))
	b = append(b, '}')
	return event{kind: "refetch", frame: frame(snap.Revision(), "", b), at: at}
}

// snapshot replaces the subscriber's state with the full effective map at
// the current revision and renders it. Called with sub.mu held.
func (sub *subscriber) snapshot(snap *evaluator.Snapshot) event {
	ns := snap.Namespace(sub.ns)
	results := ns.EvaluateAll(sub.ctx)
	sub.lastSent = make(map[string]evaluator.Result, len(results))
	resp := nativeResponse{Namespace: sub.ns, Revision: snap.Revision(), Flags: make(map[string]nativeFlag, len(results))}
	for i := range results {
		sub.lastSent[results[i].Key] = results[i]
		resp.Flags[results[i].Key] = nativeOf(&results[i])
	}
	sub.rev = snap.Revision()
	return sub.encode("snapshot", snap.Revision(), eventSnapshot, resp, time.Time{})
}

func frame(id uint64, name string, data []byte) []byte {
	b := make([]byte, 0, len(data)+64)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '\n')
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// take returns the events to write next: a fresh snapshot (or refetch)
// after an overflow, else the queue.
func (sub *subscriber) take(store *evaluator.Store) []event {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.resync {
		sub.resync, sub.queue = false, nil
		snap := store.Snapshot()
		ev := sub.snapshot(snap)
		if sub.kind == streamOFREP {
			ev = sub.refetchEvent(snap, time.Time{})
		}
		return []event{ev}
	}
	q := sub.queue
	sub.queue = nil
	return q
}

// streamContext builds the context and the resume revision of a stream
// request from its query and the Last-Event-ID header.
func (s *server) streamContext(r *http.Request) (evaluator.Context, uint64, bool, error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return evaluator.Context{}, 0, false, err
	}
	var unknown []string
	m := make(map[string]any, len(q))
	lastID := r.Header.Get("Last-Event-ID")
	for name, vals := range q {
		if name != paramLastEventID && !slices.Contains(streamParams, name) {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		if len(vals) > 1 {
			return evaluator.Context{}, 0, false, &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("query parameter %q is given %d times", name, len(vals))}
		}
		if name == paramLastEventID {
			if lastID == "" {
				lastID = vals[0]
			}
			continue
		}
		m[name] = vals[0]
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return evaluator.Context{}, 0, false, &requestError{code: codeInvalidQuery,
			err: fmt.Errorf("unknown query parameters %s (want %s or %s)", strings.Join(unknown, ", "),
				strings.Join(streamParams, ", "), paramLastEventID)}
	}
	ctx, err := contextFromMap(m, s.lim)
	if err != nil {
		return evaluator.Context{}, 0, false, err
	}
	if lastID == "" {
		return ctx, 0, false, nil
	}
	rev, err := strconv.ParseUint(strings.TrimSpace(lastID), 10, 64)
	if err != nil {
		return evaluator.Context{}, 0, false, &requestError{code: codeInvalidQuery,
			err: fmt.Errorf("last event ID %q: %w", lastID, err)}
	}
	return ctx, rev, true, nil
}

func (s *server) nativeStream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string) {
	s.stream(w, r, ns, prefix, streamNative)
}

func (s *server) ofrepStream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string) {
	s.stream(w, r, ns, prefix, streamOFREP)
}

// stream serves GET /v1/stream and GET /ofrep/v1/sse.
func (s *server) stream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string, kind streamKind) {
	ctx, lastID, resume, err := s.streamContext(r)
	if err != nil {
		s.writeRequestError(w, "", err)
		return
	}
	s.applyClaims(r, &ctx)
	if !ns.EligibleDeviceClass(ctx.DeviceClass) {
		s.writeError(w, http.StatusForbidden, "", codeDeviceNotEligible,
			"device class "+strconv.Quote(ctx.DeviceClass)+" is not eligible for any flag of namespace "+
				strconv.Quote(ns.Name()))
		return
	}
	sub := &subscriber{
		ns: ns.Name(), ctx: ctx, user: ctx.EffectiveUserID(), kind: kind, prefix: prefix, log: s.log,
		notify: make(chan struct{}, 1),
	}
	// The first events: a snapshot (native, without resume), the diff
	// since lastID, or nothing (OFREP without changes to report).
	snap := s.store.Snapshot()
	var first []event
	sub.mu.Lock()
	snapEv := sub.snapshot(snap)
	switch {
	case resume && lastID <= snap.Revision():
		ev, ok, inHistory := sub.resume(s.store, snap, lastID)
		switch {
		case !inHistory && kind == streamNative:
			first = append(first, snapEv)
		case !inHistory:
			first = append(first, sub.refetchEvent(snap, time.Time{}))
		case ok:
			first = append(first, ev)
		}
	case kind == streamNative:
		first = append(first, snapEv)
	case resume:
		// An ID from the future (another server, a restarted store).
		first = append(first, sub.refetchEvent(snap, time.Time{}))
	}
	sub.mu.Unlock()
	if !s.hub.register(sub) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(s.opts.Retry)))
		s.writeError(w, http.StatusServiceUnavailable, "", codeTooManySubscribers,
			"too many event stream subscribers (limit "+strconv.Itoa(s.opts.MaxSubscribers)+")")
		return
	}
	defer s.hub.unregister(sub)
	s.hub.catchUp(sub, snap.Revision())

	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Debug("clearing stream write deadline", "error", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	retry := []byte("retry: " + strconv.FormatInt(s.opts.Retry.Milliseconds(), 10) + "\n\n")
	if !s.write(w, rc, retry) || !s.writeEvents(w, rc, first) {
		return
	}
	tick, stop := s.opts.NewTicker(s.opts.Heartbeat)
	defer stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick:
			if !s.write(w, rc, []byte(": heartbeat\n\n")) {
				return
			}
			s.opts.Metrics.EventSent("heartbeat")
		case <-sub.notify:
			if !s.writeEvents(w, rc, sub.take(s.store)) {
				return
			}
		}
	}
}

// resume computes the event bringing a client at revision lastID up to
// date: the current values of every key touched for it since then.
// inHistory is false when the change sets since lastID are no longer
// retained; ok is false when nothing relevant changed. Called with sub.mu
// held, after sub.snapshot(snap).
func (sub *subscriber) resume(store *evaluator.Store, snap *evaluator.Snapshot, lastID uint64) (ev event, ok, inHistory bool) {
	css, _, inHistory := store.Changes(lastID)
	if !inHistory {
		return event{}, false, false
	}
	keys := sub.relevant(upTo(css, snap.Revision()))
	if len(keys) == 0 {
		return event{}, false, true
	}
	data := changedData{Revision: snap.Revision(), Changed: map[string]nativeFlag{}, Removed: []string{}}
	for key := range keys {
		if res, ok := sub.lastSent[key]; ok {
			data.Changed[key] = nativeOf(&res)
		} else {
			data.Removed = append(data.Removed, key)
		}
	}
	slices.Sort(data.Removed)
	return sub.changedEvent(snap, &data, time.Time{}), true, true
}

// relevant returns the keys the change sets touched for the subscriber.
func (sub *subscriber) relevant(css []evaluator.ChangeSet) map[string]struct{} {
	keys := map[string]struct{}{}
	for i := range css {
		for _, f := range css[i].Flags {
			if f.Namespace == sub.ns {
				keys[f.Key] = struct{}{}
			}
		}
		for _, sc := range css[i].Subjects {
			if sc.Namespace == sub.ns &&
				((sc.Kind == evaluator.SubjectUser && sub.user != "" && sc.SubjectID == sub.user) ||
					(sc.Kind == evaluator.SubjectDevice && sub.ctx.DeviceID != "" && sc.SubjectID == sub.ctx.DeviceID)) {
				keys[sc.Key] = struct{}{}
			}
		}
	}
	return keys
}

// catchUp covers the writes published between the subscriber's first
// snapshot (revision since) and its registration, which the dispatcher
// may have fanned out before it knew the subscriber.
func (h *hub) catchUp(sub *subscriber, since uint64) {
	snap := h.store.Snapshot()
	css, _, ok := h.store.Changes(since)
	if css = upTo(css, snap.Revision()); len(css) == 0 && ok {
		return
	}
	sub.mu.Lock()
	queued := false
	switch {
	case !ok:
		sub.queue, sub.resync, queued = nil, true, true
	case !sub.resync && sub.rev < snap.Revision():
		var ev event
		if ev, queued = sub.diff(snap, sub.relevant(css), time.Now()); queued {
			sub.queue = append(sub.queue, ev)
		}
	}
	sub.mu.Unlock()
	if queued {
		sub.wake()
	}
}

func (s *server) writeEvents(w http.ResponseWriter, rc *http.ResponseController, evs []event) bool {
	for _, ev := range evs {
		if _, err := w.Write(ev.frame); err != nil {
			s.log.Debug("writing stream event", "error", err)
			return false
		}
	}
	if len(evs) == 0 {
		return true
	}
	if err := rc.Flush(); err != nil {
		s.log.Debug("flushing stream", "error", err)
		return false
	}
	for _, ev := range evs {
		s.opts.Metrics.EventSent(ev.kind)
		if !ev.at.IsZero() {
			s.opts.Metrics.Propagation(time.Since(ev.at))
		}
	}
	return true
}

func (s *server) write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
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

func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

func systemTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

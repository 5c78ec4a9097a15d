// Package link keeps an OpenFeature provider connected to an event stream of the
// flagops evaluator: it opens the stream (with a context token, resuming with
// Last-Event-ID), reconnects with jittered back-off, reads its blocks and hands them
// to the provider's Handler, and turns what happens into the provider's state and
// events (READY, CONFIGURATION_CHANGED, STALE, ERROR after a grace period). The
// device-stream provider (package flagops) and the in-process provider (package
// inprocess) share it.
package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// Defaults for Config, which the providers' options document.
const (
	DefaultGracePeriod   = 15 * time.Second
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultInitTimeout   = 10 * time.Second
	DefaultMaxEventBytes = 16 << 20
)

// Config configures a Link (see Checked).
type Config struct {
	// Name is the provider's name in its events.
	Name   string
	Token  func(ctx context.Context) (string, error)
	Client *http.Client
	Log    *slog.Logger

	GracePeriod, MinBackoff, MaxBackoff, IdleTimeout, InitTimeout time.Duration
	MaxEventBytes                                                 int
}

// Checked returns c with defaults for its zero fields (MaxEventBytes: maxEvent), or
// an error naming the Options field that is wrong.
func Checked(c Config, maxEvent int) (Config, error) {
	if c.Client != nil && c.Client.Timeout != 0 {
		return c, errors.New("flagops: Options.HTTPClient has a Timeout, which would end the stream: leave it zero (Options.IdleTimeout bounds silences)")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"GracePeriod", c.GracePeriod}, {"MinBackoff", c.MinBackoff}, {"MaxBackoff", c.MaxBackoff},
		{"IdleTimeout", c.IdleTimeout}, {"InitTimeout", c.InitTimeout}} {
		if d.d < 0 {
			return c, fmt.Errorf("flagops: Options.%s is negative (%s)", d.name, d.d)
		}
	}
	if c.MaxEventBytes < 0 {
		return c, fmt.Errorf("flagops: Options.MaxEventBytes is negative (%d)", c.MaxEventBytes)
	}
	c.GracePeriod = orDefault(c.GracePeriod, DefaultGracePeriod)
	c.MinBackoff = orDefault(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = max(orDefault(c.MaxBackoff, DefaultMaxBackoff), c.MinBackoff)
	c.IdleTimeout = orDefault(c.IdleTimeout, DefaultIdleTimeout)
	c.InitTimeout = orDefault(c.InitTimeout, DefaultInitTimeout)
	c.MaxEventBytes = orDefault(c.MaxEventBytes, maxEvent)
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Event is one block of the stream, as far as a provider reads it.
type Event struct {
	ID    string
	HasID bool
	Name  string
	Data  []byte
}

// Applied says what an event did to the provider's values.
type Applied uint8

const (
	// Ignored: an event the provider does not know; the stream's position stays.
	Ignored Applied = iota
	// Replaced: a snapshot replaced the values, which are current now.
	Replaced
	// Changed: a change was applied.
	Changed
)

// Handler applies a stream's events to a provider's values.
type Handler interface {
	// Apply applies one named event. synced reports whether the values were current
	// at some point on this connection: a change before that is a gap. keys are the
	// flags whose values changed, sorted. An error wrapping ErrGap makes the link
	// reconnect without Last-Event-ID, which fetches a snapshot.
	Apply(ev *Event, synced bool) (what Applied, keys []string, err error)
}

// ErrGap ends a connection whose events the provider can no longer apply with
// certainty.
var ErrGap = errors.New("lost track of the stream's values")

// status is the provider's state.
type status uint8

const (
	statusNotReady status = iota
	statusReady
	statusStale
	statusError
	statusFatal
)

// Link is the connection of one provider. Its methods are safe for concurrent use.
type Link struct {
	cfg    Config
	h      Handler
	events chan openfeature.Event

	mu           sync.Mutex
	status       status
	cancel       context.CancelFunc
	done         chan struct{}
	initDone     bool       // Start has returned: state changes are events now
	initSignaled bool       // the first sync or a fatal error was sent to initResult
	initResult   chan error // buffered: nil at the first sync, or the fatal error
	grace        *time.Timer
	lastErr      error
}

// New returns a link that applies events with h.
func New(cfg Config, h Handler) *Link {
	return &Link{cfg: cfg, h: h,
		// The SDK reads events as they come; the buffer absorbs bursts (see emit).
		events: make(chan openfeature.Event, 64)}
}

// Events is the provider's event channel.
func (l *Link) Events() <-chan openfeature.Event { return l.events }

// Start opens the stream at url and returns once the values are current; it calls
// starting first, unless the link runs already. It fails
// when ctx ends or Config.InitTimeout passes first (the link keeps trying and emits
// PROVIDER_READY when it succeeds), or at once when the evaluator refuses the
// request as malformed (an openfeature.ProviderInitError with PROVIDER_FATAL).
func (l *Link) Start(ctx context.Context, url string, starting func()) error {
	l.mu.Lock()
	if l.cancel != nil {
		l.mu.Unlock()
		return errors.New("flagops: the provider is already initialised: shut it down first")
	}
	starting()
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	l.status, l.initDone, l.initSignaled = statusNotReady, false, false
	l.initResult = make(chan error, 1)
	result, done := l.initResult, l.done
	go l.run(runCtx, url, done)
	l.mu.Unlock()

	timer := time.NewTimer(l.cfg.InitTimeout)
	defer timer.Stop()
	where, _, _ := strings.Cut(url, "?")
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = fmt.Errorf("flagops: no snapshot from %s yet: %w", where, ctx.Err())
	case <-timer.C:
		err = fmt.Errorf("flagops: no snapshot from %s within %s", where, l.cfg.InitTimeout)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.initDone = true
	if err != nil {
		select {
		case err = <-result: // it came in meanwhile
		default:
			if l.lastErr != nil {
				err = fmt.Errorf("%w: %w", err, l.lastErr)
			}
		}
	}
	return err
}

// Stop closes the stream and waits for the link's goroutine to end, or for ctx. It
// reports whether the goroutine ended (or none ran): only then may the caller
// forget its values. The link can be started again afterwards.
func (l *Link) Stop(ctx context.Context) (bool, error) {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel = nil
	l.stopGrace()
	l.status = statusNotReady
	l.mu.Unlock()
	if cancel == nil {
		return true, nil
	}
	cancel()
	select {
	case <-done:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("flagops: shutting down: %w", ctx.Err())
	}
}

// streamError is why a connection ended.
type streamError struct {
	err error
	// fatal: the evaluator refused the request as malformed; retrying cannot help.
	fatal bool
	// retryAfter is the evaluator's Retry-After, if any.
	retryAfter time.Duration
}

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// conn is the state of the connection loop, owned by its goroutine.
type conn struct {
	l      *Link
	url    string
	token  string
	lastID string
}

// run keeps the stream open until ctx ends: it connects, and after each drop
// reconnects at once, then with back-off.
func (l *Link) run(ctx context.Context, url string, done chan struct{}) {
	defer close(done)
	c := &conn{l: l, url: url}
	attempt := 0
	for {
		synced, err := c.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		var se *streamError
		if errors.As(err, &se) && se.fatal {
			l.failed(err)
			return
		}
		l.dropped(err)
		if synced {
			attempt = 0
		}
		var delay time.Duration
		delay, attempt = retryDelay(l.cfg.MinBackoff, l.cfg.MaxBackoff, attempt, err)
		l.cfg.Log.Debug("Reconnecting to the flagops evaluator", "in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retryDelay is the delay before the next attempt after attempt n failed with
// err, and the number of that attempt. A 503 with Retry-After (a replica at its
// cap or accept rate) is waited out as given, which the evaluator jitters,
// without doubling the back-off: the Service may route the next attempt to a
// replica with room. Anything else backs off.
func retryDelay(lo, hi time.Duration, n int, err error) (time.Duration, int) {
	var se *streamError
	if errors.As(err, &se) && se.retryAfter > 0 {
		return se.retryAfter, n
	}
	return Backoff(lo, hi, n), n + 1
}

// Backoff is the delay before reconnection attempt n (0 for the first after a
// drop): lo, doubling up to hi, drawn at random between half and all of it.
func Backoff(lo, hi time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	d := hi
	if shift := n - 1; shift < 30 && lo<<shift < d {
		d = lo << shift
	}
	return d/2 + rand.N(d/2+1)
}

// connect opens the stream and applies its events until it ends. synced reports
// whether the values were current at some point on this connection.
func (c *conn) connect(ctx context.Context) (synced bool, err error) {
	cfg := &c.l.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The watchdog ends a connection that stays silent, from the request on.
	idle := time.AfterFunc(cfg.IdleTimeout, cancel)
	defer idle.Stop()

	resp, err := c.open(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }() // a read error is what counts
	sentID := c.lastID
	sc := bufio.NewScanner(&idleReader{r: resp.Body, t: idle, d: cfg.IdleTimeout})
	// The larger of the capacity and the maximum bounds a line.
	sc.Buffer(make([]byte, 0, min(64<<10, cfg.MaxEventBytes)), cfg.MaxEventBytes)
	var ev Event
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 {
			ev.field(line)
			continue
		}
		ok, err := c.dispatch(&ev, sentID, synced)
		ev = Event{}
		if err != nil {
			if errors.Is(err, ErrGap) {
				c.lastID = ""
			}
			return synced, err
		}
		synced = synced || ok
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil && idleFired(idle) {
			return synced, fmt.Errorf("the stream was silent for %s", cfg.IdleTimeout)
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return synced, fmt.Errorf("the stream sent a line longer than Options.MaxEventBytes (%d)", cfg.MaxEventBytes)
		}
		return synced, fmt.Errorf("reading the stream: %w", err)
	}
	return synced, errors.New("the evaluator ended the stream")
}

// idleFired reports whether the watchdog t has run (Stop returns false then).
func idleFired(t *time.Timer) bool { return !t.Stop() }

// open sends the stream request, with a fresh token after a 401, and returns the
// 200 response.
func (c *conn) open(ctx context.Context) (*http.Response, error) {
	cfg := &c.l.cfg
	for refreshed := false; ; refreshed = true {
		if cfg.Token != nil && (c.token == "" || refreshed) {
			tok, err := cfg.Token(ctx)
			if err != nil {
				c.token = ""
				return nil, fmt.Errorf("getting a context token: %w", err)
			}
			c.token = tok
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
		if err != nil {
			return nil, &streamError{err: fmt.Errorf("building the stream request: %w", err), fatal: true}
		}
		req.Header.Set("Accept", "text/event-stream")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.lastID != "" {
			req.Header.Set("Last-Event-ID", c.lastID)
		}
		resp, err := cfg.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("connecting: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		err = responseError(resp)
		if resp.StatusCode == http.StatusUnauthorized && cfg.Token != nil && !refreshed {
			cfg.Log.Debug("The evaluator refused the context token; getting a new one", "error", err)
			continue
		}
		if resp.StatusCode == http.StatusUnauthorized {
			c.token = "" // ask again next time
		}
		return nil, err
	}
}

// responseError reads an error response of the evaluator ({"errorCode",
// "errorDetails"}) and closes its body.
func responseError(resp *http.Response) error {
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10)) // the status says enough without it
	var e struct {
		ErrorCode    string `json:"errorCode"`
		ErrorDetails string `json:"errorDetails"`
	}
	msg := string(bytes.TrimSpace(body))
	if json.Unmarshal(body, &e) == nil && e.ErrorCode != "" {
		msg = e.ErrorCode + ": " + e.ErrorDetails
	}
	se := &streamError{err: fmt.Errorf("the evaluator answered %s: %s", resp.Status, msg),
		fatal: resp.StatusCode == http.StatusBadRequest}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.retryAfter = time.Duration(s) * time.Second
	}
	return se
}

// idleReader resets the watchdog t on every read that returns data.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (r *idleReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}

// field adds one line of a block (RFC: "field: value", or a ":" comment).
func (ev *Event) field(line []byte) {
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "id":
		ev.ID, ev.HasID = string(value), true
	case "event":
		ev.Name = string(value)
	case "data":
		if ev.Data == nil {
			ev.Data = make([]byte, 0, len(value))
		} else {
			ev.Data = append(ev.Data, '\n')
		}
		ev.Data = append(ev.Data, value...)
	}
}

// dispatch applies one block. ok reports that the values are current: a snapshot,
// or the ID the link resumed from and nothing else (the evaluator says so when
// nothing changed meanwhile).
func (c *conn) dispatch(ev *Event, sentID string, synced bool) (ok bool, err error) {
	if ev.Name == "" && ev.Data == nil {
		// retry, or an ID alone: the values of sentID are current.
		if ev.HasID && sentID != "" && ev.ID == sentID && !synced {
			c.l.synced(nil)
			return true, nil
		}
		return false, nil
	}
	what, keys, err := c.l.h.Apply(ev, synced)
	if err != nil {
		return false, err
	}
	switch what {
	case Replaced:
		c.lastID = ev.ID
		c.l.synced(keys)
		return true, nil
	case Changed:
		c.lastID = ev.ID
		c.l.changed(keys)
	}
	return false, nil
}

// synced records that the values are current (after a snapshot, which changed keys,
// or an up-to-date resume).
func (l *Link) synced(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.status
	l.status = statusReady
	l.lastErr = nil
	l.stopGrace()
	if !l.initDone {
		if !l.initSignaled {
			l.initSignaled = true
			l.initResult <- nil
		}
		return
	}
	if was != statusReady {
		l.emit(openfeature.ProviderReady, "the flagops evaluator's stream is back; the values are current", nil, "")
	}
	if len(keys) > 0 {
		l.emit(openfeature.ProviderConfigChange, "flag values changed", keys, "")
	}
}

// changed reports the keys a change event changed.
func (l *Link) changed(keys []string) {
	if len(keys) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.initDone {
		l.emit(openfeature.ProviderConfigChange, "flag values changed", keys, "")
	}
}

// dropped records that the stream is down (or could not be opened): STALE when it
// was ready, and ERROR after the grace period.
func (l *Link) dropped(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
	if l.status != statusReady {
		return
	}
	l.cfg.Log.Info("The stream from the flagops evaluator dropped; serving the last values", "error", err)
	l.status = statusStale
	l.emit(openfeature.ProviderStale, "the stream from the flagops evaluator dropped: "+err.Error(), nil, "")
	l.grace = time.AfterFunc(l.cfg.GracePeriod, l.graceOver)
}

// graceOver turns STALE into ERROR.
func (l *Link) graceOver() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status != statusStale {
		return
	}
	l.status = statusError
	msg := fmt.Sprintf("no stream from the flagops evaluator for %s", l.cfg.GracePeriod)
	if l.lastErr != nil {
		msg += ": " + l.lastErr.Error()
	}
	l.cfg.Log.Warn("No stream from the flagops evaluator; serving the last values", "for", l.cfg.GracePeriod, "error", l.lastErr)
	l.emit(openfeature.ProviderError, msg, nil, openfeature.GeneralCode)
}

// failed records a fatal error: the link stops.
func (l *Link) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status = statusFatal
	l.lastErr = err
	l.stopGrace()
	l.cfg.Log.Error("The flagops evaluator refused the stream request; the provider stops", "error", err)
	if !l.initDone {
		if !l.initSignaled {
			l.initSignaled = true
			l.initResult <- &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode, Message: err.Error()}
		}
		return
	}
	l.emit(openfeature.ProviderError, err.Error(), nil, openfeature.ProviderFatalCode)
}

func (l *Link) stopGrace() {
	if l.grace != nil {
		l.grace.Stop()
		l.grace = nil
	}
}

// emit sends an event without blocking: the SDK reads events as they come, so the
// buffer only fills when nobody listens, and then events are dropped.
func (l *Link) emit(t openfeature.EventType, msg string, keys []string, code openfeature.ErrorCode) {
	ev := openfeature.Event{ProviderName: l.cfg.Name, EventType: t, ProviderEventDetails: openfeature.ProviderEventDetails{
		Message: msg, FlagChanges: keys, ErrorCode: code,
	}}
	select {
	case l.events <- ev:
	default:
		l.cfg.Log.Warn("Dropped a provider event: nobody reads the event channel", "event", t, "flags", keys)
	}
}

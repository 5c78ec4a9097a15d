package flagops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// Event names of the device stream.
const (
	eventSnapshot = "snapshot"
	eventChanged  = "device.feature-flags.changed"
)

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

// errGap ends a connection whose events the provider can no longer apply with
// certainty: it reconnects without Last-Event-ID and so refetches the snapshot.
var errGap = errors.New("lost track of the stream's values")

// conn is the state of the provider's connection loop, owned by its goroutine.
type conn struct {
	p       *Provider
	ctxJSON string
	token   string
	lastID  string
}

// run keeps the stream open until ctx ends: it connects, and after each drop
// reconnects at once, then with back-off.
func (p *Provider) run(ctx context.Context, ctxJSON string, done chan struct{}) {
	defer close(done)
	c := &conn{p: p, ctxJSON: ctxJSON}
	attempt := 0
	for {
		synced, err := c.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		var se *streamError
		if errors.As(err, &se) && se.fatal {
			p.failed(err)
			return
		}
		p.dropped(err)
		if synced {
			attempt = 0
		}
		delay := p.backoff(attempt)
		if se != nil {
			delay = max(delay, se.retryAfter)
		}
		attempt++
		p.log.Debug("Reconnecting to the flagops evaluator", "in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the delay before reconnection attempt n (0 for the first after a drop).
func (p *Provider) backoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	d := p.opts.MaxBackoff
	if shift := n - 1; shift < 30 && p.opts.MinBackoff<<shift < d {
		d = p.opts.MinBackoff << shift
	}
	return d/2 + rand.N(d/2+1)
}

// connect opens the stream and applies its events until it ends. synced reports
// whether the provider's values were current at some point on this connection.
func (c *conn) connect(ctx context.Context) (synced bool, err error) {
	p := c.p
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The watchdog ends a connection that stays silent, from the request on.
	idle := time.AfterFunc(p.opts.IdleTimeout, cancel)
	defer idle.Stop()

	resp, err := c.open(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }() // a read error is what counts
	sentID := c.lastID
	sc := bufio.NewScanner(&idleReader{r: resp.Body, t: idle, d: p.opts.IdleTimeout})
	// The larger of the capacity and the maximum bounds a line.
	sc.Buffer(make([]byte, 0, min(64<<10, p.opts.MaxEventBytes)), p.opts.MaxEventBytes)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 {
			ev.field(line)
			continue
		}
		ok, err := c.dispatch(&ev, sentID, synced)
		ev = sseEvent{}
		if err != nil {
			if errors.Is(err, errGap) {
				c.lastID = ""
			}
			return synced, err
		}
		synced = synced || ok
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil && idleFired(idle) {
			return synced, fmt.Errorf("the stream was silent for %s", p.opts.IdleTimeout)
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return synced, fmt.Errorf("the stream sent a line longer than Options.MaxEventBytes (%d)", p.opts.MaxEventBytes)
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
	p := c.p
	u := p.stream
	if c.ctxJSON != "" {
		u += "?" + url.Values{"context": {c.ctxJSON}}.Encode()
	}
	for refreshed := false; ; refreshed = true {
		if p.opts.Token != nil && (c.token == "" || refreshed) {
			tok, err := p.opts.Token(ctx)
			if err != nil {
				c.token = ""
				return nil, fmt.Errorf("getting a context token: %w", err)
			}
			c.token = tok
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
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
		resp, err := p.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("connecting: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		err = responseError(resp)
		if resp.StatusCode == http.StatusUnauthorized && p.opts.Token != nil && !refreshed {
			p.log.Debug("The evaluator refused the context token; getting a new one", "error", err)
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

// sseEvent is one block of the stream, as far as the provider reads it.
type sseEvent struct {
	id, event string
	hasID     bool
	data      []byte
}

// field adds one line of a block (RFC: "field: value", or a ":" comment).
func (ev *sseEvent) field(line []byte) {
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "id":
		ev.id, ev.hasID = string(value), true
	case "event":
		ev.event = string(value)
	case "data":
		if ev.data == nil {
			ev.data = make([]byte, 0, len(value))
		} else {
			ev.data = append(ev.data, '\n')
		}
		ev.data = append(ev.data, value...)
	}
}

// dispatch applies one block. ok reports that the values are current: a snapshot,
// or the ID the provider resumed from and nothing else (the evaluator says so when
// nothing changed meanwhile).
func (c *conn) dispatch(ev *sseEvent, sentID string, synced bool) (ok bool, err error) {
	p := c.p
	switch {
	case ev.event == "" && ev.data == nil:
		// retry, or an ID alone: the values of sentID are current.
		if ev.hasID && sentID != "" && ev.id == sentID && !synced {
			p.synced(nil)
			return true, nil
		}
		return false, nil
	case ev.event == eventSnapshot:
		var d struct {
			Flags map[string]wireFlag `json:"flags"`
		}
		if err := json.Unmarshal(ev.data, &d); err != nil {
			return false, fmt.Errorf("%w: snapshot: %w", errGap, err)
		}
		flags, err := decodeFlags(d.Flags, !p.opts.OmitFlagMetadata)
		if err != nil {
			return false, fmt.Errorf("%w: snapshot: %w", errGap, err)
		}
		old := p.vals.Swap(&values{flags: flags})
		c.lastID = ev.id
		var changes []string
		if old != nil {
			changes = diff(old.flags, flags)
		}
		p.synced(changes)
		return true, nil
	case ev.event == eventChanged:
		if !synced {
			return false, fmt.Errorf("%w: a change before the snapshot", errGap)
		}
		var d struct {
			Changed map[string]wireFlag `json:"changed"`
			Removed []string            `json:"removed"`
		}
		if err := json.Unmarshal(ev.data, &d); err != nil {
			return false, fmt.Errorf("%w: change: %w", errGap, err)
		}
		changed, err := decodeFlags(d.Changed, !p.opts.OmitFlagMetadata)
		if err != nil {
			return false, fmt.Errorf("%w: change: %w", errGap, err)
		}
		next, keys := p.vals.Load().withChanges(changed, d.Removed)
		p.vals.Store(next)
		c.lastID = ev.id
		p.changed(keys)
		return false, nil
	default:
		return false, nil // an event this provider does not know
	}
}

// synced records that the values are current (after a snapshot, which changed keys,
// or an up-to-date resume).
func (p *Provider) synced(keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.status
	p.status = statusReady
	p.lastErr = nil
	p.stopGrace()
	if !p.initDone {
		if !p.initSignaled {
			p.initSignaled = true
			p.initResult <- nil
		}
		return
	}
	if was != statusReady {
		p.emit(openfeature.ProviderReady, "the flagops evaluator's stream is back; the values are current", nil, "")
	}
	if len(keys) > 0 {
		p.emit(openfeature.ProviderConfigChange, "flag values changed", keys, "")
	}
}

// changed reports the keys a change event changed.
func (p *Provider) changed(keys []string) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.initDone {
		p.emit(openfeature.ProviderConfigChange, "flag values changed", keys, "")
	}
}

// dropped records that the stream is down (or could not be opened): STALE when it
// was ready, and ERROR after the grace period.
func (p *Provider) dropped(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if p.status != statusReady {
		return
	}
	p.log.Info("The stream from the flagops evaluator dropped; serving the last values", "error", err)
	p.status = statusStale
	p.emit(openfeature.ProviderStale, "the stream from the flagops evaluator dropped: "+err.Error(), nil, "")
	p.grace = time.AfterFunc(p.opts.GracePeriod, p.graceOver)
}

// graceOver turns STALE into ERROR.
func (p *Provider) graceOver() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != statusStale {
		return
	}
	p.status = statusError
	msg := fmt.Sprintf("no stream from the flagops evaluator for %s", p.opts.GracePeriod)
	if p.lastErr != nil {
		msg += ": " + p.lastErr.Error()
	}
	p.log.Warn("No stream from the flagops evaluator; serving the last values", "for", p.opts.GracePeriod, "error", p.lastErr)
	p.emit(openfeature.ProviderError, msg, nil, openfeature.GeneralCode)
}

// failed records a fatal error: the provider stops.
func (p *Provider) failed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = statusFatal
	p.lastErr = err
	p.stopGrace()
	p.log.Error("The flagops evaluator refused the stream request; the provider stops", "error", err)
	if !p.initDone {
		if !p.initSignaled {
			p.initSignaled = true
			p.initResult <- &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode, Message: err.Error()}
		}
		return
	}
	p.emit(openfeature.ProviderError, err.Error(), nil, openfeature.ProviderFatalCode)
}

func (p *Provider) stopGrace() {
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
}

// emit sends an event without blocking: the SDK reads events as they come, so the
// buffer only fills when nobody listens, and then events are dropped.
func (p *Provider) emit(t openfeature.EventType, msg string, keys []string, code openfeature.ErrorCode) {
	ev := openfeature.Event{ProviderName: ProviderName, EventType: t, ProviderEventDetails: openfeature.ProviderEventDetails{
		Message: msg, FlagChanges: keys, ErrorCode: code,
	}}
	select {
	case p.events <- ev:
	default:
		p.log.Warn("Dropped a provider event: nobody reads the event channel", "event", t, "flags", keys)
	}
}

/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// HTTPSink delivers records to an HTTP(S) receiver as CloudEvents (see NewEvent), through
// a spool on disk. Write returns once the record is fsynced in the spool; a background
// sender POSTs the spooled records in order, one event per request (structured mode) or
// in batches (Options.EventBatch), and removes them when the receiver answers 2xx. See the
// package documentation for the retry rules and the spool layout.
type HTTPSink struct {
	name     string
	endpoint string
	opts     Options
	client   *http.Client
	spool    *spool
	m        *metrics
	log      logr.Logger

	stop      chan struct{} // closed by Shutdown: deliver what can be delivered, then exit
	done      chan struct{} // closed when the sender has exited
	runCtx    context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// NewHTTP returns a sink that POSTs records to endpoint, an http or https URL. Its spool
// is the subdirectory "http-<hash>" of opts.SpoolDir, which must exist; the hash is of the
// endpoint without user information and query, so a sink created again for the same
// endpoint, in this process after Close or in the next one, resumes the same spool.
func NewHTTP(endpoint string, opts Options) (*HTTPSink, error) {
	u, err := parseHTTPURL(endpoint)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := CheckEventSource(opts.EventSource); err != nil {
		return nil, err
	}
	name := redactURL(u)
	fi, err := os.Stat(opts.SpoolDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("spool directory %q does not exist; create it or mount a volume there (--audit-spool-dir): %w", opts.SpoolDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("spool directory %q: %w", opts.SpoolDir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("spool directory %q is not a directory", opts.SpoolDir)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	m.init(name, ResultSpooled, ResultDelivered, ResultRetried, ResultRejected, ResultCorrupt, ResultSpoolFull, ResultFailed)
	log := opts.Logger.WithValues("sink", name)
	sp, err := openSpool(spoolConfig{
		dir:                filepath.Join(opts.SpoolDir, spoolDirName(name)),
		maxBytes:           opts.SpoolMaxBytes,
		maxRecords:         opts.SpoolMaxRecords,
		segmentBytes:       opts.SegmentBytes,
		deadLetterMaxBytes: opts.DeadLetterMaxBytes,
		maxFrame:           maxFrameBytes,
		clock:              opts.Clock,
		log:                log,
		onDepth:            func(n int) { m.setDepth(name, n) },
	})
	if err != nil {
		return nil, err
	}
	if err := writeEndpointFile(sp.path(endpointFileName), name); err != nil {
		_ = sp.close()
		return nil, err
	}
	client := &http.Client{Timeout: opts.HTTPTimeout}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	if client.CheckRedirect == nil {
		client.CheckRedirect = keepPOSTRedirects
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &HTTPSink{
		name:     name,
		endpoint: u.String(),
		opts:     opts,
		client:   client,
		spool:    sp,
		m:        m,
		log:      log,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		runCtx:   ctx,
		cancel:   cancel,
	}
	go h.run()
	return h, nil
}

// parseHTTPURL checks that s is an absolute http or https URL with a host.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q; use http or https", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// redactURL returns u without user information, query and fragment.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

func spoolDirName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "http-" + hex.EncodeToString(sum[:8])
}

// writeEndpointFile records, for operators, which endpoint a spool directory belongs to.
func writeEndpointFile(path, name string) error {
	want := name + "\n"
	if got, err := os.ReadFile(path); err == nil && string(got) == want {
		return nil
	}
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		return fmt.Errorf("write spool endpoint file: %w", err)
	}
	return nil
}

// keepPOSTRedirects follows 307 and 308 redirects, which repeat the POST with its body, and
// stops at the others, which would turn it into a GET and lose the batch.
func keepPOSTRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.Method != http.MethodPost {
		return http.ErrUseLastResponse
	}
	return nil
}

// Name returns the endpoint without user information and query.
func (h *HTTPSink) Name() string { return h.name }

// SpoolDir returns the directory of this sink's spool.
func (h *HTTPSink) SpoolDir() string { return h.spool.cfg.dir }

// Pending returns the number of records in the spool, waiting for delivery.
func (h *HTTPSink) Pending() int { return h.spool.pending() }

// Write appends r to the spool and returns once it is fsynced. It fails with an error
// wrapping ErrSpoolFull when the spool is full, and ErrClosed after Close.
func (h *HTTPSink) Write(ctx context.Context, r Record) error {
	err := ctx.Err()
	var payload []byte
	if err == nil {
		payload, err = r.encode()
	}
	if err == nil {
		err = h.spool.append(payload)
	}
	switch {
	case err == nil:
		h.m.add(h.name, ResultSpooled, 1)
		return nil
	case errors.Is(err, ErrSpoolFull):
		h.m.add(h.name, ResultSpoolFull, 1)
	default:
		h.m.add(h.name, ResultFailed, 1)
	}
	return sinkError(h.name, err)
}

// Close is Shutdown with Options.CloseTimeout.
func (h *HTTPSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CloseTimeout)
	defer cancel()
	return h.Shutdown(ctx)
}

// Shutdown refuses further writes, delivers spooled records until the spool is empty, a
// delivery fails or ctx is done (aborting a request in flight), and then stops the sender
// and releases the spool. Undelivered records stay in the spool for the next sink on it.
func (h *HTTPSink) Shutdown(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.spool.closeWrites()
		close(h.stop)
		select {
		case <-h.done:
		case <-ctx.Done():
			h.cancel()
			<-h.done
		}
		h.cancel()
		if n := h.spool.pending(); n > 0 {
			h.log.Info("Audit sink stopped with records still spooled; the next sink on the spool delivers them",
				"records", n, "spoolDir", h.spool.cfg.dir)
		}
		if err := h.spool.close(); err != nil {
			h.closeErr = sinkError(h.name, err)
		}
	})
	return h.closeErr
}

type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeRetry
	outcomeRejected
)

type sendResult struct {
	outcome    outcome
	status     int
	retryAfter time.Duration // set when the receiver sent a valid Retry-After
	hasRetry   bool
	err        error
}

// run is the sender: it delivers the spool in order until Shutdown.
func (h *HTTPSink) run() {
	defer close(h.done)
	var (
		attempt   int  // consecutive failures
		draining  bool // Shutdown was called: no more waiting
		limit     = h.opts.BatchMaxRecords
		splitLeft int // records left of a rejected batch that is being split up
	)
	// fail handles a failure that is retried: it waits for the backoff and reports whether
	// the sender goes on.
	fail := func(err error, n int, res *sendResult) bool {
		select {
		case <-h.stop:
			draining = true
		default:
		}
		if draining {
			return false
		}
		attempt++
		delay := h.opts.Backoff.Delay(attempt)
		if res != nil && res.hasRetry {
			delay = max(delay, min(res.retryAfter, h.opts.MaxRetryAfter))
		}
		h.log.Error(err, "Audit delivery failed; retrying", "records", n, "attempt", attempt, "retryIn", delay.String())
		select {
		case <-h.opts.Clock.After(delay):
		case <-h.stop:
			draining = true
		case <-h.runCtx.Done():
		}
		return true
	}
	for {
		if h.runCtx.Err() != nil {
			return
		}
		if !draining {
			select {
			case <-h.stop:
				draining = true
			default:
			}
		}
		n := limit
		if splitLeft > 0 {
			n = min(n, splitLeft)
		}
		b, err := h.spool.peek(n, h.opts.BatchMaxBytes)
		if err != nil {
			if !fail(fmt.Errorf("read spool: %w", err), 0, nil) {
				return
			}
			continue
		}
		if b.empty() {
			if draining {
				return
			}
			select {
			case <-h.spool.notify:
			case <-h.stop:
				draining = true
			case <-h.runCtx.Done():
			}
			continue
		}
		if b.corrupt != nil {
			entry := deadLetterEntry{
				Reason:  "corrupt spool frame: " + b.corrupt.err.Error(),
				Raw:     string(b.corrupt.raw),
				Segment: segmentName(b.seg),
				Offset:  b.corrupt.off,
			}
			if err := h.spool.deadLetter([]deadLetterEntry{entry}); err != nil {
				if !fail(err, 1, nil) {
					return
				}
				continue
			}
			h.log.Error(b.corrupt.err, "Moved a corrupt audit spool record to the dead-letter file",
				"segment", segmentName(b.seg), "offset", b.corrupt.off)
			h.m.add(h.name, ResultCorrupt, 1)
			h.ackOrLog(b)
			continue
		}
		b, res := h.deliver(b)
		switch res.outcome {
		case outcomeDelivered:
			attempt = 0
			h.m.add(h.name, ResultDelivered, len(b.payloads))
			h.ackOrLog(b)
			if splitLeft > 0 {
				splitLeft -= len(b.payloads)
				limit = min(limit*2, h.opts.BatchMaxRecords)
				if splitLeft <= 0 {
					splitLeft, limit = 0, h.opts.BatchMaxRecords
				}
			}
		case outcomeRejected:
			attempt = 0
			if len(b.payloads) > 1 {
				// Split the batch to find the records the receiver rejects, so that only
				// they go to the dead-letter file.
				if splitLeft == 0 {
					splitLeft = len(b.payloads)
				}
				limit = (len(b.payloads) + 1) / 2
				continue
			}
			entry := deadLetterEntry{Reason: res.err.Error(), Status: res.status, Record: b.payloads[0]}
			if err := h.spool.deadLetter([]deadLetterEntry{entry}); err != nil {
				if !fail(err, 1, nil) {
					return
				}
				continue
			}
			h.log.Error(res.err, "Audit receiver rejected a record; moved it to the dead-letter file",
				"status", res.status, "deadLetterFile", h.spool.path(deadLetterFileName))
			h.m.add(h.name, ResultRejected, 1)
			h.ackOrLog(b)
			if splitLeft > 0 {
				if splitLeft--; splitLeft == 0 {
					limit = h.opts.BatchMaxRecords
				}
			}
		case outcomeRetry:
			h.m.add(h.name, ResultRetried, len(b.payloads))
			if !fail(res.err, len(b.payloads), &res) {
				return
			}
		}
	}
}

func (h *HTTPSink) ackOrLog(b batch) {
	if err := h.spool.ack(b); err != nil {
		h.log.Error(err, "Could not persist the audit spool position; these records may be delivered again after a restart",
			"records", b.count())
	}
}

// deliver sends the batch and returns the part of it that res is about. In batch mode
// that is the whole batch, in one request. In structured mode the records go one per
// request, in order; if one is not delivered, the records before it are acknowledged and
// that record alone is returned with its result. Either way the spool cursor moves once
// per batch when all goes well, which spares an fsync per record; a crash before it moves
// resends the batch, with the same ids.
func (h *HTTPSink) deliver(b batch) (batch, sendResult) {
	if h.opts.EventBatch {
		return b, h.send(b)
	}
	for i := range b.payloads {
		one := b.sub(i, i+1)
		res := h.send(one)
		if res.outcome == outcomeDelivered {
			continue
		}
		if i > 0 {
			h.m.add(h.name, ResultDelivered, i)
			h.ackOrLog(b.sub(0, i))
		}
		return one, res
	}
	return b, sendResult{outcome: outcomeDelivered}
}

// send POSTs the batch as CloudEvents and classifies the answer. A record that cannot be
// made into an event is rejected without a request, so that it goes to the dead-letter file.
func (h *HTTPSink) send(b batch) sendResult {
	body, contentType, err := encodeEvents(b.payloads, h.opts.EventSource, h.opts.EventBatch)
	if err != nil {
		return sendResult{outcome: outcomeRejected, err: fmt.Errorf("make cloudevents of %d records: %w", len(b.payloads), err)}
	}
	req, err := http.NewRequestWithContext(h.runCtx, http.MethodPost, h.endpoint, bytes.NewReader(body))
	if err != nil {
		return sendResult{outcome: outcomeRetry, err: fmt.Errorf("build request: %w", err)}
	}
	for k, vs := range h.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", contentType)
	if h.opts.BearerTokenFile != "" {
		tok, err := os.ReadFile(h.opts.BearerTokenFile)
		if err != nil {
			return sendResult{outcome: outcomeRetry, err: fmt.Errorf("read bearer token: %w", err)}
		}
		t := strings.TrimSpace(string(tok))
		if t == "" {
			return sendResult{outcome: outcomeRetry, err: fmt.Errorf("bearer token file %q is empty", h.opts.BearerTokenFile)}
		}
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return sendResult{outcome: outcomeRetry, err: fmt.Errorf("post %d records: %w", len(b.payloads), err)}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return sendResult{outcome: outcomeDelivered, status: code}
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err = fmt.Errorf("receiver answered %q to %d records: %s", resp.Status, len(b.payloads), bytes.TrimSpace(snippet))
	if permanentStatus(code) {
		return sendResult{outcome: outcomeRejected, status: code, err: err}
	}
	res := sendResult{outcome: outcomeRetry, status: code, err: err}
	res.retryAfter, res.hasRetry = parseRetryAfter(resp.Header.Get("Retry-After"), h.opts.Clock.Now())
	return res
}

// permanentStatus reports whether a status means that the batch itself is refused, so that
// sending it again cannot succeed: a 4xx other than 408 (timeout), 429 (rate limit), 401
// and 403 (credentials, which an operator fixes; the records must not be thrown out
// meanwhile). Everything else that is not 2xx is retried.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden:
		return false
	}
	return code >= 400 && code < 500
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

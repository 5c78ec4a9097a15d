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
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives audit records.
type Sink interface {
	// Write records r. It returns nil only once r is as durable as the sink makes it: written
	// to the stream, fsynced to the file, or fsynced to the spool. On error the caller
	// should retry later (a controller requeues), unless the error wraps ErrInvalidRecord
	// or ErrRecordTooLarge. Write is safe for concurrent use.
	Write(ctx context.Context, r Record) error
	// Close stops the sink, flushing what it can. Writes after Close fail with ErrClosed.
	Close() error
	// Name identifies the sink in errors, logs and metrics; it never contains credentials.
	Name() string
}

var (
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("audit sink is closed")
	// ErrSpoolFull is wrapped by the error that an HTTP sink's Write returns when its spool
	// holds the maximum number of records or bytes. Nothing is lost: the record was not
	// accepted, and the caller should retry it later.
	ErrSpoolFull = errors.New("audit spool is full")
	// ErrRecordTooLarge is wrapped by the error that an HTTP sink's Write returns for a
	// record whose encoding exceeds MaxRecordBytes. Retrying it cannot succeed.
	ErrRecordTooLarge = errors.New("audit record is too large")
)

// MaxRecordBytes is the largest encoded record, in bytes, that an HTTP sink accepts.
const MaxRecordBytes = 8 << 20

// Defaults for Options.
const (
	DefaultSpoolDir           = "/var/lib/flagops/audit-spool"
	DefaultSpoolMaxBytes      = 128 << 20
	DefaultSpoolMaxRecords    = 100_000
	DefaultSegmentBytes       = 4 << 20
	DefaultBatchMaxRecords    = 500
	DefaultBatchMaxBytes      = 1 << 20
	DefaultDeadLetterMaxBytes = 32 << 20
	DefaultHTTPTimeout        = 30 * time.Second
	DefaultMaxRetryAfter      = 10 * time.Minute
	DefaultCloseTimeout       = 10 * time.Second
	DefaultDedupWindow        = 4096
	DefaultBackoffInitial     = time.Second
	DefaultBackoffMax         = time.Minute
)

// Options configure the sinks that Parse and ParseAll create. The zero value is usable:
// every zero field takes its default.
type Options struct {
	// Stdout is where the stdout sink writes. Default os.Stdout.
	Stdout io.Writer

	// SpoolDir is the root of the HTTP sinks' spools (--audit-spool-dir). It must exist;
	// each HTTP sink keeps its spool in a subdirectory. Default DefaultSpoolDir.
	SpoolDir string
	// SpoolMaxBytes and SpoolMaxRecords bound the records waiting in one HTTP sink's spool.
	// When either would be exceeded, Write fails with ErrSpoolFull.
	SpoolMaxBytes   int64
	SpoolMaxRecords int
	// SegmentBytes is the size at which a spool starts a new segment file.
	SegmentBytes int64
	// DeadLetterMaxBytes is the size at which the dead-letter file is rotated to
	// dead-letter.ndjson.1, replacing the previous one.
	DeadLetterMaxBytes int64

	// EventSource starts the CloudEvents source attribute of the HTTP sinks' events, which
	// is EventSource/<namespace> (--audit-event-source). Default DefaultEventSource.
	EventSource string
	// EventBatch makes the HTTP sinks send batches of events, as a JSON array with
	// Content-Type application/cloudevents-batch+json (--audit-cloudevents-batch). By
	// default each request carries one event in structured mode.
	EventBatch bool
	// BatchMaxRecords and BatchMaxBytes bound a batch: the records read from the spool
	// together, sent in one request in batch mode (EventBatch) or one request per record
	// in structured mode, and acknowledged together. BatchMaxBytes counts the records, not
	// the event attributes around them. A batch always holds at least one record.
	BatchMaxRecords int
	BatchMaxBytes   int
	// HTTPClient sends the batches. Default: a client with HTTPTimeout. Redirects that
	// would turn the POST into a GET (301, 302, 303) are never followed.
	HTTPClient *http.Client
	// HTTPTimeout is the timeout of one request with the default client.
	HTTPTimeout time.Duration
	// Header is added to every request, e.g. an API key.
	Header http.Header
	// BearerTokenFile, if set, is read before every request and its trimmed content sent as
	// "Authorization: Bearer <token>", so that rotated tokens are picked up.
	BearerTokenFile string
	// Backoff gives the wait before retrying a failed delivery. Default: ExponentialBackoff
	// from DefaultBackoffInitial to DefaultBackoffMax with jitter.
	Backoff Backoff
	// MaxRetryAfter caps the wait that a receiver can ask for with Retry-After.
	MaxRetryAfter time.Duration
	// Clock is the time source of the sender's waits. Default: the system clock.
	Clock Clock
	// CloseTimeout bounds how long Close keeps delivering spooled records.
	CloseTimeout time.Duration

	// DedupWindow is the number of recent record IDs that ParseAll's sinks remember to drop
	// duplicates (see Dedup). Zero means DefaultDedupWindow; negative disables it.
	DedupWindow int

	// Registerer receives the metrics, once. Nil means the metrics are not registered.
	Registerer prometheus.Registerer
	// Logger logs delivery problems of HTTP sinks. Default: discard.
	Logger logr.Logger
}

func (o Options) withDefaults() Options {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.SpoolDir == "" {
		o.SpoolDir = DefaultSpoolDir
	}
	if o.EventSource == "" {
		o.EventSource = DefaultEventSource
	}
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if o.SpoolMaxRecords <= 0 {
		o.SpoolMaxRecords = DefaultSpoolMaxRecords
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.DeadLetterMaxBytes <= 0 {
		o.DeadLetterMaxBytes = DefaultDeadLetterMaxBytes
	}
	if o.BatchMaxRecords <= 0 {
		o.BatchMaxRecords = DefaultBatchMaxRecords
	}
	if o.BatchMaxBytes <= 0 {
		o.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if o.HTTPTimeout <= 0 {
		o.HTTPTimeout = DefaultHTTPTimeout
	}
	if o.Backoff == nil {
		o.Backoff = ExponentialBackoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax}
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

// Clock is the time source of the HTTP sender. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff gives the wait before retry number attempt (1 for the first retry).
type Backoff interface {
	Delay(attempt int) time.Duration
}

// BackoffFunc adapts a function to Backoff.
type BackoffFunc func(attempt int) time.Duration

// Delay calls f.
func (f BackoffFunc) Delay(attempt int) time.Duration { return f(attempt) }

// ExponentialBackoff doubles the wait from Initial up to Max and then randomises it
// ("equal jitter"): the wait is uniform in [d/2, d], so that many senders do not retry in
// step.
type ExponentialBackoff struct {
	Initial, Max time.Duration
	// Rand returns a number in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64
}

// Delay returns the wait before retry number attempt.
func (b ExponentialBackoff) Delay(attempt int) time.Duration {
	initial, maxDelay := b.Initial, b.Max
	if initial <= 0 {
		initial = DefaultBackoffInitial
	}
	if maxDelay < initial {
		maxDelay = initial
	}
	d := initial
	for i := 1; i < attempt && d < maxDelay; i++ {
		if d > maxDelay/2 {
			d = maxDelay // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

// Multi returns a sink that writes every record to each of sinks, in order. Write returns
// the errors of the sinks that failed, joined; the others have the record, so wrap each
// sink in Dedup to make a retry write only where it failed (ParseAll does). Close closes
// every sink. Nil sinks are ignored; with no sinks, Write fails rather than drop records.
func Multi(sinks ...Sink) Sink {
	m := &multiSink{}
	for _, s := range sinks {
		if s != nil {
			m.sinks = append(m.sinks, s)
		}
	}
	return m
}

type multiSink struct {
	sinks []Sink
}

func (m *multiSink) Write(ctx context.Context, r Record) error {
	if len(m.sinks) == 0 {
		return errors.New("audit: no sinks configured")
	}
	var errs []error
	for _, s := range m.sinks {
		if err := s.Write(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *multiSink) Close() error {
	var errs []error
	for _, s := range m.sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *multiSink) Name() string {
	names := make([]string, len(m.sinks))
	for i, s := range m.sinks {
		names[i] = s.Name()
	}
	return "multi(" + strings.Join(names, ", ") + ")"
}

// sinkError wraps err with the sink's name.
func sinkError(name string, err error) error {
	return fmt.Errorf("audit sink %q: %w", name, err)
}

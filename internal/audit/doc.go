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

/*
Package audit writes the flagops audit trail: one record for every state of a
FeatureFlag, UserFlagOverride or DeviceFlagOverride that the controllers reconcile,
whether changed through the Kubernetes API or automatically (an override expiring, a
schedule step taking effect). Edits that land before a reconcile are recorded together
(docs/audit.md). Controllers
build records, usually with NewRecord, and write them to a Sink; this package encodes,
stores and delivers them.

# Record format

A record is one line of compact JSON (map keys sorted, no HTML escaping):

	{"id":"5f0c…","time":"2026-03-01T12:00:00.123456789Z","action":"user_override.updated",
	 "actor":{"username":"alice@example.com","groups":["platform"],"verified":true},
	 "object":{"kind":"UserFlagOverride","namespace":"billing","name":"pilot-user-42",
	           "uid":"6d1c…","generation":3,"resourceVersion":"48213"},
	 "subject":{"userId":"user-42"},
	 "changedKeys":["beta.new-dashboard"],
	 "before":{"beta.new-dashboard":null},
	 "after":{"beta.new-dashboard":{"enabled":true}}}

(shown wrapped here; it is one line). The fields:

  - id: 32 hex digits, deterministic (NewID): SHA-256 over the object UID, generation,
    action and a discriminator. A record written twice has the same id, so consumers can
    drop duplicates.
  - time: when the change took effect, UTC, RFC 3339 with exactly nine fractional digits
    (TimeLayout).
  - action: one of the Action constants: flag.created, flag.updated, flag.deleted,
    flag.schedule_applied, user_override.{created,updated,deleted,expired} and
    device_override.{created,updated,deleted,expired}.
  - actor: the Kubernetes user who made the change, or the manager's own identity for
    automatic changes. groups is always a list. verified is true when the admission
    webhook's signed stamp verified for the recorded object version (or the manager made
    the change itself); when false, username is only a hint (a field manager) and claimed,
    if present, is the unverified name the object's annotation gave.
  - object: the changed object; kind is FeatureFlag, UserFlagOverride or
    DeviceFlagOverride and must match the action.
  - subject: {"userId": …} for user overrides, {"deviceId": …} for device overrides;
    absent for flags.
  - request: {"route","sourceIP","userAgent"}, each present only when known, for a change
    made through flagops' console: the console's route, and the browser's IP address and
    User-Agent as the console saw them. The console writes as the signed-in user through
    impersonation, adding the user-info extras ExtraRoute, ExtraSourceIP and
    ExtraUserAgent; the admission webhook reads them (RequestFromExtra), and its signed
    stamp covers them with the actor, so request is present only with a verified actor.
    The object is absent for writes made with kubectl, the kubectl plugin (which runs on
    the user's machine with the user's own credentials and cannot set these extras), a
    GitOps tool or any other Kubernetes client: the API server does not pass a client's IP
    address or route to the manager, so there is nothing trustworthy to record. A
    coalesced record has none either.
  - changedKeys: the sorted keys whose value changed. For overrides the keys are the flag
    keys of the entries; for flags they are spec field names such as enabled, value or
    rollout.percentage.
  - before, after: the JSON value of each changed key on each side; a key that does not
    exist on a side (created or deleted) is null there. Diff computes changedKeys, before
    and after from the full values, comparing them as JSON.

Record.Validate checks all of this, and every sink refuses an invalid record with an
error wrapping ErrInvalidRecord.

# Sinks

Parse and ParseAll turn --audit-sink values into sinks:

  - stdout (the default): one line per record on standard output, writes serialised.
  - file:PATH: one line per record appended to PATH and fsynced before Write returns. The
    file is created with mode 0600; its directory must exist. If the file is renamed or
    removed (rotation), the next record creates it again.
  - http://URL, https://URL: records are appended to a spool on disk and a background
    sender POSTs them as CloudEvents 1.0 (see NewEvent for the attributes; data is the
    record line). By default each request holds one event in structured mode (Content-Type
    application/cloudevents+json); with Options.EventBatch (--audit-cloudevents-batch) a
    request holds a batch of events as a JSON array (Content-Type
    application/cloudevents-batch+json). The spool holds record lines, not events, so a
    spool left by an earlier version is delivered as events.

ParseAll wraps each sink in Dedup, which drops a record whose id the sink accepted within
its last Options.DedupWindow records, and combines several sinks with Multi, which writes
to every sink and joins their errors. Memory is a sink for tests.

# Durability and delivery

A Write that returns nil has made the record as durable as the sink can: written to the
stream (stdout), fsynced to the file (file:), or fsynced to the spool (http). A Write that
fails has not taken the record, except in rare I/O failure cases (a failed fsync) where it
may have; the caller retries, and a retried record has the same id. A caller that retries
after an error therefore never loses a record, and duplicates are recognisable.

The HTTP sender delivers the spool in order, one batch (up to Options.BatchMaxRecords
records) at a time, and removes a batch from the spool only after a 2xx answer for all of
it, so delivery is at least once: a crash between the answer and the removal resends that
batch, with the same event ids. In batch mode a batch is one request; in structured mode it
is one request per record, in order, and when one of them fails the records before it are
removed and the sender goes on from the failed one. Failed deliveries are retried with exponential
backoff and jitter (Options.Backoff), at least as long as a Retry-After header asks for (up
to Options.MaxRetryAfter), after network errors and any answer other than 2xx and the
permanent ones. Permanent answers are the 4xx statuses except 408, 429, 401 and 403 (bad
credentials are fixed by an operator, and the records must wait for that rather than be
thrown out). A permanently refused batch is split in halves until the refused records are
found; each refused record is appended to the dead-letter file and the queue moves on. A
spooled record that cannot be made into an event (it does not decode as a record) is
dead-lettered the same way, without a request. Redirects are followed only if they keep
the POST (307, 308).

When a spool holds Options.SpoolMaxRecords records or Options.SpoolMaxBytes bytes waiting
for delivery, Write fails with an error wrapping ErrSpoolFull: the record is not taken and
nothing spooled is lost; the caller requeues it. Close (or Shutdown with a context) refuses
new records, keeps delivering until the spool is empty, a delivery fails or the timeout
expires, and releases the spool; what was not delivered is delivered by the next sink
opened on the same spool, in the same order, for example after a restart of the manager.

# Spool layout

Each HTTP sink has its own directory under Options.SpoolDir (--audit-spool-dir), which must
exist (a volume, so that records survive a restart of the pod): http-<16 hex digits of the
SHA-256 of the endpoint without user information and query>. It holds:

  - LOCK: locked with flock by the sink that owns the directory; a second sink on the same
    directory, in this process or another, is refused.
  - endpoint: the endpoint (without credentials), for operators.
  - 00000000000000000001.seg, …: segment files, in order. Each line is one record frame:
    the CRC-32C of the record JSON as 8 hex digits, a space, the record JSON, a line feed.
    Records are appended to the last segment; a new segment starts when one would exceed
    Options.SegmentBytes, and when a sink opens the spool.
  - cursor: {"version":1,"segment":N,"offset":M}, the position of the first record not yet
    delivered, replaced atomically (written to cursor.tmp, fsynced, renamed) after every
    batch. Segments before the cursor are deleted.
  - dead-letter.ndjson: one JSON object per line for each record the receiver refused
    permanently ({"time","reason","status","record"}) or each frame that could not be read
    back ({"time","reason","raw","segment","offset"}). At Options.DeadLetterMaxBytes it is
    renamed to dead-letter.ndjson.1, replacing the previous one.

When a sink opens a spool it recovers: a final line without a line feed (a write that was
interrupted and never acknowledged) is ignored, a frame whose checksum or JSON is wrong is
moved to the dead-letter file when its turn comes, and an unreadable cursor makes the whole
spool be sent again (duplicates rather than loss). Disk use is bounded by SpoolMaxBytes plus
about one segment, plus the dead-letter files.

# Metrics

Sinks register with Options.Registerer (once; collectors already registered there are
reused):

  - flagops_audit_records_total{sink, result}: records by result: written (stdout, file),
    spooled, delivered, retried (per record and attempt), rejected, corrupt, spool_full,
    failed, and duplicate (dropped by Dedup).
  - flagops_audit_spool_depth{sink}: records waiting in an HTTP sink's spool.

The sink label is Sink.Name: "stdout", "file:PATH", or the endpoint without credentials.
*/
package audit

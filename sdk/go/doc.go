// Package flagops is an OpenFeature provider for flagops
// (github.com/open-feature/go-sdk). It is a module of its own,
// github.com/flagops/flagops/sdk/go, that depends on the OpenFeature SDK and the
// standard library only, so an application that uses it does not pull in Kubernetes.
//
// A Provider holds the effective values of one evaluation context in memory: the
// values the evaluator decided for that user or device, overrides included. They come
// from the evaluator's device stream (GET /v1/stream): a snapshot first, then an event
// for each change. Evaluations read memory only and never touch the network.
//
// # Connection
//
// The provider keeps one stream open. When it drops, the provider reconnects at once,
// then with jittered exponential back-off (Options.MinBackoff to Options.MaxBackoff,
// and at least the Retry-After of a 503). Reconnecting, it sends the ID of the last
// event it applied as Last-Event-ID: the evaluator then answers with that ID alone when
// the values are still current, or with a fresh snapshot when anything changed while
// the provider was away, on this replica or another. When the provider can no longer
// be sure of what it holds (an event it cannot decode, a change before any snapshot),
// it reconnects without an ID and so refetches the whole snapshot. A stream that sends
// nothing, not even the evaluator's heartbeat, for Options.IdleTimeout is dropped.
//
// With context tokens (Options.Token) the provider sends the token as
// "Authorization: Bearer"; it asks for a new one after a 401 and retries once at once.
// The evaluator then takes the evaluation context from the token.
//
// # Events and states
//
//   - PROVIDER_READY: Init returns once the first snapshot is in memory (the SDK then
//     emits READY); after a STALE or ERROR, the provider emits READY as soon as its
//     values are current again.
//   - PROVIDER_CONFIGURATION_CHANGED: FlagChanges lists exactly the keys whose result
//     changed for the provider's context (value, variant, reason, source or error, or
//     the flag appeared or went away), sorted. Changes that do not reach the context
//     (another user's override, a rule it does not match) raise nothing.
//   - PROVIDER_STALE: the stream dropped. Evaluations keep serving the last values.
//   - PROVIDER_ERROR: the stream stayed down for Options.GracePeriod; evaluations still
//     serve the last values. With ErrorCode PROVIDER_FATAL when the evaluator refused
//     the request as malformed (400): the provider stops.
//
// # Evaluation
//
// Results carry the evaluator's value and variant, the reason its OFREP API gives
// (STATIC, TARGETING_MATCH, SPLIT, DISABLED, ERROR; DISABLED exactly when there is no
// value, as docs/ofrep.md explains), and FlagMetadata "source" (the step that decided,
// for example user-override:shop/beta-testers), "enabled" (whether the on path was
// taken) and, for a result an override decided, "overrideReason" and
// "overrideExpiresAt" (RFC 3339) when the override has them; the metadata map is
// read-only and shared between flags (the OpenFeature client hands out copies). A flag the evaluator gives no value for this context (switched off without
// an off value) returns the caller's default with reason DISABLED. An unknown key returns the default with
// FLAG_NOT_FOUND, a value of another type TYPE_MISMATCH. Integer evaluation accepts
// whole numbers only; object evaluation accepts JSON objects and returns a copy.
//
// The provider serves one context. An evaluation whose context names another user
// (userId, else targetingKey) than the provider's gets the default with
// INVALID_CONTEXT rather than another user's values.
package flagops

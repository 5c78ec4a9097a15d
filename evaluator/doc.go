// Package evaluator is the pure evaluation core of flagops: it compiles flag
// specs, stores flags and overrides per namespace in immutable snapshots and
// resolves flags for an evaluation context. It has no Kubernetes
// dependencies; adapters copy CRD fields into FlagSpec and Override.
//
// # Model
//
// Compile parses a FlagSpec once (values, JSON Schema, regular expressions,
// numbers, semantic versions, source strings) into a *Flag, so evaluation
// never parses JSON or compiles a pattern. Every explicit value (value,
// offValue, rule values, schedule values) must have the flag's type and
// satisfy its schema; override values are checked the same way when they are
// stored and again whenever their flag's type, schema or existence changes.
//
// Flags and overrides are scoped by namespace: an override only applies to
// flags of its own namespace. Override objects are identified by kind (user
// or device), namespace and name, so a user and a device override may share
// a name. A Namespace handle, taken from a Store or a
// Snapshot, evaluates against one namespace of one snapshot.
//
// # Resolution order
//
// Evaluate resolves a flag with the first step that applies:
//
//  1. Unknown flag: reason ERROR, FLAG_NOT_FOUND (a stored flag that failed
//     to compile: PARSE_ERROR). The caller's default applies.
//  2. Role gate: allowedRoles is set and the context role is not in it: off
//     value, reason DISABLED, source role-gate. Overrides do not apply and
//     EvaluateAll leaves the flag out. A context without a role has the role
//     guest (RoleGuest) here.
//  3. Device override for (deviceId, key): the context has a deviceId, the
//     context's deviceClass is eligible for the flag (default classes
//     phone, tablet, laptop) and an applicable entry exists.
//  4. User override for (userId, key); userId falls back to targetingKey.
//     A device context (one with a deviceId or a deviceClass) gets user
//     overrides only when its deviceClass is eligible for the flag: values
//     of the user tier apply only to flag-eligible devices, so a charger,
//     or a device that does not say its class, gets neither override tier.
//     A context with neither deviceId nor deviceClass (a server-side
//     evaluation for a user) gets user overrides.
//  5. User allow-list, then 6. org allow-list: on value, TARGETING_MATCH.
//  7. Kill switch: enabled false: off value, reason DISABLED.
//  8. Rules, in order: the first rule whose conditions all match serves its
//     value (or the on value), TARGETING_MATCH, source rule:<name>. A
//     missing attribute matches no operator (not even NotIn); an attribute
//     of an unsupported type yields INVALID_CONTEXT.
//  9. Rollout: the principal (bucketBy attribute, default userId else orgId)
//     is hashed: bucket = big-endian uint64 of sha256(key+"/"+principal)[:8]
//     mod 100; bucket < percentage serves the on value, otherwise (and
//     without a principal) the off value. Reason SPLIT.
//  10. Otherwise the on value, reason STATIC, source default.
//
// An override entry applies when it is valid, its object is enabled and
// now < expiresAt. Expiry is exact: evaluation compares expiresAt with the
// clock, so an override stops applying at that instant, before any Tick.
// When several override objects have an entry for the same (subject, key),
// the applicable entry with the oldest CreatedAt wins, then the lower
// namespace/name; Snapshot.Conflicts and Snapshot.OverrideStatus report the
// losers. Invalid entries are never served: evaluation falls through to the
// next candidate or step, and OverrideStatus reports them (key and message,
// "unknown flag" when the flag does not exist).
//
// Entry semantics: enabled false serves the off value (variant off); else a
// value is served as is (variant override); else the on value (variant on).
// All overrides report reason TARGETING_MATCH and source
// user-override:<ns>/<name> or device-override:<ns>/<name>.
//
// # Schedule
//
// A schedule step changes enabled, the rollout percentage and the on value
// from its instant on, inclusively: the latest step at or before now wins
// per setting, and settings accumulate over steps in time order. The source
// is schedule:<at> (RFC 3339, UTC, nanoseconds when non-zero) when a step
// set what decided the result, by this rule:
//
//   - kill switch: the step that last set enabled=false;
//   - rollout: the latest of the step that set the percentage and, when the
//     on value is served, the step that set the value;
//   - default (STATIC): the latest of the step that set enabled and the step
//     that set the value.
//
// Otherwise the resolution step's own source (kill-switch, rollout, default)
// is used.
// Overrides, allow-lists and rules always report their own source, even
// when they serve a scheduled on value.
//
// # Values, variants and results
//
// Results are returned by value with pre-boxed values and precomputed source
// strings. Evaluation does not allocate, except to parse a context attribute
// as a semantic version (SemVerAtLeast), to render a numeric attribute as
// text (StartsWith, EndsWith, Matches), and for error messages. Value is nil (no value: the flag is off and has no off value),
// bool, string, float64 or map[string]any; it is shared and read-only. For
// Boolean flags Enabled equals the value; for other types it says whether
// the on path was taken. Variants: "on", "off", "override", or the rule name.
//
// # Concurrency and change sets
//
// A Store publishes immutable snapshots through an atomic pointer: readers
// load it and never lock. Writers (Apply, Tick) are serialised; each write
// copies only what it touches: the flag map of a namespace whose flags
// change, and for an override the shard of its object and the shard and
// entry of its subject (4096 shards per index in a three-level directory, so
// a write copies three small arrays and a shard of about n/4096 overrides,
// never the whole store). It then publishes a new snapshot with the next
// revision and a ChangeSet.
//
// One part is shared instead of copied: a namespace's filter of the (subject,
// flag) pairs that have override entries, which a one-flag evaluation asks
// before it looks the principal up. A write sets the bits of its new pairs
// in place, atomically, before it publishes; bits are never cleared, so an
// older snapshot only sees more false positives, and a rebuild (when the
// filter outgrows its design load of 8 bits a pair) makes a new filter.
//
// Namespace.FlagOverrides lists the entries naming one flag key by reading
// every override object of the namespace: there is no index by flag key,
// which would cost every write (docs/benchmarks.md).
//
// A change set lists every flag key upserted or deleted, every flag whose
// schedule state changed, and exactly the (subject, key) pairs whose
// effective override changed between the previous revision (as of its time)
// and the new one (as of now): added, removed or edited entries, winner
// changes between conflicting objects, entries that became valid or invalid
// through a flag change, and overrides that expired. Pairs whose outcome did
// not change (for example an edit of an entry that loses a conflict, or the
// deletion of an already expired override) are not listed. Every write also
// covers the expiries and schedule steps since the previous write, so the
// change sets of consecutive revisions add up to every observable change;
// NextDeadline tells a timer when to call Tick.
//
// # Following changes
//
// Store.Changes returns the retained change sets (WithChangeHistory,
// WithMaxRetainedChanges) after a revision. A follower that waits for
// changes registers its topics with Store.Follow: a namespace's flags
// (FlagsTopic), or one user's or device's overrides (SubjectTopic). Each Follower.ChangesFor read returns,
// from one critical section of the feed, the current snapshot, the flag
// keys its topics had touched since the given revision, and a channel that
// the next write touching one of its topics closes. Invariants:
//
//   - a write is in a read (at or before its snapshot's revision) or
//     closes the channel that read returned, never neither: a follower
//     that waits only on the channel of its latest read misses no write;
//   - a write closes only the channels of followers of the topics it
//     touches, so an override change wakes only that subject's followers,
//     and an empty change set (a Tick with nothing due) wakes nobody;
//   - when the change sets after the given revision are no longer
//     retained, the read says so (Complete false) and the follower
//     compares everything it derived with the snapshot.
package evaluator

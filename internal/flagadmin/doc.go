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

// Package flagadmin is what the kubectl plugin (internal/kubectl) and the web console
// (internal/console) share to read and change flagops objects as a person: list a
// namespace's objects with the caller's client, evaluate them locally with the evaluator
// core, and plan and make the writes of seed 000's per-user runbook (set, clear) and seed
// 003's flag list (master switch, rollout). It knows nothing of cobra or HTTP: a front end
// turns its input into requests and the errors into its own output.
//
// # Reads evaluate locally
//
// List reads the namespace's FeatureFlags, UserFlagOverrides and DeviceFlagOverrides through
// the API server with the caller's client, so a reader needs exactly the rights of the
// built-in view role. Load puts the objects into an evaluator.Store with evaluator/adapt, as
// the manager's Syncer does, keeping the Syncer's invariants:
//
//   - of several FeatureFlags with one key, only the oldest (creationTimestamp, then name) is
//     served; the others are reported as shadowed;
//   - a FeatureFlag whose spec does not compile is not applied: the server keeps its last
//     valid generation, which a reader cannot see, so the flag is reported as not evaluated
//     locally, with the manager's Ready message;
//   - objects being deleted are left out.
//
// Where the server's live view may differ from the local evaluation (a Ready condition that
// is False or missing, a status.observedGeneration behind metadata.generation), the flag's
// entry carries a note.
//
// # Writes
//
// PlanSet, PlanClear and the FlagChanges keep these invariants:
//
//   - nothing is written until every check passed: the input, and every value against its
//     flag with the evaluator's CheckValue (as the admission webhook checks it); the front
//     end adds the GitOps guard (internal/gitops) before it writes;
//   - every write carries the resourceVersion that was read (a create carries none and fails
//     with AlreadyExists if the object appeared; a delete carries the UID too), so a
//     concurrent change is a Conflict, never overwritten;
//   - every write is made with the caller's client under the front end's field manager:
//     server-side apply when entries are only added or changed, a JSON merge patch when
//     entries are removed or for one field of a FeatureFlag;
//   - set writes one object, the subject's own (SubjectObjectName), and refuses a key that
//     another active override object of the subject holds.
//
// # History
//
// ListEvents lists a namespace's Events with the caller's client (the built-in view role
// may), and History keeps those the manager recorded about a flag key or a subject's
// override objects, newest first, reading the notes of audited changes with
// internal/auditevent: `kubectl flagops history` prints them, the console's flag page shows
// them.
package flagadmin

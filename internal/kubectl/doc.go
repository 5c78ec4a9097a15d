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

// Package kubectl is the kubectl plugin `kubectl flagops`: the platform team's command line
// for flags and overrides (cmd/kubectl-flagops is its thin entry point).
//
// Every command follows the complete/validate/run shape of kubernetes/sample-cli-plugin:
// Complete reads the flags and the kubeconfig, Validate checks the input without touching the
// cluster, Run does the work. Connection flags are cli-runtime's ConfigFlags (--kubeconfig,
// --context, -n, --as, --as-group); commands whose output is API objects take PrintFlags
// (-o json|yaml|name|jsonpath=...), the others print tables or, with -o json|yaml, a
// structured document.
//
// The reading, evaluating and writing are package flagadmin's, which the web console
// (internal/console) shares; this package turns flags and arguments into its requests and its
// results and errors into kubectl-style output.
//
// # Reads evaluate locally
//
// The read commands (get, effective, explain, overrides) list the namespace's FeatureFlags,
// UserFlagOverrides and DeviceFlagOverrides through the API server with the caller's
// credentials, so they need exactly the rights of the built-in view role and no other network
// path. They load the objects into an evaluator.Store with evaluator/adapt, as the manager's
// Syncer does, and evaluate with the same core as the server. The load keeps the Syncer's
// invariants:
//
//   - of several FeatureFlags with one key, only the oldest (creationTimestamp, then name) is
//     served; the others are reported as shadowed;
//   - a FeatureFlag whose spec does not compile is not applied: the server keeps its last
//     valid generation, which the plugin cannot see, so the flag is reported as not
//     evaluated locally, with the manager's Ready message;
//   - objects being deleted are left out.
//
// Where the server's live view may differ from the local evaluation, the commands say so:
// a Ready condition that is False or missing, or a status.observedGeneration behind
// metadata.generation, is reported with the flag (get's MESSAGE, effective's NOTE, explain's
// notes).
//
// # Writes
//
// The write commands (set, clear, enable, disable, rollout) keep these invariants:
//
//   - nothing is written until every check passed: the input, every value against its flag
//     with the evaluator's CheckValue (as the admission webhook checks it), and the GitOps
//     guard of every object to be written (internal/gitops; --force overrides it);
//   - every write carries the resourceVersion the plugin read (a create carries none and
//     fails with AlreadyExists if the object appeared; a delete carries the UID too), so a
//     concurrent change is a Conflict, never overwritten;
//   - every write is made with the caller's credentials under the field manager
//     kubectl-flagops: server-side apply when entries are only added or changed, a JSON merge
//     patch when entries are removed or for one field of a FeatureFlag;
//   - set writes one object, the subject's own (subjectObjectName), and refuses a key that
//     another active override object of the subject holds;
//   - --dry-run=client and --export send no request but the reads; --dry-run=server sends
//     the writes with dryRun=All.
//
// history reads the Events the manager records (core/v1 view, readable with view), which
// carry less than the audit trail: no Event exists for an ordinary change.
//
// # Errors
//
// Every error is one line on stderr and exit code 1: errors from the API server as kubectl
// prints them ("Error from server (Forbidden): ..." with the verb and resource), others as
// "error: ...".
package kubectl

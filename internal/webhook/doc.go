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

// Package webhook holds the flagops admission webhooks, served by the manager:
//
//   - a mutating webhook that stamps flagops.dev/changed-by with the requesting user on every
//     create, and on every update that changes the spec;
//   - a validating webhook per kind that rejects what the evaluator would refuse to serve: a
//     FeatureFlag whose spec does not compile, and override entries for unknown flags, with
//     values that fail the flag's type or JSON Schema, or that conflict with another override;
//   - a validating webhook on DELETE that records the deleter in flagops.dev/deleted-by.
//
// With stamp keys (Options.StampKeys), both stamps come with a signature, in
// flagops.dev/changed-by-stamp and flagops.dev/deleted-by-stamp (package internal/stamp),
// that the controllers verify before they trust the name (controllers.Actors).
//
// Setup registers them with a manager. docs/webhooks.md describes the failure policies and
// the certificates.
//
// +kubebuilder:webhookconfiguration:mutating=true,name=flagops-mutating-webhook-configuration
// +kubebuilder:webhookconfiguration:mutating=false,name=flagops-validating-webhook-configuration
package webhook

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

package webhook

import (
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/stamp"
)

// The paths the webhooks are served on. They match the +kubebuilder:webhook markers, from
// which config/webhook/manifests.yaml is generated.
const (
	// PathChangedBy is the mutating webhook that stamps flagops.dev/changed-by.
	PathChangedBy = "/mutate-flagops-dev-v1alpha1-changed-by"
	// PathDeletedBy is the validating webhook on DELETE that stamps flagops.dev/deleted-by.
	PathDeletedBy = "/validate-flagops-dev-v1alpha1-deleted-by"
	// PathFeatureFlag validates FeatureFlags.
	PathFeatureFlag = "/validate-flagops-dev-v1alpha1-featureflag"
	// PathUserFlagOverride validates UserFlagOverrides.
	PathUserFlagOverride = "/validate-flagops-dev-v1alpha1-userflagoverride"
	// PathDeviceFlagOverride validates DeviceFlagOverrides.
	PathDeviceFlagOverride = "/validate-flagops-dev-v1alpha1-deviceflagoverride"
	// PathOverrideEntries rejects a null value or a repeated key in an override's
	// spec.flags, before the CRD schema is checked.
	PathOverrideEntries = "/mutate-flagops-dev-v1alpha1-override-entries"
)

// +kubebuilder:rbac:groups=flagops.dev,resources=featureflags;userflagoverrides;deviceflagoverrides,verbs=get;list;watch;patch

// Options configure the webhooks.
type Options struct {
	// Now is the clock of the expiry checks; nil means time.Now.
	Now func() time.Time
	// StampKeys sign the actor stamps (flagops.dev/changed-by-stamp and deleted-by-stamp);
	// nil writes the names without stamps, which the audit trail then marks unverified.
	StampKeys *stamp.Keys
	// Inject, when set, serves the sidecar injection webhooks (PathInjectPod and
	// PathInjectNamespace).
	Inject *InjectOptions
}

// Setup registers every flagops webhook on the webhook server of mgr.
//
// The validating webhooks read flags and overrides through the manager's cache, using the
// field indexes that controllers.SetupIndexes registers. controllers.Setup registers them,
// so call Setup after controllers.Setup. Where the cache cannot answer (no index, or a
// namespace outside --watch-namespaces), the webhooks read from the API server instead.
// Call Setup once per manager: the webhook server panics when a path is registered twice.
func Setup(mgr ctrl.Manager, opts Options) error {
	v := &validator{
		lookup: lookup{cache: mgr.GetClient(), api: mgr.GetAPIReader()},
		now:    opts.Now,
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.FeatureFlag{}).
		WithValidator(flagValidator{v}).
		WithValidatorCustomPath(PathFeatureFlag).
		Complete(); err != nil {
		return fmt.Errorf("failed to set up the FeatureFlag webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.UserFlagOverride{}).
		WithValidator(overrideValidator[*v1.UserFlagOverride]{v}).
		WithValidatorCustomPath(PathUserFlagOverride).
		Complete(); err != nil {
		return fmt.Errorf("failed to set up the UserFlagOverride webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.DeviceFlagOverride{}).
		WithValidator(overrideValidator[*v1.DeviceFlagOverride]{v}).
		WithValidatorCustomPath(PathDeviceFlagOverride).
		Complete(); err != nil {
		return fmt.Errorf("failed to set up the DeviceFlagOverride webhook: %w", err)
	}

	decoder := admission.NewDecoder(mgr.GetScheme())
	server := mgr.GetWebhookServer()
	server.Register(PathOverrideEntries, &admission.Webhook{Handler: entriesChecker{}})
	server.Register(PathChangedBy, &admission.Webhook{Handler: &changedByStamper{decoder: decoder, keys: opts.StampKeys}})
	server.Register(PathDeletedBy, &admission.Webhook{Handler: &deletedByStamper{
		decoder: decoder,
		client:  mgr.GetClient(),
		reader:  mgr.GetAPIReader(),
		keys:    opts.StampKeys,
	}})
	if opts.Inject != nil {
		image := newImageSource(*opts.Inject)
		for path, byNamespace := range map[string]bool{PathInjectPod: false, PathInjectNamespace: true} {
			server.Register(path, &admission.Webhook{Handler: &sidecarInjector{
				decoder: decoder, byNamespace: byNamespace, client: mgr.GetClient(), reader: mgr.GetAPIReader(),
				image: image, resources: opts.Inject.Resources,
			}})
		}
	}
	return nil
}

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

package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator/adapt"
)

// Cache field indexes.
const (
	// IndexKey indexes FeatureFlags by their key (adapt.FlagKey).
	IndexKey = "flagops.dev/key"
	// IndexFlagKey indexes overrides by the flag keys of their entries.
	IndexFlagKey = "flagops.dev/flag-key"
	// IndexSubject indexes overrides by their subject: userId or deviceId.
	IndexSubject = "flagops.dev/subject"
)

// SetupIndexes registers the cache field indexes that the lifecycle controllers and webhooks
// query.
func SetupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &v1.FeatureFlag{}, IndexKey, func(obj client.Object) []string {
		return []string{adapt.FlagKey(obj.(*v1.FeatureFlag))}
	}); err != nil {
		return fmt.Errorf("failed to index %s by key: %w", KindFeatureFlag, err)
	}
	for _, kind := range []Kind{KindUserFlagOverride, KindDeviceFlagOverride} {
		if err := indexer.IndexField(ctx, kind.NewObject(), IndexFlagKey, func(obj client.Object) []string {
			o := wrapOverride(obj)
			keys := make([]string, 0, len(o.spec.Flags))
			for _, e := range o.spec.Flags {
				keys = append(keys, e.Key)
			}
			return keys
		}); err != nil {
			return fmt.Errorf("failed to index %s by flag key: %w", kind, err)
		}
		if err := indexer.IndexField(ctx, kind.NewObject(), IndexSubject, func(obj client.Object) []string {
			return []string{wrapOverride(obj).subject}
		}); err != nil {
			return fmt.Errorf("failed to index %s by subject: %w", kind, err)
		}
	}
	return nil
}

// Compile-time check that the override kinds are the ones wrapOverride knows.
var _ = []client.Object{&v1.UserFlagOverride{}, &v1.DeviceFlagOverride{}}

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

package flagadmin

import (
	"fmt"
	"slices"
	"strconv"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// ClearChange is one override object that a clear changes: Next in place of Cur.
type ClearChange struct{ Cur, Next Override }

// PlanClear computes the removal of the subject's overrides of keys (of every key when keys
// is empty) from every override object of the subject in namespace ns, so that the flags
// fall back to their own evaluation. It returns the objects that change and the keys
// removed, sorted; every key given must be overridden. It writes nothing.
func PlanClear(l *Loaded, ns string, s Subject, keys []string) ([]ClearChange, []string, error) {
	var changes []ClearChange
	var changed []string
	found := map[string]bool{}
	for _, cur := range s.OverridesOf(l.Objs, ns) {
		next := cur.CopyOf()
		next.Spec.Flags = slices.DeleteFunc(next.Spec.Flags, func(e v1.FlagOverrideEntry) bool {
			if len(keys) == 0 || slices.Contains(keys, e.Key) {
				found[e.Key] = true
				if !slices.Contains(changed, e.Key) {
					changed = append(changed, e.Key)
				}
				return true
			}
			return false
		})
		if len(next.Spec.Flags) != len(cur.Spec.Flags) {
			changes = append(changes, ClearChange{cur, next})
		}
	}
	for _, k := range keys {
		if !found[k] {
			return nil, nil, fmt.Errorf("%s has no override for %s in namespace %s", s, strconv.Quote(k), strconv.Quote(ns))
		}
	}
	if len(changes) == 0 {
		return nil, nil, fmt.Errorf("%s has no overrides in namespace %s", s, strconv.Quote(ns))
	}
	slices.Sort(changed)
	return changes, changed, nil
}

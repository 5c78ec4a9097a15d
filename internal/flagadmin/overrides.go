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
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	"github.com/flagops/flagops/evaluator"
)

// OverrideEntry is one override entry naming a flag, with whether it applies now: the
// server's /v1/flags/{key}/overrides entry, with its namespace and key.
type OverrideEntry struct {
	Namespace string                `json:"namespace"`
	Key       string                `json:"key"`
	Kind      evaluator.SubjectKind `json:"kind"`
	SubjectID string                `json:"subjectId"`
	Name      string                `json:"name"`
	Source    string                `json:"source"`
	// Mode is value (Value is served), on or off.
	Mode  string          `json:"mode"`
	Value json.RawMessage `json:"value,omitempty"`
	// Enabled is the override object's enabled.
	Enabled   bool   `json:"enabled"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// State is applies, lost, expired, disabled or invalid.
	State evaluator.OverrideState `json:"state"`
	// Error is why an invalid entry is never served.
	Error string `json:"error,omitempty"`
	// Winner is the object whose entry wins, when State is lost.
	Winner string `json:"winner,omitempty"`
}

// OverrideEntries lists every override entry of the loaded objects, sorted by namespace,
// key, kind (device first), subject and object, with its state now.
func OverrideEntries(l *Loaded) []OverrideEntry {
	keys := map[[2]string]bool{}
	for i := range l.Objs.Users {
		for _, e := range l.Objs.Users[i].Spec.Flags {
			keys[[2]string{l.Objs.Users[i].Namespace, e.Key}] = true
		}
	}
	for i := range l.Objs.Devices {
		for _, e := range l.Objs.Devices[i].Spec.Flags {
			keys[[2]string{l.Objs.Devices[i].Namespace, e.Key}] = true
		}
	}
	sorted := make([][2]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.SortFunc(sorted, func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) })
	snap := l.Store.Snapshot()
	var out []OverrideEntry
	for _, k := range sorted {
		for _, fo := range snap.Namespace(k[0]).FlagOverrides(k[1], nil, 0).Overrides {
			e := OverrideEntry{
				Namespace: k[0], Key: k[1], Kind: fo.Kind, SubjectID: fo.SubjectID, Name: fo.Object.Name, Source: fo.Source,
				Mode: fo.Mode, Value: fo.Value, Enabled: fo.Enabled, CreatedAt: fo.CreatedAt.UTC().Format(TimeFormat),
				Reason: fo.Reason, State: fo.State, Error: fo.Error,
			}
			if fo.ExpiresAt != nil {
				e.ExpiresAt = fo.ExpiresAt.UTC().Format(TimeFormat)
			}
			if fo.Winner != nil {
				e.Winner = fo.Winner.Namespace + "/" + fo.Winner.Name
			}
			out = append(out, e)
		}
	}
	return out
}

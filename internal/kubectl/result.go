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

package kubectl

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flagops/flagops/evaluator"
)

// overrideWrite stores a subject's override object.
type overrideWrite struct {
	*globals
	flags   *writeFlags
	subject subject
}

// write stores next in place of cur (the listed object, when exists): it creates a new
// object, deletes one left without entries (UID and resourceVersion preconditions), sends a
// merge patch of the spec with the resourceVersion when entries are removed (server-side
// apply removes only the fields its own manager owns), and otherwise server-side applies the
// spec with the resourceVersion. It returns what it did (created, configured, deleted or
// unchanged) and the object the API server returned (next itself for a client dry run, nil
// when deleted or unchanged).
func (w *overrideWrite) write(cmd *cobra.Command, cur override, exists bool, next override, now time.Time) (string, client.Object, error) {
	ctx := cmd.Context()
	if exists && equality.Semantic.DeepEqual(*cur.spec, *next.spec) {
		return "unchanged", nil, nil
	}
	action := "configured"
	switch {
	case !exists:
		action = "created"
	case len(next.spec.Flags) == 0:
		action = "deleted"
	}
	if w.flags.dryRun == "client" {
		if !exists {
			next.obj.SetCreationTimestamp(metav1.NewTime(now))
		}
		return action, next.obj, nil
	}
	writer, err := w.newWriter(w.configFlags)
	if err != nil {
		return "", nil, err
	}
	server := w.flags.dryRun == "server"
	body := w.subject.newOverride(next.obj.GetNamespace(), next.obj.GetName())
	*body.spec = *next.spec.DeepCopy()
	body.obj.SetResourceVersion(cur.objResourceVersion(exists))
	switch {
	case action == "created":
		err = writer.Create(ctx, body.obj, server)
	case action == "deleted":
		err = writer.Delete(ctx, cur.obj, server)
	case removesEntries(cur, next):
		// The spec's other fields as set changes them: it never removes an expiry or a reason.
		spec := map[string]any{"flags": next.spec.Flags}
		if next.spec.ExpiresAt != nil {
			spec["expiresAt"] = next.spec.ExpiresAt
		}
		if next.spec.Reason != "" {
			spec["reason"] = next.spec.Reason
		}
		var patch []byte
		if patch, err = rvPatch(cur.obj, spec); err == nil {
			body = cur.copyOf()
			err = writer.Patch(ctx, body.obj, patch, server)
		}
	default:
		err = writer.Apply(ctx, body.obj, server)
	}
	if err != nil {
		return "", nil, err
	}
	if action == "deleted" {
		return action, nil, nil
	}
	return action, body.obj, nil
}

// objResourceVersion is the listed object's resourceVersion, "" for a new one.
func (o override) objResourceVersion(exists bool) string {
	if !exists {
		return ""
	}
	return o.obj.GetResourceVersion()
}

// removesEntries reports whether next lacks a key that cur has.
func removesEntries(cur, next override) bool {
	for _, e := range cur.spec.Flags {
		if next.entry(e.Key) < 0 {
			return true
		}
	}
	return false
}

// objectChange is one object a write command changed, and how, in kubectl's words.
type objectChange struct {
	Object string `json:"object"`
	Action string `json:"action"`
}

// WriteResult is the structured output of set and clear: seed 000's {ok, flags}, with the
// objects written and the keys changed. Flags holds the effective value of every flag for
// the context after the write (none for a flag the role gate hides or that does not compile).
type WriteResult struct {
	OK          bool                       `json:"ok"`
	Namespace   string                     `json:"namespace"`
	Changes     []objectChange             `json:"changes"`
	ChangedKeys []string                   `json:"changedKeys"`
	Flags       map[string]json.RawMessage `json:"flags"`
}

// printWriteResult evaluates objs for ctx and prints what was written and the effective
// values: a line per object then the effective table, or a WriteResult with -o json|yaml.
func printWriteResult(g *globals, output, ns string, ctx evaluator.Context, objs *Objects, changes []objectChange, changed []string) error {
	l, err := load(objs, g.now)
	if err != nil {
		return err
	}
	view := effectiveView(l, ns, ctx, g.now())
	if output != "" {
		res := WriteResult{OK: true, Namespace: ns, Changes: changes, ChangedKeys: slices.Clip(changed), Flags: map[string]json.RawMessage{}}
		if res.ChangedKeys == nil {
			res.ChangedKeys = []string{}
		}
		for _, f := range view.Flags {
			if !f.Hidden && f.ErrorCode == "" {
				res.Flags[f.Key] = f.Value
			}
		}
		return printStructured(g.Out, output, res)
	}
	for _, c := range changes {
		if _, err := fmt.Fprintf(g.Out, "%s %s\n", c.Object, c.Action); err != nil {
			return err
		}
	}
	if len(view.Flags) == 0 {
		return nil
	}
	return printEffectiveTable(g.Out, view)
}

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

// overrideWrite stores a subject's override object.
type overrideWrite struct {
	*globals
	flags   *writeFlags
	subject subject
}

// write stores next in place of cur (the listed object, when exists), as
// flagadmin.WriteOverride does, or only says what it would do with --dry-run=client. It
// returns what it did (created, configured, deleted or unchanged) and the object the API
// server returned (next itself for a client dry run, nil when deleted or unchanged).
func (w *overrideWrite) write(cmd *cobra.Command, cur override, exists bool, next override, now time.Time) (string, client.Object, error) {
	if w.flags.dryRun == "client" {
		action := flagadmin.OverrideAction(cur, exists, next)
		switch action {
		case flagadmin.ActionUnchanged:
			return action, nil, nil
		case flagadmin.ActionCreated:
			next.Obj.SetCreationTimestamp(metav1.NewTime(now))
		}
		return action, next.Obj, nil
	}
	if flagadmin.OverrideAction(cur, exists, next) == flagadmin.ActionUnchanged {
		return flagadmin.ActionUnchanged, nil, nil
	}
	writer, err := w.newWriter(w.configFlags)
	if err != nil {
		return "", nil, err
	}
	return flagadmin.WriteOverride(cmd.Context(), writer, w.subject, cur, exists, next, w.flags.dryRun == "server")
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

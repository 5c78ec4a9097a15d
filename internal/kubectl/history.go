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
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

const historyExample = `
# What the manager recorded about flag beta.dashboard and the overrides of it, newest first
%[1]s history beta.dashboard -n shop

# What it recorded about user alice's overrides
%[1]s history --user alice -n shop -o yaml`

// EventLister reads the Kubernetes Events of a namespace.
type EventLister interface {
	Events(ctx context.Context, ns string) ([]corev1.Event, error)
}

// newClientEvents returns the EventLister of the connection flags' cluster.
func newClientEvents(getter genericclioptions.RESTClientGetter) (EventLister, error) {
	l, err := newClientLister(getter)
	if err != nil {
		return nil, err
	}
	return l.(*clientLister), nil
}

// Events lists the core/v1 view of the namespace's Events, which the built-in view role may
// read (the manager records them through events.k8s.io/v1; both are one resource).
func (l *clientLister) Events(ctx context.Context, ns string) ([]corev1.Event, error) {
	return flagadmin.ListEvents(ctx, l.c, ns)
}

// HistoryEntry is one Event the manager recorded about a flag or an override
// (flagadmin.HistoryEntry).
type HistoryEntry = flagadmin.HistoryEntry

// historyOptions are the options of the history command.
type historyOptions struct {
	*globals
	user, device string
	output       string

	namespace, key string
}

func newHistoryCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &historyOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "history (KEY | --user USER | --device DEVICE)",
		Short: "Show the recent changes and Events the manager recorded about a flag or a subject's overrides",
		Long: `Show, newest first, the Kubernetes Events that the flagops manager recorded
about a flag (the FeatureFlags with the key, and the override objects that
have or had an entry for it) or about a user's or device's override
objects: every audited create, update and delete, with who made it
(verified by the webhook's stamp, or only a hint), the changed keys and
their values before and after; and a schedule step taking effect, an
override expiring, a value or a flag key that is not served, a conflict, a
change whose actor could not be verified.

The API server keeps Events for a limited time (one hour by default), and
an Event has room for 1 KiB: a large value is shown as "<N bytes>", and
the whole change is in the manager's audit trail under the record ID shown
with -o json (docs/audit.md).`,
		Example: ex(historyExample),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.namespace, err = o.globals.namespace(); err != nil {
				return err
			}
			if len(args) == 1 {
				o.key = args[0]
			}
			if n := btoi(o.key != "") + btoi(o.user != "") + btoi(o.device != ""); n != 1 {
				return fmt.Errorf("give one of KEY, --user and --device")
			}
			if err := validateOutput(o.output); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "The user whose override objects to show.")
	f.StringVar(&o.device, "device", "", "The device whose override objects to show.")
	f.StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Run lists the objects and the Events, and keeps those about the objects asked for.
func (o *historyOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	el, err := o.newEvents(o.configFlags)
	if err != nil {
		return err
	}
	events, err := el.Events(cmd.Context(), o.namespace)
	if err != nil {
		return err
	}
	q := flagadmin.HistoryQuery{Key: o.key, Subject: subject{Kind: evaluator.SubjectUser, ID: o.user}}
	if o.device != "" {
		q.Subject = subject{Kind: evaluator.SubjectDevice, ID: o.device}
	}
	entries, found := flagadmin.History(l.Objs, events, o.namespace, q)
	if !found && len(entries) == 0 {
		return flagNotFound(o.key, o.namespace)
	}
	if o.output != "" {
		return printStructured(o.Out, o.output, entries)
	}
	if len(entries) == 0 {
		return noneFound(o.ErrOut, "events", o.namespace)
	}
	tw := printers.GetNewTabWriter(o.Out)
	writeRow(tw, []string{"TIME", "ACTOR", "ACTION", "OBJECT", "KEYS", "BEFORE", "AFTER", "MESSAGE"})
	for _, e := range entries {
		writeRow(tw, []string{e.Time, e.Actor, cmp.Or(e.Action, e.Reason), e.Object, orDash(strings.Join(e.Keys, ",")),
			valuesCell(e.Keys, e.Before), valuesCell(e.Keys, e.After), orDash(e.Message)})
	}
	return tw.Flush()
}

// maxValueCell is the widest a BEFORE or AFTER cell gets in the table; -o json has the values
// in full.
const maxValueCell = 60

// valuesCell shows the values of an audited change in the table: the value of its only key,
// or an object of the keys' values that are not null; "-" when there is nothing.
func valuesCell(keys []string, values map[string]json.RawMessage) string {
	if values == nil {
		return "-"
	}
	var s string
	if len(keys) == 1 {
		s = string(values[keys[0]])
	} else {
		present := map[string]json.RawMessage{}
		for k, v := range values {
			if string(v) != "null" {
				present[k] = v
			}
		}
		b, err := json.Marshal(present)
		if err != nil {
			return "?"
		}
		s = string(b)
	}
	if s == "null" || s == "" || s == "{}" {
		return "-"
	}
	if len(s) > maxValueCell {
		cut := maxValueCell - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

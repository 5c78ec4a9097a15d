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
	"errors"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

const overridesExample = `
# Every user and device override of namespace shop, with whether it applies
%[1]s overrides -n shop

# The overrides of one flag (seed 001: all user overrides for a flag)
%[1]s overrides --flag beta.dashboard

# The overrides of one user (seed 001: list overrides for a user)
%[1]s overrides --user alice

# What expires in the next day, in every namespace
%[1]s overrides -A --expiring-within 24h`

// OverrideEntry is one override entry naming a flag, with whether it applies now
// (flagadmin.OverrideEntry).
type OverrideEntry = flagadmin.OverrideEntry

// overridesOptions are the options of the overrides command.
type overridesOptions struct {
	*globals
	flag, user, device string
	expiringWithin     string
	allNamespaces      bool
	output             string

	namespace string
	within    time.Duration
}

func newOverridesCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &overridesOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "overrides [--flag KEY] [--user USER | --device DEVICE] [--expiring-within DURATION]",
		Short: "List user and device overrides, with whether each applies",
		Long: `List the override entries of a namespace (or of all with -A), one row per
(override object, flag key): the subject, the value it serves, its state now
(applies, lost to an older override, expired, disabled, invalid), expiry,
reason and object. Filter by flag, by user or device, or by expiry.`,
		Example: ex(overridesExample),
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.flag, "flag", "", "Only the entries of this flag key.")
	f.StringVar(&o.user, "user", "", "Only the user overrides of this user id.")
	f.StringVar(&o.device, "device", "", "Only the device overrides of this device id.")
	f.StringVar(&o.expiringWithin, "expiring-within", "", "Only entries that apply now and expire within this duration (e.g. 90m, 24h, 7d).")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List the overrides of every namespace.")
	f.StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

// Complete reads the namespace.
func (o *overridesOptions) Complete(_ *cobra.Command, _ []string) error {
	if o.allNamespaces {
		return nil
	}
	var err error
	o.namespace, err = o.globals.namespace()
	return err
}

// Validate checks the filters and the output format.
func (o *overridesOptions) Validate() error {
	if o.user != "" && o.device != "" {
		return errors.New("--user and --device are exclusive: an override has one subject")
	}
	if o.expiringWithin != "" {
		d, err := parseDuration("--expiring-within", o.expiringWithin)
		if err != nil {
			return err
		}
		o.within = d
	}
	return validateOutput(o.output)
}

// Run loads the objects and lists their entries.
func (o *overridesOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	if o.flag != "" && !namesKey(l, o.namespace, o.flag) {
		return flagNotFound(o.flag, o.namespace)
	}
	entries := o.filter(overrideEntries(l), o.now())
	if o.output != "" {
		return printStructured(o.Out, o.output, entries)
	}
	if len(entries) == 0 {
		return noneFound(o.ErrOut, "overrides", o.namespace)
	}
	return printOverridesTable(o.Out, entries, o.allNamespaces)
}

// namesKey reports whether a flag or an override entry of namespace ns (every namespace when
// empty) has key.
func namesKey(l *loaded, ns, key string) bool {
	snap := l.Store.Snapshot()
	for _, name := range snap.Namespaces() {
		if ns != "" && name != ns {
			continue
		}
		if page := snap.Namespace(name).FlagOverrides(key, nil, 1); page.FlagExists || page.Total > 0 {
			return true
		}
	}
	for _, f := range l.Flags {
		if f.Key == key && (ns == "" || f.Obj.Namespace == ns) {
			return true
		}
	}
	return false
}

// overrideEntries lists every override entry of the loaded objects (flagadmin.OverrideEntries).
func overrideEntries(l *loaded) []OverrideEntry { return flagadmin.OverrideEntries(l) }

// filter keeps the entries that match the options.
func (o *overridesOptions) filter(all []OverrideEntry, now time.Time) []OverrideEntry {
	out := []OverrideEntry{}
	for _, e := range all {
		switch {
		case o.flag != "" && e.Key != o.flag,
			o.user != "" && (e.Kind != evaluator.SubjectUser || e.SubjectID != o.user),
			o.device != "" && (e.Kind != evaluator.SubjectDevice || e.SubjectID != o.device):
			continue
		}
		if o.within > 0 {
			exp, err := time.Parse(time.RFC3339Nano, e.ExpiresAt)
			if err != nil || e.State != evaluator.OverrideApplies || exp.After(now.Add(o.within)) {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// entryValue renders what an entry serves: its value, or (on) or (off).
func entryValue(e *OverrideEntry) string {
	if e.Mode == "value" {
		return valueText(e.Value)
	}
	return "(" + e.Mode + ")"
}

func printOverridesTable(w io.Writer, entries []OverrideEntry, allNamespaces bool) error {
	tw := printers.GetNewTabWriter(w)
	header := []string{"KEY", "KIND", "SUBJECT", "VALUE", "STATE", "EXPIRES", "REASON", "OBJECT"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	writeRow(tw, header)
	for i := range entries {
		e := &entries[i]
		state := string(e.State)
		switch {
		case e.Winner != "":
			state += " (to " + e.Winner + ")"
		case e.Error != "":
			state += ": " + oneLine(e.Error)
		}
		row := []string{e.Key, string(e.Kind), e.SubjectID, entryValue(e), state, orDash(e.ExpiresAt), orDash(e.Reason), e.Name}
		if allNamespaces {
			row = append([]string{e.Namespace}, row...)
		}
		writeRow(tw, row)
	}
	return tw.Flush()
}

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
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/flagadmin"
)

const enableExample = `
# Turn the master switch of flag beta.dashboard on (seed 003's switch)
%[1]s enable beta.dashboard -n shop

# The kill switch: every context gets the off value, except allow-lists and overrides
%[1]s disable beta.dashboard -n shop

# Print the changed FeatureFlag for git instead
%[1]s disable beta.dashboard -n shop --export`

const rolloutExample = `
# Give the on value to 25% of users (seed 003's gradual rollout: 5, 10, 25, 50, 100)
%[1]s rollout beta.dashboard 25 -n shop

# Check with the API server without storing it
%[1]s rollout beta.dashboard 50% --dry-run=server`

// flagWriteOptions are the options of enable, disable and rollout: a patch of one field of
// the FeatureFlag that serves a key.
type flagWriteOptions struct {
	*globals
	write writeFlags
	// change is the field the command sets, and how.
	change flagadmin.FlagChange

	namespace, key string
}

func newFlagWriteCommand(g *globals, ex func(string) string, use, short, long, example string, nargs int,
	setup func(o *flagWriteOptions, args []string) error) *cobra.Command {
	o := &flagWriteOptions{globals: g}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: ex(example),
		Args:    cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.namespace, err = o.globals.namespace(); err != nil {
				return err
			}
			o.key = args[0]
			if err := setup(o, args); err != nil {
				return err
			}
			if err := o.write.validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	o.write.addFlags(cmd, true)
	return cmd
}

func newSwitchCommand(g *globals, ex func(string) string, on bool) *cobra.Command {
	verb, state := "enable", "on"
	if !on {
		verb, state = "disable", "off"
	}
	return newFlagWriteCommand(g, ex, verb+" KEY", fmt.Sprintf("Turn a flag's master switch %s (spec.enabled)", state),
		fmt.Sprintf(`Turn the master switch (spec.enabled) of the FeatureFlag that serves KEY %s,
with a merge patch of that field alone and the object's resourceVersion, so
that a change made in between is reported as a conflict. A schedule step
that has taken effect sets the switch too: the command warns when one
decides it now.`, state), enableExample, 1,
		func(o *flagWriteOptions, _ []string) error {
			o.change = flagadmin.SwitchChange(on)
			return nil
		})
}

func newRolloutCommand(g *globals, ex func(string) string) *cobra.Command {
	return newFlagWriteCommand(g, ex, "rollout KEY PERCENT", "Set a flag's rollout percentage (spec.rollout.percentage)",
		`Set the share of principals, 0 to 100, that get the flag's on value
(spec.rollout.percentage), with a merge patch of that field alone and the
object's resourceVersion. The bucketing attribute (spec.rollout.bucketBy)
is kept. A schedule step that has taken effect sets the percentage too: the
command warns when one decides it now.`, rolloutExample, 2,
		func(o *flagWriteOptions, args []string) error {
			p, ok := flagadmin.ParsePercent(args[1])
			if !ok {
				return fmt.Errorf("PERCENT %s: want a whole number from 0 to 100", strconv.Quote(args[1]))
			}
			o.change = flagadmin.RolloutChange(p)
			return nil
		})
}

// Run patches the field of the FeatureFlag that serves the key.
func (o *flagWriteOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	f := l.Claimant(o.namespace, o.key)
	if f == nil {
		return flagNotFound(o.key, o.namespace)
	}
	next := f.Obj.DeepCopy()
	spec := o.change.Patch(&next.Spec)
	if o.write.export {
		return exportObject(o.Out, next)
	}
	name := resourceName("FeatureFlag", f.Obj.Name)
	if o.change.Same(&f.Obj.Spec) {
		_, err := fmt.Fprintf(o.Out, "%s unchanged\n", name)
		return err
	}
	if err := o.write.guard(o.ErrOut, "FeatureFlag", f.Obj, true); err != nil {
		return err
	}
	if o.write.dryRun != "client" {
		w, err := o.newWriter(o.configFlags)
		if err != nil {
			return err
		}
		patch, err := flagadmin.RVPatch(f.Obj.GetResourceVersion(), spec)
		if err != nil {
			return err
		}
		next = f.Obj.DeepCopy()
		if err := w.Patch(cmd.Context(), next, patch, o.write.dryRun == "server"); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(o.Out, "%s patched%s\n", name, o.write.suffix()); err != nil {
		return err
	}
	return o.warnSchedule(next)
}

// warnSchedule warns when a schedule step that has taken effect decides the field now, so
// that the patch does not change what is served.
func (o *flagWriteOptions) warnSchedule(f *v1.FeatureFlag) error {
	now, ok := o.change.ScheduleDecides(f, o.now())
	if !ok {
		return nil
	}
	_, err := fmt.Fprintf(o.ErrOut, "Warning: a schedule step of %s that has taken effect sets it to %s, which is served until a later step or a change of spec.schedule\n", o.change.Field, now)
	return err
}

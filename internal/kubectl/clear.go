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
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

const clearExample = `
# Fall back to the flag's own evaluation for one key of user alice
%[1]s clear --user alice theme

# Remove every override of device tab-1 (its override objects are deleted)
%[1]s clear --device tab-1 --device-class tablet`

// clearOptions are the options of the clear command.
type clearOptions struct {
	*globals
	ctxFlags contextFlags
	write    writeFlags
	output   string

	namespace string
	subject   subject
	ctx       evaluator.Context
	keys      []string
}

func newClearCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &clearOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "clear (--user USER | --device DEVICE --device-class CLASS) [KEY...]",
		Short: "Remove a user's or device's overrides of some flags, or all of them",
		Long: `Remove the subject's overrides of the keys given, from every override object
of the subject in the namespace (the plugin's own and any other), so that
the flags fall back to their own evaluation; with no key, remove them all.
An object left without entries is deleted (with its UID and resourceVersion
as preconditions); the others get a merge patch of spec.flags with their
resourceVersion. A device override still beats the user's on that device.`,
		Example: ex(clearExample),
		RunE:    runE(o),
	}
	o.ctxFlags.addFlags(cmd)
	o.write.addFlags(cmd, false)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

// Complete reads the namespace and the keys.
func (o *clearOptions) Complete(_ *cobra.Command, args []string) error {
	var err error
	o.namespace, err = o.globals.namespace()
	for _, k := range args {
		if !slices.Contains(o.keys, k) {
			o.keys = append(o.keys, k)
		}
	}
	return err
}

// Validate checks the subject, the keys and the output.
func (o *clearOptions) Validate() error {
	var err error
	if o.subject, err = subjectOf(&o.ctxFlags); err != nil {
		return err
	}
	if o.ctx, err = o.ctxFlags.context(); err != nil {
		return err
	}
	for _, k := range o.keys {
		if !flagadmin.KeyPattern.MatchString(k) {
			return fmt.Errorf("%s is not a flag key (letters, digits, '.', '_' and '-', starting with a letter or digit)", strconv.Quote(k))
		}
	}
	if err := o.write.validate(); err != nil {
		return err
	}
	return validateOutput(o.output)
}

// Run removes the keys from every override object of the subject that has them.
func (o *clearOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	changes, changed, err := flagadmin.PlanClear(l, o.namespace, o.subject, o.keys)
	if err != nil {
		return err
	}
	// Every object is checked before anything is written.
	for _, c := range changes {
		if err := o.write.guard(o.ErrOut, o.subject.KindName(), c.Cur.Obj, false); err != nil {
			return err
		}
	}
	w := &overrideWrite{globals: o.globals, flags: &o.write, subject: o.subject}
	objs := l.Objs
	var done []objectChange
	for _, c := range changes {
		action, result, err := w.write(cmd, c.Cur, true, c.Next, o.now())
		if err != nil {
			// What was written before stays written: say so before the error.
			for _, d := range done {
				if _, werr := fmt.Fprintf(o.Out, "%s %s\n", d.Object, d.Action); werr != nil {
					return werr
				}
			}
			return err
		}
		if result == nil {
			result = c.Next.Obj
		}
		objs = flagadmin.Replaced(objs, result, action == flagadmin.ActionDeleted)
		done = append(done, objectChange{Object: resourceName(o.subject.KindName(), c.Cur.Obj.GetName()), Action: action + o.write.suffix()})
	}
	return printWriteResult(o.globals, o.output, o.namespace, o.ctx, objs, done, changed)
}

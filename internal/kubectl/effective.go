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
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

const effectiveExample = `
# What user alice gets for every flag of namespace shop, and why
%[1]s effective --user alice -n shop

# On her tablet, as a member of org acme with the admin role, with a free attribute
%[1]s effective --user alice --device tab-1 --device-class tablet --org acme --role admin --attr plan=pro

# The same as JSON, for scripts
%[1]s effective --user alice -o json`

// EffectiveView is the structured output of effective: every flag's result for one context.
type EffectiveView = flagadmin.EffectiveView

// EffectiveFlag is one flag's result for the context and where it comes from.
type EffectiveFlag = flagadmin.EffectiveFlag

// OverrideRef is an override entry: its object, what it serves, until when and why.
type OverrideRef = flagadmin.OverrideRef

// effectiveOptions are the options of the effective command.
type effectiveOptions struct {
	*globals
	ctxFlags contextFlags
	output   string

	namespace string
	ctx       evaluator.Context
}

func newEffectiveCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &effectiveOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "effective --user USER [--device DEVICE --device-class CLASS] [--org ORG] [--role ROLE] [--attr NAME=VALUE...]",
		Short: "Show every flag's value for a user or device, and its source",
		Long: `Show every flag's value for one evaluation context and where it comes from:
default, rule:NAME, rollout, allow-list, schedule, user-override:NS/NAME,
device-override:NS/NAME, role-gate or kill-switch; for an override, its expiry
and reason. This is the server's /v1/users/{id}/flags view (and
/v1/devices/{id}/flags with --device), evaluated locally. A flag whose role
gate keeps the context out is shown with source role-gate and left out of
bulk evaluation.`,
		Example: ex(effectiveExample),
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	o.ctxFlags.addFlags(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

// Complete reads the namespace.
func (o *effectiveOptions) Complete(_ *cobra.Command, _ []string) error {
	var err error
	o.namespace, err = o.globals.namespace()
	return err
}

// Validate checks the context and the output format.
func (o *effectiveOptions) Validate() error {
	if o.ctxFlags.user == "" && o.ctxFlags.device == "" {
		return fmt.Errorf("--user or --device is required")
	}
	if err := validateOutput(o.output); err != nil {
		return err
	}
	var err error
	o.ctx, err = o.ctxFlags.context()
	return err
}

// validateOutput accepts the structured outputs of the commands that print no API objects.
func validateOutput(output string) error {
	switch output {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %s: want json or yaml (the default is a table)", strconv.Quote(output))
}

// Run loads the namespace and evaluates every flag.
func (o *effectiveOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	now := o.now()
	view := effectiveView(l, o.namespace, o.ctx, now)
	if o.output != "" {
		return printStructured(o.Out, o.output, view)
	}
	if len(view.Flags) == 0 {
		return noneFound(o.ErrOut, "flags", o.namespace)
	}
	return printEffectiveTable(o.Out, view)
}

// loadNamespace lists the objects of namespace ns (every namespace when ns is empty) and
// loads them. When nothing is listed in ns, a missing namespace is an error, so that every
// command reports it the same way.
func loadNamespace(cmd *cobra.Command, g *globals, ns string) (*loaded, error) {
	lister, err := g.lister()
	if err != nil {
		return nil, err
	}
	objs, err := lister.List(cmd.Context(), ns)
	if err != nil {
		return nil, err
	}
	if ns != "" && len(objs.Flags)+len(objs.Users)+len(objs.Devices) == 0 {
		// Nothing listed: say so if the namespace itself is missing.
		if err := checkNamespace(cmd, lister, ns); err != nil {
			return nil, err
		}
	}
	return load(objs, g.now)
}

// effectiveView evaluates every flag key of namespace ns for ctx, as the server's admin view
// does.
func effectiveView(l *loaded, ns string, ctx evaluator.Context, now time.Time) EffectiveView {
	return flagadmin.Effective(l, ns, ctx, now)
}

// printStructured prints v as indented JSON or as YAML.
func printStructured(w io.Writer, output string, v any) error {
	var b []byte
	var err error
	if output == "json" {
		b, err = json.MarshalIndent(v, "", "    ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("failed to encode the output: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// valueText renders a value for a table: compact JSON, <none> without a value.
func valueText(raw json.RawMessage) string {
	if raw == nil {
		return "<none>"
	}
	return string(raw)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printEffectiveTable(w io.Writer, view EffectiveView) error {
	tw := printers.GetNewTabWriter(w)
	writeRow(tw, []string{"KEY", "VALUE", "SOURCE", "EXPIRES", "REASON", "NOTE"})
	for _, f := range view.Flags {
		src, expires, reason := f.Source, "", ""
		notes := f.Notes
		switch {
		case f.ErrorCode != "":
			src = "error:" + f.ErrorCode
		case f.Hidden:
			notes = append([]string{"role gate: left out of bulk evaluation"}, notes...)
		}
		if f.Override != nil {
			expires, reason = f.Override.ExpiresAt, f.Override.Reason
		}
		writeRow(tw, []string{f.Key, valueText(f.Value), orDash(src), orDash(expires), orDash(reason), orDash(strings.Join(notes, "; "))})
	}
	return tw.Flush()
}

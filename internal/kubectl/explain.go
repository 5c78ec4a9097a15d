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

	"github.com/flagops/flagops/evaluator"
)

const explainExample = `
# Why does alice get what she gets for beta.dashboard?
%[1]s explain beta.dashboard --user alice -n shop

# On a charger, for a guest, as YAML
%[1]s explain beta.dashboard --device ch-7 --device-class charger -o yaml`

// ExplainView is the structured output of explain: the evaluator's decision trace and the
// plugin's notes.
type ExplainView struct {
	evaluator.Trace `json:",inline"`
	Notes           []string `json:"notes,omitempty"`
}

// explainOptions are the options of the explain command.
type explainOptions struct {
	*globals
	ctxFlags contextFlags
	output   string

	key       string
	namespace string
	ctx       evaluator.Context
}

func newExplainCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &explainOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "explain KEY [--user USER] [--device DEVICE --device-class CLASS] [--org ORG] [--role ROLE] [--attr NAME=VALUE...]",
		Short: "Show how a flag is decided for a context, step by step",
		Long: `Show the decision trace of one flag for one evaluation context: every
resolution step in order (flag, role gate, device override, user override,
allow-lists, schedule, kill switch, rules, rollout, default), whether it was
reached, whether it applied, and why. It is the evaluator's explain, the same
as the server's /v1/flags/{key}/explain, evaluated locally.`,
		Example: ex(explainExample),
		Args:    cobra.ExactArgs(1),
		RunE:    runE(o),
	}
	o.ctxFlags.addFlags(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is text, one step a line.")
	return cmd
}

// Complete reads the key and the namespace.
func (o *explainOptions) Complete(_ *cobra.Command, args []string) error {
	o.key = args[0]
	var err error
	o.namespace, err = o.globals.namespace()
	return err
}

// Validate checks the context and the output format.
func (o *explainOptions) Validate() error {
	if err := validateOutput(o.output); err != nil {
		return err
	}
	var err error
	o.ctx, err = o.ctxFlags.context()
	return err
}

// Run loads the namespace and explains the flag.
func (o *explainOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	f := l.Claimant(o.namespace, o.key)
	if f == nil {
		return flagNotFound(o.key, o.namespace)
	}
	if !f.Served {
		return fmt.Errorf("flag %s does not compile, so it is not evaluated locally: %s", strconv.Quote(o.key), oneLine(f.CompileErr.Error()))
	}
	view := ExplainView{Trace: l.Store.Namespace(o.namespace).Explain(o.key, o.ctx), Notes: f.Notes}
	if o.output != "" {
		return printStructured(o.Out, o.output, view)
	}
	text := view.Trace.String() + "\n"
	for _, n := range view.Notes {
		text += "note: " + n + "\n"
	}
	_, err = fmt.Fprint(o.Out, text)
	return err
}

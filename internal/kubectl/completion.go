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
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagops/flagops/evaluator"
)

// Shell completion. `completion bash|zsh|fish` prints cobra's script for the plugin run on
// its own (kubectl-flagops); under kubectl, kubectl's own completion calls the executable
// kubectl_complete-flagops on PATH (cmd/kubectl_complete-flagops) with the words typed after
// "kubectl flagops", and that runs the plugin's hidden __complete command. Either way the
// plugin completes flag keys (arguments, and KEY= of set) and the user and device ids of the
// namespace's overrides (--user, --device), listed with the caller's credentials.

// completionObjects lists the objects of the namespace given on the command line; nil when
// they cannot be listed (completion then offers nothing rather than an error).
func completionObjects(g *globals) *Objects {
	ns, err := g.namespace()
	if err != nil {
		return nil
	}
	lister, err := g.lister()
	if err != nil {
		return nil
	}
	objs, err := lister.List(context.Background(), ns)
	if err != nil {
		return nil
	}
	return objs
}

// flagKeys returns the sorted flag keys of the namespace that start with prefix.
func flagKeys(objs *Objects, prefix string, now func() time.Time) []string {
	var out []string
	if objs == nil {
		return nil
	}
	l, err := load(objs, now)
	if err != nil {
		return nil
	}
	for _, f := range l.Flags {
		if f.ShadowedBy == "" && strings.HasPrefix(f.Key, prefix) && !slices.Contains(out, f.Key) {
			out = append(out, f.Key)
		}
	}
	slices.Sort(out)
	return out
}

// subjectIDs returns the sorted user or device ids of the namespace's overrides that start
// with prefix.
func subjectIDs(objs *Objects, kind evaluator.SubjectKind, prefix string) []string {
	var out []string
	if objs == nil {
		return nil
	}
	add := func(id string) {
		if strings.HasPrefix(id, prefix) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if kind == evaluator.SubjectDevice {
		for _, o := range objs.Devices {
			add(o.Spec.DeviceID)
		}
	} else {
		for _, o := range objs.Users {
			add(o.Spec.UserID)
		}
	}
	slices.Sort(out)
	return out
}

// completeKeys completes up to max flag-key arguments (every argument when max is 0).
func completeKeys(g *globals, max int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		keys := slices.DeleteFunc(flagKeys(completionObjects(g), toComplete, g.now), func(k string) bool { return slices.Contains(args, k) })
		return keys, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeAssignments completes set's KEY=: the flag keys not given yet, each followed by '='
// and no space.
func completeAssignments(g *globals) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if strings.Contains(toComplete, "=") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, k := range flagKeys(completionObjects(g), toComplete, g.now) {
			if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, k+"=") }) {
				out = append(out, k+"=")
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

func completeSubjects(g *globals, kind evaluator.SubjectKind) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return subjectIDs(completionObjects(g), kind, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// registerCompletions attaches the completion functions to the commands of root.
func registerCompletions(g *globals, root *cobra.Command) {
	args := map[string]cobra.CompletionFunc{
		"get": completeKeys(g, 0), "explain": completeKeys(g, 1), "history": completeKeys(g, 1),
		"enable": completeKeys(g, 1), "disable": completeKeys(g, 1), "rollout": completeKeys(g, 1),
		"clear": completeKeys(g, 0), "set": completeAssignments(g),
	}
	for _, cmd := range root.Commands() {
		if f, ok := args[cmd.Name()]; ok {
			cmd.ValidArgsFunction = f
		}
		if cmd.Flags().Lookup("user") != nil {
			_ = cmd.RegisterFlagCompletionFunc("user", completeSubjects(g, evaluator.SubjectUser))
		}
		if cmd.Flags().Lookup("device") != nil {
			_ = cmd.RegisterFlagCompletionFunc("device", completeSubjects(g, evaluator.SubjectDevice))
		}
		if cmd.Flags().Lookup("flag") != nil {
			_ = cmd.RegisterFlagCompletionFunc("flag", completeKeys(g, 0))
		}
	}
}

const completionExample = `
# bash, for kubectl-flagops run on its own (kubectl flagops completes through
# kubectl's completion and kubectl_complete-flagops on PATH)
source <(kubectl-flagops completion bash)

# zsh
kubectl-flagops completion zsh > "${fpath[1]}/_kubectl-flagops"

# fish
kubectl-flagops completion fish > ~/.config/fish/completions/kubectl-flagops.fish`

// newCompletionCommand prints the completion script of a shell for the plugin run on its own,
// as kubectl-flagops.
func newCompletionCommand(g *globals, ex func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script of kubectl-flagops",
		Long: `Print the completion script of a shell for kubectl-flagops run on its own.
Under kubectl, "kubectl flagops" completes through kubectl's own completion,
which runs the executable kubectl_complete-flagops when it is on PATH
(go install ./cmd/kubectl_complete-flagops, or make kubectl-flagops). Both
complete flag keys, and the user and device ids of the namespace's
overrides, from the cluster.`,
		Example:   ex(completionExample),
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			use := root.Use
			root.Use = "kubectl-flagops"
			defer func() { root.Use = use }()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.Out, true)
			case "zsh":
				return root.GenZshCompletion(g.Out)
			case "fish":
				return root.GenFishCompletion(g.Out, true)
			}
			return fmt.Errorf("unknown shell %q", args[0])
		},
	}
}

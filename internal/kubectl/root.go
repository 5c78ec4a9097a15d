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
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/flagops/flagops/internal/flagadmin"
)

// globals are what every command shares: the connection flags, the streams, the clock and
// how to reach the cluster.
type globals struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	version string
	// now is the clock of local evaluation.
	now func() time.Time
	// newLister returns the Lister of the connection flags' config (kubeconfig, context,
	// --as); tests replace it.
	newLister func(genericclioptions.RESTClientGetter) (Lister, error)
	// newWriter returns the Writer of the connection flags' config; tests replace it.
	newWriter func(genericclioptions.RESTClientGetter) (Writer, error)
	// newEvents returns the EventLister of the connection flags' config; tests replace it.
	newEvents func(genericclioptions.RESTClientGetter) (EventLister, error)
}

// lister returns the Lister of the cluster.
func (g *globals) lister() (Lister, error) { return g.newLister(g.configFlags) }

// namespace returns the namespace of the request: -n, else the kubeconfig context's, else
// "default".
func (g *globals) namespace() (string, error) {
	ns, _, err := g.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", err
	}
	return ns, nil
}

// commandName is how the help text names the plugin: "kubectl flagops" when kubectl runs it
// (kubectl runs plugins as kubectl-NAME), else the binary's own name.
func commandName(arg0 string) string {
	base := filepath.Base(arg0)
	if strings.HasPrefix(base, "kubectl-") {
		return "kubectl " + strings.ReplaceAll(strings.TrimPrefix(base, "kubectl-"), "_", "-")
	}
	return base
}

// NewCommand returns the root command of the plugin. name is how help texts call it
// ("kubectl flagops"), version what the version command prints.
func NewCommand(streams genericiooptions.IOStreams, name, version string) *cobra.Command {
	g := &globals{
		configFlags: newConfigFlags(),
		IOStreams:   streams,
		version:     version,
		now:         time.Now,
		newLister:   newClientLister,
		newWriter:   newClientWriter,
		newEvents:   newClientEvents,
	}
	return newRootCommand(g, name)
}

// newConfigFlags returns kubectl's connection flags without two: --user, which names the
// user of a flag evaluation here (pick a kubeconfig user with --context), and --cache-dir,
// since the plugin uses no discovery cache.
func newConfigFlags() *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.AuthInfoName = nil
	f.CacheDir = nil
	return f
}

func newRootCommand(g *globals, name string) *cobra.Command {
	root := &cobra.Command{
		Use: "flagops",
		// Help texts name the command as it is typed: "kubectl flagops" under kubectl.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: name},
		Short:       "Inspect flagops feature flags and overrides",
		Long: `Inspect flagops feature flags and overrides.

The read commands list the namespace's FeatureFlags, UserFlagOverrides and
DeviceFlagOverrides with your credentials (the view role is enough) and
evaluate them locally with the same evaluator as the flagops server. Where
the server's live view may differ (a flag that failed to validate, a status
behind the spec) they say so.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare invocation prints the help, like kubectl.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	root.SetOut(g.Out)
	root.SetErr(g.ErrOut)
	root.SetIn(g.In)
	// The completion command is the plugin's own, for bash, zsh and fish.
	root.CompletionOptions.DisableDefaultCmd = true
	g.configFlags.AddFlags(root.PersistentFlags())
	// Examples are indented by two spaces, as kubectl's are.
	ex := func(s string) string {
		lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(s), "%[1]s", name), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = "  " + l
			}
		}
		return strings.Join(lines, "\n")
	}
	root.AddCommand(
		newGetCommand(g, ex),
		newEffectiveCommand(g, ex),
		newExplainCommand(g, ex),
		newOverridesCommand(g, ex),
		newSetCommand(g, ex),
		newClearCommand(g, ex),
		newSwitchCommand(g, ex, true),
		newSwitchCommand(g, ex, false),
		newRolloutCommand(g, ex),
		newHistoryCommand(g, ex),
		newCompletionCommand(g, ex),
		newVersionCommand(g, ex),
	)
	registerCompletions(g, root)
	return root
}

// Main runs the plugin with args (without the program name) and returns the exit code: 0,
// or 1 with one line on stderr.
func Main(args []string, streams genericiooptions.IOStreams, version string) int {
	return execute(NewCommand(streams, commandName(os.Args[0]), resolveVersion(version)), args, streams.ErrOut)
}

func execute(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		_, _ = fmt.Fprintln(stderr, ErrorLine(err))
		return 1
	}
	return 0
}

// ErrorLine renders an error as kubectl does, on one line: "Error from server (Reason):
// message" for an API server's error (a Forbidden names the verb and the resource), else
// "error: message".
func ErrorLine(err error) string {
	if line, ok := flagadmin.ServerError(err); ok {
		return line
	}
	return "error: " + oneLine(err.Error())
}

// resolveVersion returns version, or the module version when the binary was built by go
// install from a tagged module without -X main.version.
func resolveVersion(version string) string {
	if version != "" && version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newVersionCommand(g *globals, ex func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the plugin's version",
		Example: ex(`%[1]s version`),
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(g.Out, "kubectl-flagops %s\n", g.version)
			return err
		},
	}
}

// command is the complete/validate/run shape of every command's options.
type command interface {
	// Complete fills the options from the arguments and the environment.
	Complete(cmd *cobra.Command, args []string) error
	// Validate checks the options before anything is read or written.
	Validate() error
	// Run does the work.
	Run(cmd *cobra.Command) error
}

// runE runs o's Complete, Validate and Run in turn, as a cobra RunE.
func runE(o command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd)
	}
}

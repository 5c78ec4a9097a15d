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

// Command flagops is the flagops binary. Its subcommands are the ways flagops runs:
//
//	flagops manager   the controller manager: reconciles FeatureFlag, UserFlagOverride and
//	                  DeviceFlagOverride objects
//	flagops evaluator serves flags and overrides to devices and applications; it only
//	                  reads the cluster
//	flagops sidecar   serves the flags of one namespace next to an application
//	flagops serve     serves flags from a directory of manifests, with no cluster
//	flagops console   serves the web console, acting as each signed-in user
//	flagops version   prints the version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `flagops: Kubernetes-native feature flags.

Usage:
  flagops <command> [flags]

Commands:
  manager   Run the controller manager against the current cluster.
  evaluator Serve flags to devices and applications, reading the current cluster only.
  sidecar   Serve the flags of one namespace next to an application.
  serve     Serve flags from a directory of manifests, with no cluster.
  console   Serve the web console, acting as each signed-in Kubernetes user.
  version   Print the version.

Run 'flagops <command> --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, 2, "%s", usage)
	}
	switch args[0] {
	case "manager":
		return runManager(args[1:], stdout, stderr)
	case "evaluator":
		return runEvaluator(args[1:], stdout, stderr)
	case "sidecar":
		return runSidecar(args[1:], stdout, stderr)
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "console":
		return runConsole(args[1:], stdout, stderr)
	case "version", "--version":
		return output(stdout, stderr, "flagops "+version+"\n")
	case "help", "-h", "--help":
		return output(stdout, stderr, usage)
	default:
		return fail(stderr, 2, "flagops: unknown command %q\n\n%s", args[0], usage)
	}
}

// output writes a command's result to stdout and returns the exit code: 0, or 1 with the
// reason on stderr when stdout cannot be written (a closed pipe, a full disk).
func output(stdout, stderr io.Writer, s string) int {
	if _, err := io.WriteString(stdout, s); err != nil {
		return fail(stderr, 1, "flagops: failed to write the output: %v\n", err)
	}
	return 0
}

// fail writes a command's error message to stderr and returns code, the exit code. The
// write's own error is ignored: the command fails with code either way, and a stderr that
// cannot be written leaves nowhere else to report it.
func fail(stderr io.Writer, code int, format string, args ...any) int {
	_, _ = fmt.Fprintf(stderr, format, args...)
	return code
}

// parseCommand parses a subcommand's flags. --help prints usage (the command's description)
// and the flags to stdout; errors go to stderr, and positional arguments are rejected.
func parseCommand(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		// Ignored, as flag.FlagSet.PrintDefaults ignores the errors of the lines it writes
		// next: --help exits 0 either way.
		_, _ = fmt.Fprintf(stdout, "%s\nFlags:\n", usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

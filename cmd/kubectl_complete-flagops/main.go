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

// Command kubectl_complete-flagops is the completion shim of the kubectl plugin: when
// completing "kubectl flagops ...", kubectl (1.26 and later) runs the executable
// kubectl_complete-flagops found on PATH with the words typed after "kubectl flagops", the
// last being the one to complete, and reads completions from its output, one a line,
// optionally followed by cobra's ":DIRECTIVE" line. The shim runs the plugin's hidden
// __complete command, which prints exactly that: the kubectl-flagops next to the shim, else
// the one on PATH. It imports nothing else, so that it stays small.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// plugin returns the path of kubectl-flagops: beside this executable, else on PATH.
func plugin() (string, error) {
	name := "kubectl-flagops"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), name); isFile(p) {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func run(args []string) int {
	path, err := plugin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl_complete-flagops: %v\n", err)
		return 1
	}
	cmd := exec.Command(path, append([]string{"__complete"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "kubectl_complete-flagops: %v\n", err)
		return 1
	}
	return 0
}

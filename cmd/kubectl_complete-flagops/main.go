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
// __complete command, which prints exactly that.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/flagops/flagops/internal/kubectl"
)

func main() {
	args := append([]string{"__complete"}, os.Args[1:]...)
	os.Exit(kubectl.Main(args, genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, "dev"))
}

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

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	o := options{out: os.Stdout, logs: os.Stderr}
	flag.StringVar(&o.root, "root", ".", "The repository root.")
	flag.IntVar(&o.evaluatorPort, "evaluator-port", 8080, "Local port of the evaluator's HTTP API (flagops evaluator).")
	flag.IntVar(&o.probePort, "probe-port", 8081, "Local port of the manager's health probes.")
	flag.StringVar(&o.namespace, "namespace", "default", "Namespace that receives the samples.")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := start(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "flagops demo: %v\n", err)
		os.Exit(1)
	}
	if _, err := fmt.Fprint(o.out, d.instructions(o)); err != nil {
		fmt.Fprintf(os.Stderr, "flagops demo: failed to print the instructions: %v\n", err)
		d.stop()
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
		// The demo stops whether or not this line can be printed.
		_, _ = fmt.Fprintln(o.out, "\nStopping the demo.")
		d.stop()
	case <-d.exited:
		p := d.firstExited()
		fmt.Fprintf(os.Stderr, "flagops demo: the %s exited: %v\n", p.name, p.err)
		d.stop()
		os.Exit(1)
	}
}

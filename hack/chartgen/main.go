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

// Command chartgen makes the two ways of installing flagops that are not kustomize itself,
// both from `kustomize build config/default`, so that neither can drift from config/:
//
//	chartgen chart -kustomize BIN [-config config/default] [-out charts/flagops]
//	chartgen release -kustomize BIN -image IMG [-out dist]
//
// chart writes the Helm chart's generated files: templates/ (one file per object, with the
// values substituted), values.yaml (whose defaults are read from config/default) and
// Chart.yaml. The chart's hand-written files (values.schema.json, templates/_helpers.tpl
// and the few templates that config/ has no object for) carry no generated header and are
// left alone. Rendered with its default values in the namespace flagops-system, the chart
// is config/default object for object, less the Namespace (the tests check this).
//
// release writes dist/install.yaml (everything, with the image IMG) and dist/crds.yaml (its
// CRDs and admission policies, those of config/crd), for `kubectl apply --server-side -f`.
//
// Every file is written atomically (a temporary file renamed over it). `make chart` and
// `make release-manifests` run it.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "chartgen: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("missing command: chart or release")
	}
	fs := flag.NewFlagSet("chartgen "+args[0], flag.ContinueOnError)
	kustomize := fs.String("kustomize", "", "The kustomize binary (make sets it).")
	switch args[0] {
	case "chart":
		config := fs.String("config", "config/default", "The kustomization the chart is made from.")
		out := fs.String("out", "charts/flagops", "The chart's directory.")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *kustomize == "" {
			return fmt.Errorf("-kustomize: required")
		}
		files, err := generateChart(*kustomize, *config)
		if err != nil {
			return err
		}
		return writeChart(*out, files)
	case "release":
		image := fs.String("image", "", "The image that install.yaml runs, e.g. ghcr.io/flagops/flagops:v0.1.0.")
		out := fs.String("out", "dist", "The directory to write install.yaml and crds.yaml to.")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *kustomize == "" {
			return fmt.Errorf("-kustomize: required")
		}
		if *image == "" {
			return fmt.Errorf("-image: required")
		}
		return writeRelease(*kustomize, ".", *image, *out)
	default:
		return fmt.Errorf("unknown command %q: want chart or release", args[0])
	}
}

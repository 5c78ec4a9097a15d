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
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
)

// FieldManager is the field manager of every write the plugin makes.
const FieldManager = "kubectl-flagops"

// Writer changes flagops objects with the caller's credentials (flagadmin.Writer).
type Writer = flagadmin.Writer

// newClientWriter returns a Writer that talks to the API server of the connection flags.
func newClientWriter(getter genericclioptions.RESTClientGetter) (Writer, error) {
	c, err := newClient(getter)
	if err != nil {
		return nil, err
	}
	return flagadmin.NewWriter(c, FieldManager), nil
}

// writeFlags are the flags every write command shares.
type writeFlags struct {
	dryRun string
	force  bool
	export bool
}

func (w *writeFlags) addFlags(cmd *cobra.Command, export bool) {
	f := cmd.Flags()
	f.StringVar(&w.dryRun, "dry-run", "none", `"none", "client" or "server". client prints what would change without sending it; server sends the change for validation and prints the result without storing it.`)
	f.BoolVar(&w.force, "force", false, "Change an object that a GitOps tool or Helm manages (it will revert the change at its next sync).")
	if export {
		f.BoolVar(&w.export, "export", false, "Print the resulting object as YAML instead of writing it, for changes made through git.")
	}
}

// validate checks --dry-run and its combinations.
func (w *writeFlags) validate() error {
	switch w.dryRun {
	case "none", "client", "server":
	default:
		return fmt.Errorf(`--dry-run %s: want "none", "client" or "server"`, strconv.Quote(w.dryRun))
	}
	if w.export && w.dryRun != "none" {
		return fmt.Errorf("--export and --dry-run are exclusive: --export writes nothing")
	}
	return nil
}

// suffix is what kubectl adds to the message of a dry run.
func (w *writeFlags) suffix() string {
	switch w.dryRun {
	case "client":
		return " (dry run)"
	case "server":
		return " (server dry run)"
	}
	return ""
}

// guard refuses to change an object that a GitOps tool or Helm manages, unless --force: the
// tool would revert the change at its next sync. With --force it warns and lets it through.
func (w *writeFlags) guard(errOut io.Writer, kind string, obj client.Object, exportable bool) error {
	m := gitops.Marker(obj)
	if m == "" {
		return nil
	}
	what := fmt.Sprintf("%s %s/%s is managed by a GitOps tool or Helm (%s), which will revert this change at its next sync",
		kind, obj.GetNamespace(), obj.GetName(), m)
	if w.force {
		_, err := fmt.Fprintf(errOut, "Warning: %s; changing it anyway (--force)\n", what)
		return err
	}
	hint := "change it in git instead"
	if exportable {
		hint = "change it in git instead (--export prints the YAML)"
	}
	return fmt.Errorf("%s; %s, or pass --force", what, hint)
}

// resourceName is how kubectl names an object in its messages, e.g.
// userflagoverride.flagops.dev/user-alice.
func resourceName(kind, name string) string {
	return strings.ToLower(kind) + "." + v1.GroupVersion.Group + "/" + name
}

// exportObject prints obj as YAML for git: apiVersion, kind, name, namespace, labels and
// spec; nothing the API server or the manager writes.
func exportObject(w io.Writer, obj client.Object) error {
	u, err := flagadmin.ToUnstructured(obj)
	if err != nil {
		return err
	}
	meta := map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()}
	if l := obj.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	out := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta, "spec": u.Object["spec"]}
	b, err := yaml.Marshal(out)
	if err != nil {
		return fmt.Errorf("failed to encode the object: %w", err)
	}
	_, err = w.Write(b)
	return err
}

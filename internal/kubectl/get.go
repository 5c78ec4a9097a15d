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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/flagadmin"
)

const getExample = `
# List the flags of the current namespace
%[1]s get

# Two flags of namespace shop, as YAML
%[1]s get beta.dashboard checkout.v2 -n shop -o yaml

# Every flag of every namespace you may read
%[1]s get -A

# The names of the flags, for scripts
%[1]s get -o name`

// getOptions are the options of the get command.
type getOptions struct {
	*globals
	printFlags    *genericclioptions.PrintFlags
	allNamespaces bool

	keys      []string
	namespace string
	printer   printers.ResourcePrinter
}

func newGetCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &getOptions{globals: g, printFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(newScheme())}
	cmd := &cobra.Command{
		Use:   "get [KEY...]",
		Short: "List flags: type, state, rollout, override counts and Ready",
		Long: `List the FeatureFlags of a namespace (or of all with -A): key, type, state
(enabled or disabled, as the schedule has it now), rollout percentage, the
number of user and device overrides that apply, and the Ready condition with
its message. Local notes follow the message where the server's live view may
differ: a spec that does not compile, a duplicate key, a status behind the
spec. With KEY arguments, only those flags (by key or by object name).`,
		Example: ex(getExample),
		RunE:    runE(o),
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List the flags of every namespace.")
	o.printFlags.AddFlags(cmd)
	return cmd
}

// Complete reads the arguments and the namespace.
func (o *getOptions) Complete(_ *cobra.Command, args []string) error {
	o.keys = args
	if o.allNamespaces {
		return nil
	}
	var err error
	o.namespace, err = o.globals.namespace()
	return err
}

// Validate checks the output format.
func (o *getOptions) Validate() error {
	if *o.printFlags.OutputFormat == "" {
		return nil
	}
	p, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	o.printer = p
	return nil
}

// Run lists, loads and prints.
func (o *getOptions) Run(cmd *cobra.Command) error {
	lister, err := o.lister()
	if err != nil {
		return err
	}
	objs, err := lister.List(cmd.Context(), o.namespace)
	if err != nil {
		return err
	}
	l, err := load(objs, o.now)
	if err != nil {
		return err
	}
	entries, err := selectFlags(l.Flags, o.keys, o.namespace)
	if err != nil {
		return err
	}
	if len(entries) == 0 && o.namespace != "" {
		if err := checkNamespace(cmd, lister, o.namespace); err != nil {
			return err
		}
	}
	if o.printer != nil {
		return printObjects(o.printer, entries, len(o.keys) == 1 && len(entries) == 1, o.Out)
	}
	if len(entries) == 0 {
		return noneFound(o.ErrOut, "flags", o.namespace)
	}
	return printFlagTable(o.Out, l, entries, o.allNamespaces, o.now())
}

// checkNamespace fails when namespace ns does not exist.
func checkNamespace(cmd *cobra.Command, lister Lister, ns string) error {
	ok, err := lister.NamespaceExists(cmd.Context(), ns)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("namespace %s not found", strconv.Quote(ns))
	}
	return nil
}

// noneFound tells stderr, as kubectl does, that there is nothing to show.
func noneFound(w io.Writer, what, ns string) error {
	var err error
	if ns == "" {
		_, err = fmt.Fprintf(w, "No %s found.\n", what)
	} else {
		_, err = fmt.Fprintf(w, "No %s found in namespace %s.\n", what, ns)
	}
	return err
}

// selectFlags returns the entries named by keys (a flag key or an object name), in the
// order of the list; every key must name one. No keys select every entry.
func selectFlags(all []*flagEntry, keys []string, ns string) ([]*flagEntry, error) {
	if len(keys) == 0 {
		return all, nil
	}
	var out []*flagEntry
	for _, k := range keys {
		found := false
		for _, f := range all {
			if f.Key == k || f.Obj.Name == k {
				found = true
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
		if !found {
			return nil, flagNotFound(k, ns)
		}
	}
	return out, nil
}

// printObjects prints the FeatureFlag objects with a PrintFlags printer: the object itself
// when one was asked for by key, else a List, as kubectl get does.
func printObjects(p printers.ResourcePrinter, entries []*flagEntry, single bool, w io.Writer) error {
	items := make([]unstructured.Unstructured, 0, len(entries))
	for _, f := range entries {
		obj := f.Obj.DeepCopy()
		obj.ManagedFields = nil
		obj.SetGroupVersionKind(v1.GroupVersion.WithKind("FeatureFlag"))
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("failed to convert FeatureFlag %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		items = append(items, unstructured.Unstructured{Object: m})
	}
	if single {
		return p.PrintObj(&items[0], w)
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}, Items: items}
	list.SetResourceVersion("")
	return p.PrintObj(list, w)
}

// flagState is what a flag's kill switch and rollout are now, after the schedule steps at or
// before now.
func flagState(spec *v1.FeatureFlagSpec, now time.Time) (enabled bool, rollout string) {
	return flagadmin.FlagState(spec, now)
}

func printFlagTable(w io.Writer, l *loaded, entries []*flagEntry, allNamespaces bool, now time.Time) error {
	tw := printers.GetNewTabWriter(w)
	header := []string{"KEY", "TYPE", "STATE", "ROLLOUT", "USERS", "DEVICES", "READY", "MESSAGE"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	writeRow(tw, header)
	snap := l.Store.Snapshot()
	for _, f := range entries {
		enabled, rollout := flagState(&f.Obj.Spec, now)
		state := "disabled"
		if enabled {
			state = "enabled"
		}
		users, devices := "-", "-"
		switch {
		case f.Served:
			u, d := flagadmin.OverrideCounts(snap.Namespace(f.Obj.Namespace), f.Key)
			users, devices = strconv.Itoa(u), strconv.Itoa(d)
		case f.ShadowedBy != "":
			users, devices = "0", "0"
		}
		ready, msg := flagadmin.ReadyOf(f.Obj)
		parts := []string{}
		if msg != "" {
			parts = append(parts, msg)
		}
		for _, n := range f.Notes {
			if !strings.HasPrefix(n, "server: ") {
				parts = append(parts, n)
			}
		}
		row := []string{f.Key, string(f.Obj.Spec.Type), state, rollout, users, devices, ready, strings.Join(parts, "; ")}
		if allNamespaces {
			row = append([]string{f.Obj.Namespace}, row...)
		}
		writeRow(tw, row)
	}
	return tw.Flush()
}

// writeRow writes one tab-separated row; the tabwriter's Flush reports a failed write.
func writeRow(w io.Writer, cells []string) {
	_, _ = fmt.Fprintln(w, strings.Join(cells, "\t"))
}

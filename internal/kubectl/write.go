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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/gitops"
)

// FieldManager is the field manager of every write the plugin makes.
const FieldManager = "kubectl-flagops"

// Writer changes flagops objects with the caller's credentials. Every method sends the
// object's resourceVersion, when it has one, as a precondition, so that a change made since
// the plugin read the object is reported as a Conflict rather than overwritten; on success
// obj holds what the API server stored (or, with dryRun, would have stored).
type Writer interface {
	// Create creates obj; a concurrent create of the same name is AlreadyExists.
	Create(ctx context.Context, obj client.Object, dryRun bool) error
	// Apply server-side applies obj, which must carry its resourceVersion.
	Apply(ctx context.Context, obj client.Object, dryRun bool) error
	// Patch sends the JSON merge patch to obj; the patch carries the resourceVersion.
	Patch(ctx context.Context, obj client.Object, patch []byte, dryRun bool) error
	// Delete deletes obj if its UID and resourceVersion are still those given.
	Delete(ctx context.Context, obj client.Object, dryRun bool) error
}

// clientWriter is the Writer of a cluster.
type clientWriter struct{ c client.Client }

// newClientWriter returns a Writer that talks to the API server of the connection flags.
func newClientWriter(getter genericclioptions.RESTClientGetter) (Writer, error) {
	c, err := newClient(getter)
	if err != nil {
		return nil, err
	}
	return &clientWriter{c: c}, nil
}

func (w *clientWriter) Create(ctx context.Context, obj client.Object, dryRun bool) error {
	opts := []client.CreateOption{client.FieldOwner(FieldManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Create(ctx, obj, opts...)
}

func (w *clientWriter) Apply(ctx context.Context, obj client.Object, dryRun bool) error {
	u, err := toUnstructured(obj)
	if err != nil {
		return err
	}
	opts := []client.ApplyOption{client.FieldOwner(FieldManager), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := w.c.Apply(ctx, ac, opts...); err != nil {
		return err
	}
	return fromUnstructured(u.Object, obj)
}

func (w *clientWriter) Patch(ctx context.Context, obj client.Object, patch []byte, dryRun bool) error {
	opts := []client.PatchOption{client.FieldOwner(FieldManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), opts...)
}

func (w *clientWriter) Delete(ctx context.Context, obj client.Object, dryRun bool) error {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	opts := []client.DeleteOption{client.Preconditions{UID: &uid, ResourceVersion: &rv}}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Delete(ctx, obj, opts...)
}

// toUnstructured returns obj as an unstructured object with its apiVersion and kind.
func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("failed to convert %s: %w", obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	gvks, _, err := newScheme().ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("failed to find the kind of %T: %w", obj, err)
	}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

func fromUnstructured(m map[string]any, obj client.Object) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, obj); err != nil {
		return fmt.Errorf("failed to convert the server's answer: %w", err)
	}
	return nil
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

// nameInvalid matches what a DNS-1123 subdomain may not contain.
var nameInvalid = regexp.MustCompile(`[^a-z0-9.-]+`)

// subjectObjectName is the name of the override object the plugin writes for a subject:
// "user-ID" or "device-ID" when that is a valid object name (a DNS-1123 subdomain: lower
// case letters, digits, '-' and '.'), else the id made lower case with every other run of
// characters replaced by '-', cut to 40 characters, and followed by the first 10 hex digits
// of the SHA-256 of the id, so that ids that differ only in case or punctuation get
// different objects.
func subjectObjectName(kind evaluator.SubjectKind, id string) string {
	prefix := string(kind) + "-"
	if name := prefix + id; len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	s := nameInvalid.ReplaceAllString(strings.ToLower(id), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	s = strings.Trim(s, "-.")
	sum := sha256.Sum256([]byte(id))
	if s == "" {
		return prefix + hex.EncodeToString(sum[:5])
	}
	return prefix + s + "-" + hex.EncodeToString(sum[:5])
}

// exportObject prints obj as YAML for git: apiVersion, kind, name, namespace, labels and
// spec; nothing the API server or the manager writes.
func exportObject(w io.Writer, obj client.Object) error {
	u, err := toUnstructured(obj)
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

// rvPatch returns a JSON merge patch of spec that carries obj's resourceVersion as a
// precondition.
func rvPatch(obj client.Object, spec map[string]any) ([]byte, error) {
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": obj.GetResourceVersion()},
		"spec":     spec,
	})
}

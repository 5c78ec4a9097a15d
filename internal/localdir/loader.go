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

// Package localdir serves flags from a directory of manifests, with no cluster: it is the
// engine of `flagops serve --dir DIR`.
//
// A directory holds FeatureFlag, UserFlagOverride and DeviceFlagOverride manifests, the same
// ones as for kubectl: *.yaml, *.yml and *.json files (not in subdirectories; names starting
// with a dot, such as editors' lock and swap files, and kustomization.yaml are ignored),
// several documents per file. A Loader validates them exactly as a cluster would admit them:
//
//  1. strict decoding: unknown and duplicate fields are errors; then, for overrides, the
//     checks of the override-entries webhook, which the API server runs before the schema
//     (package internal/entries): no null value, no entry with its key alone, no repeated
//     key;
//  2. the CRD's OpenAPI schema, with defaults applied, its list types and its CEL rules,
//     using the API server's own libraries against the embedded CRDs (config/crd), and
//     the metadata rules (metadata.name is a DNS subdomain);
//  3. the admission policy and the FeatureFlag webhook: the spec compiles (types of
//     values, JSON Schema, RE2 patterns, numbers, versions);
//  4. the override webhook's cross-object rules within the directory, per namespace:
//     every entry names a FeatureFlag of the directory, override values match their
//     flag, no two active overrides of the same kind set the same (subject, flag), and no
//     two objects of a kind share a namespace and name.
//
// An object without metadata.namespace belongs to the default namespace: Options.Namespace,
// or else the one namespace that the files name if there is exactly one, or else "default".
// Expiry and schedules are not errors: the store follows the clock.
//
// The loaded set is applied to an *evaluator.Store as a diff against what the loader
// applied before, in one Apply batch, so change sets are exact. When any document has any
// problem nothing is applied: the store keeps the last good state, and Load returns a
// *LoadError naming the file, the document, the object and the field of each problem.
// Watch reloads on change, and applies a state only when two reads a debounce apart agree
// on it, so that a save caught half way is never served.
package localdir

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// DefaultNamespace is the namespace of objects without metadata.namespace when the files
// name no namespace, or several.
const DefaultNamespace = "default"

// DefaultDebounce is how long Watch waits after the last change in a burst before it
// reads the directory, and between the two reads that must agree before it applies them.
const DefaultDebounce = 100 * time.Millisecond

// Options configure a Loader.
type Options struct {
	// Namespace is the namespace of objects without metadata.namespace. Empty means the one
	// namespace named in the files if there is exactly one, else DefaultNamespace.
	Namespace string
	// Logger receives Watch's reports: every rejected file with its errors, and every
	// applied change. Nil discards them.
	Logger *slog.Logger
	// Debounce is how long Watch waits for a burst of changes (an editor writing temporary
	// files and renaming them) to end, and the least time between the two reads that must
	// agree before Watch applies a state. Zero means DefaultDebounce.
	Debounce time.Duration
	// Now is the clock that decides which overrides are active, for conflicts, and the
	// creation time of new overrides. Nil means time.Now. It is called on every read of
	// the directory, after the files are read, and on every apply.
	Now func() time.Time
}

// ObjectRef names an object and the file that defines it.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	File      string `json:"file,omitempty"`
}

func (r ObjectRef) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Result is the outcome of a successful Load.
type Result struct {
	// Revision is the store revision that serves the directory: the new one when
	// something changed, else the current one.
	Revision uint64
	// Objects lists every object of the directory, sorted by kind, namespace and name.
	Objects []ObjectRef
	// Upserted lists the objects that were new or changed; Deleted those that were removed.
	Upserted []ObjectRef
	Deleted  []ObjectRef
	// Changes is the store's change set; empty when nothing was applied.
	Changes evaluator.ChangeSet
}

// Loader loads a directory into a store. Its methods are safe for concurrent use.
type Loader struct {
	dir   string
	store *evaluator.Store
	opts  Options

	mu      sync.Mutex
	applied map[objKey]appliedObj
	nss     []string

	loaded atomic.Bool
}

type objKey struct {
	kind, namespace, name string
}

type appliedObj struct {
	fingerprint string
	created     time.Time
	// key is a flag's key.
	key string
}

// New returns a Loader of dir into store. It checks that dir is a directory and loads
// nothing yet.
func New(dir string, store *evaluator.Store, opts Options) (*Loader, error) {
	if store == nil {
		return nil, errors.New("localdir: nil store")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("localdir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("localdir: %s is not a directory", dir)
	}
	if _, err := schemas(); err != nil {
		return nil, fmt.Errorf("localdir: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Loader{dir: dir, store: store, opts: opts, applied: map[objKey]appliedObj{}}, nil
}

// Dir returns the directory.
func (l *Loader) Dir() string { return l.dir }

// Namespaces returns the namespaces of the objects last applied, sorted.
func (l *Loader) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.nss)
}

// isManifest reports whether a file name is one that the loader reads. Kustomize's own
// files are skipped, so that a kustomize directory such as config/samples can be served as
// it is.
func isManifest(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(name) {
	case "kustomization.yaml", "kustomization.yml":
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Load reads and validates the directory and, when every document is valid, applies it to
// the store as a diff against the last good state. On any problem nothing is applied and
// the error is a *LoadError listing them all (or the error reading the directory).
//
// Load applies what one read finds, even a file that an editor is half way through
// saving; Watch applies only states that two reads agree on.
func (l *Loader) Load() (Result, error) {
	files, err := l.readFiles()
	if err != nil {
		return Result{}, err
	}
	return l.applyFiles(files)
}

// Loaded reports whether a state of the directory has been applied: by Load, or by Watch
// once the directory settled with no problem in it.
func (l *Loader) Loaded() bool { return l.loaded.Load() }

// file is one manifest file as a read of the directory found it.
type file struct {
	path string
	data []byte
	err  error // from reading it
}

// readFiles reads every manifest file of the directory, in name order. A file removed
// while the directory is read is left out: the watcher sees the removal and reads again.
func (l *Loader) readFiles() ([]file, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("localdir: read directory: %w", err)
	}
	var files []file
	for _, e := range entries {
		if !isManifest(e.Name()) {
			continue
		}
		path := filepath.Join(l.dir, e.Name())
		if !e.Type().IsRegular() {
			// Follow symbolic links to files; skip directories and the like.
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		files = append(files, file{path: path, data: data, err: err})
	}
	return files, nil
}

// digest identifies the contents of a read: two reads with the same digest found the same
// files with the same bytes (or the same read errors).
func digest(files []file) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range files {
		body := f.data
		if f.err != nil {
			body = []byte("error: " + f.err.Error())
		}
		// Lengths first, so that no two different sets of files hash the same input.
		// A hash.Hash's Write never returns an error.
		h.Write(fmt.Appendf(nil, "%d:%s%d:", len(f.path), f.path, len(body)))
		h.Write(body)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// applyFiles validates files and, when they have no problem, applies them.
func (l *Loader) applyFiles(files []file) (Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	objs, err := l.parse(context.Background(), files)
	if err != nil {
		return Result{}, err
	}
	return l.apply(objs)
}

// parse decodes and validates the files of one read.
func (l *Loader) parse(ctx context.Context, files []file) ([]*object, error) {
	var docs []*document
	var errs []FileError
	for _, f := range files {
		if f.err != nil {
			errs = append(errs, FileError{File: f.path, Err: fmt.Errorf("read: %w", f.err)})
			continue
		}
		d, fe := decodeFile(f.path, f.data)
		docs = append(docs, d...)
		errs = append(errs, fe...)
	}

	ns := l.defaultNamespace(docs)
	var objs []*object
	// Flags that exist but are invalid: overrides naming them are not reported again.
	broken := map[[2]string]bool{}
	for _, d := range docs {
		o, fe := d.validate(ctx, ns)
		if len(fe) > 0 {
			errs = append(errs, fe...)
			if d.kind == kindFeatureFlag {
				broken[[2]string{cmp.Or(d.namespace, ns), d.flagKey()}] = true
			}
			continue
		}
		objs = append(objs, o)
	}
	errs = append(errs, crossCheck(objs, broken, l.opts.Now())...)
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b FileError) int {
			return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Doc, b.Doc))
		})
		return nil, &LoadError{Errors: errs}
	}
	return objs, nil
}

func (l *Loader) defaultNamespace(docs []*document) string {
	if l.opts.Namespace != "" {
		return l.opts.Namespace
	}
	found := ""
	for _, d := range docs {
		switch {
		case d.namespace == "" || d.namespace == found:
		case found == "":
			found = d.namespace
		default:
			return DefaultNamespace
		}
	}
	return cmp.Or(found, DefaultNamespace)
}

// crossCheck applies the override webhook's rules to the set: duplicate names, entries for
// unknown flags, values that fail their flag, and conflicts between active overrides.
func crossCheck(objs []*object, broken map[[2]string]bool, now time.Time) []FileError {
	var errs []FileError
	seen := map[objKey]*object{}
	flags := map[[2]string]*object{}
	var overrides []*object
	for _, o := range objs {
		k := objKey{o.kind, o.namespace, o.name}
		if first := seen[k]; first != nil {
			errs = append(errs, o.doc.fail("metadata.name", &field.Error{
				Type: field.ErrorTypeDuplicate, Field: "metadata.name", BadValue: o.name,
				Detail: fmt.Sprintf("%s %s/%s is also defined in %s, document %d", o.kind, o.namespace, o.name, first.doc.file, first.doc.index)}))
			continue
		}
		seen[k] = o
		if o.kind == kindFeatureFlag {
			fk := [2]string{o.namespace, o.key}
			if first := flags[fk]; first != nil {
				path := adapt.FlagKeyField(o.flag)
				errs = append(errs, o.doc.fail(path, &field.Error{
					Type: field.ErrorTypeDuplicate, Field: path, BadValue: o.key,
					Detail: fmt.Sprintf("FeatureFlag %s/%s (%s, document %d) already has this key, so FeatureFlag %s/%s cannot: keys are unique in a namespace",
						first.namespace, first.name, first.doc.file, first.doc.index, o.namespace, o.name)}))
				continue
			}
			flags[fk] = o
		} else {
			overrides = append(overrides, o)
		}
	}

	type pair struct {
		kind                    evaluator.SubjectKind
		namespace, subject, key string
	}
	claimed := map[pair]*object{}
	for _, o := range overrides {
		active := (o.spec.Enabled == nil || *o.spec.Enabled) &&
			(o.spec.ExpiresAt == nil || now.Before(o.spec.ExpiresAt.Time))
		for i, e := range o.spec.Flags {
			path := field.NewPath("spec", "flags").Index(i)
			fk := [2]string{o.namespace, e.Key}
			f := flags[fk]
			if f == nil {
				if !broken[fk] {
					errs = append(errs, o.doc.fail(path.Child("key").String(), &field.Error{
						Type: field.ErrorTypeNotFound, Field: path.Child("key").String(), BadValue: e.Key,
						Detail: fmt.Sprintf("no FeatureFlag has the key %q in namespace %q", e.Key, o.namespace)}))
				}
				continue
			}
			if servesValue(e) {
				if err := f.compiled.CheckValue(e.Value.Raw); err != nil {
					errs = append(errs, o.doc.fail(path.Child("value").String(),
						field.Invalid(path.Child("value"), shownValue(e.Value.Raw), fmt.Sprintf("flag %q: %v", e.Key, err))))
					continue
				}
			}
			if !active {
				continue
			}
			p := pair{o.subjectKind, o.namespace, o.subject, e.Key}
			if other := claimed[p]; other != nil {
				errs = append(errs, o.doc.fail(path.Child("key").String(), &field.Error{
					Type: field.ErrorTypeDuplicate, Field: path.Child("key").String(), BadValue: e.Key,
					Detail: fmt.Sprintf("%s %q (%s, document %d) already overrides flag %q for %s %q; only one %s per %s and flag can apply",
						other.kind, other.name, other.doc.file, other.doc.index, e.Key, o.subjectKind, o.subject, o.kind, o.subjectKind)}))
				continue
			}
			claimed[p] = o
		}
	}
	return errs
}

// servesValue reports whether an entry serves its own value, which must then match the
// flag: enabled false serves the off value whatever value says, and null is no value.
func servesValue(e v1.FlagOverrideEntry) bool {
	if e.Enabled != nil && !*e.Enabled {
		return false
	}
	if e.Value == nil {
		return false
	}
	t := bytes.TrimSpace(e.Value.Raw)
	return len(t) != 0 && string(t) != "null"
}

// maxShownValue caps the size of a bad value quoted in a message, in bytes of JSON.
const maxShownValue = 256

func shownValue(raw []byte) any {
	if len(raw) > maxShownValue {
		return field.OmitValueType{}
	}
	return json.RawMessage(raw)
}

// apply diffs objs against the last good state and applies the difference.
func (l *Loader) apply(objs []*object) (Result, error) {
	now := l.opts.Now()
	desired := make(map[objKey]appliedObj, len(objs))
	var res Result
	var flagOps, ovOps, delOps []evaluator.Op
	nsSet := map[string]struct{}{}
	slices.SortFunc(objs, func(a, b *object) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name))
	})
	for _, o := range objs {
		k := objKey{o.kind, o.namespace, o.name}
		ref := ObjectRef{Kind: o.kind, Namespace: o.namespace, Name: o.name, File: o.doc.file}
		res.Objects = append(res.Objects, ref)
		nsSet[o.namespace] = struct{}{}
		prev, had := l.applied[k]
		cur := appliedObj{created: now}
		if had {
			cur.created = prev.created
		}
		var op evaluator.Op
		var err error
		if o.kind == kindFeatureFlag {
			cur.key = o.key
			cur.fingerprint, err = fingerprint(o.flag.Spec)
			op = evaluator.UpsertCompiledFlag(o.namespace, o.compiled)
		} else {
			ov := o.override
			cur.fingerprint, err = fingerprint(ov)
			ov.CreatedAt = cur.created
			op = evaluator.UpsertOverride(ov)
		}
		if err != nil {
			return Result{}, fmt.Errorf("localdir: %s: %w", ref, err)
		}
		desired[k] = cur
		if had && prev.fingerprint == cur.fingerprint {
			continue
		}
		res.Upserted = append(res.Upserted, ref)
		if o.kind == kindFeatureFlag {
			flagOps = append(flagOps, op)
		} else {
			ovOps = append(ovOps, op)
		}
	}
	// A flag key is deleted from the store when no flag has it any more: its object was
	// removed, or (in a file, unlike in a cluster) its key was edited.
	keys := map[[2]string]bool{}
	for k, a := range desired {
		if k.kind == kindFeatureFlag {
			keys[[2]string{k.namespace, a.key}] = true
		}
	}
	var removed []objKey
	for k, a := range l.applied {
		if d, ok := desired[k]; !ok {
			removed = append(removed, k)
		} else if k.kind == kindFeatureFlag && d.key != a.key && !keys[[2]string{k.namespace, a.key}] {
			delOps = append(delOps, evaluator.DeleteFlag(k.namespace, a.key))
		}
	}
	slices.SortFunc(removed, func(a, b objKey) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name))
	})
	for _, k := range removed {
		res.Deleted = append(res.Deleted, ObjectRef{Kind: k.kind, Namespace: k.namespace, Name: k.name})
		switch k.kind {
		case kindFeatureFlag:
			if key := l.applied[k].key; !keys[[2]string{k.namespace, key}] {
				delOps = append(delOps, evaluator.DeleteFlag(k.namespace, key))
			}
		case kindUserOverride:
			delOps = append(delOps, evaluator.DeleteOverride(evaluator.SubjectUser, k.namespace, k.name))
		default:
			delOps = append(delOps, evaluator.DeleteOverride(evaluator.SubjectDevice, k.namespace, k.name))
		}
	}

	ops := slices.Concat(flagOps, ovOps, delOps)
	if len(ops) == 0 {
		res.Revision = l.store.Snapshot().Revision()
	} else {
		snap, cs, err := l.store.Apply(ops...)
		if err != nil {
			return Result{}, fmt.Errorf("localdir: apply: %w", err)
		}
		res.Revision, res.Changes = snap.Revision(), cs
	}
	l.applied = desired
	l.nss = make([]string, 0, len(nsSet))
	for ns := range nsSet {
		l.nss = append(l.nss, ns)
	}
	slices.Sort(l.nss)
	l.loaded.Store(true)
	return res, nil
}

// fingerprint identifies what an object makes the store serve.
func fingerprint(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	return string(b), nil
}

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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// MaxEntries is the most KEY=VALUE entries one set takes, and the most entries an override
// object holds (spec.flags' maxItems): seed 000's batch limit.
const MaxEntries = 32

// maxReason is the longest spec.reason the API accepts.
const maxReason = 500

const setExample = `
# Give user alice the new dashboard and a theme for a week, with a reason for the audit trail
%[1]s set --user alice beta.dashboard=true theme=sepia --expires-in 7d --reason "pilot customer (TICKET-1234)"

# Values take the flag's type: true, 42, "text" (or text, for a String flag), {"json":1}
%[1]s set --user alice limits.page-size=100 banner='{"text":"Hello"}'

# Clear one key in the same batch (KEY=null); the last of repeated keys wins
%[1]s set --user alice theme=null beta.dashboard=false beta.dashboard=true

# A device override (it beats the user's on that device)
%[1]s set --device tab-1 --device-class tablet theme=contrast

# Check with the API server without storing, or print the YAML for git
%[1]s set --user alice theme=sepia --dry-run=server
%[1]s set --user alice theme=sepia --export`

// setOptions are the options of the set command.
type setOptions struct {
	*globals
	ctxFlags  contextFlags
	write     writeFlags
	expiresIn string
	expiresAt string
	reason    string
	output    string

	namespace string
	subject   subject
	ctx       evaluator.Context
	// entries are the assignments, the last of repeated keys kept, in the order of their
	// first appearance; a nil value clears the key.
	entries []assignment
	expiry  func(now time.Time) *metav1.Time
}

// assignment is one KEY=VALUE of set, before the value is typed by its flag.
type assignment struct {
	key  string
	text string
	// clear is true for KEY=null.
	clear bool
}

func newSetCommand(g *globals, ex func(string) string) *cobra.Command {
	o := &setOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "set (--user USER | --device DEVICE --device-class CLASS) KEY=VALUE... [--expires-in 7d | --expires-at TIME] [--reason TEXT]",
		Short: "Set per-user or per-device flag values (an override)",
		Long: `Set flag values for one user (or one device) in one batch, as seed 000's
per-user runbook does: up to 32 KEY=VALUE entries, the last of repeated keys
wins, KEY=null clears that key. Each value is parsed to its flag's type
(true, 42, "text", {"json":1}; a String flag also takes bare text) and
checked against the flag's schema with the server's evaluator before
anything is written; a bad value is named by its key.

The values go into the subject's override object, user-ID (or device-ID; an
id that is not a valid object name gets a name made from it and a hash of
it), which set creates, or updates with server-side apply (field manager
kubectl-flagops) and its resourceVersion, so that a change made in between
is reported as a conflict. --expires-in, --expires-at and --reason are the
object's, for all the keys in it. A key that another of the subject's active
override objects already sets is refused: change it there, or clear it.

Prints the resulting effective value of every flag for the context, like
seed 000's {ok, flags}.`,
		Example: ex(setExample),
		RunE:    runE(o),
	}
	o.ctxFlags.addFlags(cmd)
	o.write.addFlags(cmd, true)
	f := cmd.Flags()
	f.StringVar(&o.expiresIn, "expires-in", "", "The override expires after this duration (e.g. 90m, 24h, 7d).")
	f.StringVar(&o.expiresAt, "expires-at", "", "The override expires at this time (RFC 3339, e.g. 2030-01-31T00:00:00Z).")
	f.StringVar(&o.reason, "reason", "", "Why the override exists, for operators and the audit trail (at most 500 characters).")
	f.StringVarP(&o.output, "output", "o", "", "Output format: json or yaml. The default is a table.")
	return cmd
}

// keyPattern is spec.flags[].key's pattern.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Complete reads the namespace and the assignments.
func (o *setOptions) Complete(_ *cobra.Command, args []string) error {
	var err error
	if o.namespace, err = o.globals.namespace(); err != nil {
		return err
	}
	o.entries, err = parseAssignments(args)
	return err
}

// parseAssignments reads KEY=VALUE arguments: at most MaxEntries, each key a valid flag key;
// the last of repeated keys wins, in the place of the first.
func parseAssignments(args []string) ([]assignment, error) {
	if len(args) == 0 {
		return nil, errors.New("at least one KEY=VALUE is required")
	}
	if len(args) > MaxEntries {
		return nil, fmt.Errorf("%d entries: at most %d KEY=VALUE entries in one set", len(args), MaxEntries)
	}
	var out []assignment
	for _, arg := range args {
		key, text, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("%s: want KEY=VALUE (KEY=null clears the key)", strconv.Quote(arg))
		}
		if !keyPattern.MatchString(key) || len(key) > 253 {
			return nil, fmt.Errorf("%s: %s is not a flag key (letters, digits, '.', '_' and '-', starting with a letter or digit)", strconv.Quote(arg), strconv.Quote(key))
		}
		a := assignment{key: key, text: text, clear: strings.TrimSpace(text) == "null"}
		if i := slices.IndexFunc(out, func(x assignment) bool { return x.key == key }); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out, nil
}

// Validate checks the subject, the expiry, the reason and the output, without the cluster.
func (o *setOptions) Validate() error {
	var err error
	if o.subject, err = subjectOf(&o.ctxFlags); err != nil {
		return err
	}
	if o.ctx, err = o.ctxFlags.context(); err != nil {
		return err
	}
	if err := o.write.validate(); err != nil {
		return err
	}
	if o.expiry, err = expiryOf(o.expiresIn, o.expiresAt); err != nil {
		return err
	}
	if n := len([]rune(o.reason)); n > maxReason {
		return fmt.Errorf("--reason: %d characters, at most %d", n, maxReason)
	}
	return validateOutput(o.output)
}

// expiryOf reads --expires-in or --expires-at; nil when neither is given.
func expiryOf(in, at string) (func(time.Time) *metav1.Time, error) {
	switch {
	case in != "" && at != "":
		return nil, errors.New("--expires-in and --expires-at are exclusive")
	case in != "":
		d, err := parseDuration("--expires-in", in)
		if err != nil {
			return nil, err
		}
		return func(now time.Time) *metav1.Time {
			t := metav1.NewTime(now.Add(d).UTC().Truncate(time.Second))
			return &t
		}, nil
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, fmt.Errorf("--expires-at %s: want an RFC 3339 time, e.g. 2030-01-31T00:00:00Z", strconv.Quote(at))
		}
		return func(time.Time) *metav1.Time { mt := metav1.NewTime(t.UTC()); return &mt }, nil
	}
	return nil, nil
}

// Run checks every value against its flag, computes the new override and writes it.
func (o *setOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	now := o.now()
	name := subjectObjectName(o.subject.kind, o.subject.id)
	cur, exists := findOverride(l.objs, o.subject.kind, o.namespace, name)
	if err := o.checkTarget(cur, exists, now); err != nil {
		return err
	}
	others := slices.DeleteFunc(o.subject.overridesOf(l.objs, o.namespace), func(x override) bool { return x.obj.GetName() == name })
	var next override
	if exists {
		next = cur.copyOf()
	} else {
		next = o.subject.newOverride(o.namespace, name)
		next.spec.Enabled = ptrBool(true)
	}
	changed, err := o.applyEntries(l, next, others, now)
	if err != nil {
		return err
	}
	if o.expiry != nil {
		next.spec.ExpiresAt = o.expiry(now)
		if !now.Before(next.spec.ExpiresAt.Time) {
			return fmt.Errorf("--expires-at %s: must be in the future", next.spec.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	if o.reason != "" {
		next.spec.Reason = o.reason
	}
	if len(next.spec.Flags) > MaxEntries {
		return fmt.Errorf("%s would hold %d entries: at most %d; clear some first", next.ref(o.subject), len(next.spec.Flags), MaxEntries)
	}
	if o.write.export {
		if len(next.spec.Flags) == 0 {
			return fmt.Errorf("%s would hold no entries: delete it from git instead", next.ref(o.subject))
		}
		return exportObject(o.Out, next.obj)
	}
	if exists {
		if err := o.write.guard(o.ErrOut, o.subject.kindName(), cur.obj, true); err != nil {
			return err
		}
	}
	w := &overrideWrite{globals: o.globals, flags: &o.write, subject: o.subject}
	action, result, err := w.write(cmd, cur, exists, next, now)
	if err != nil {
		return err
	}
	objs := replaced(l.objs, next.obj, action == "deleted")
	if result != nil {
		objs = replaced(l.objs, result, action == "deleted")
	}
	return printWriteResult(o.globals, o.output, o.namespace, o.ctx, objs,
		[]objectChange{{Object: resourceName(o.subject.kindName(), name), Action: action + o.write.suffix()}}, changed)
}

// checkTarget refuses to add values to the plugin's object of the subject when they would
// not apply: the object belongs to another subject, is disabled, or has expired (unless a
// new expiry is given).
func (o *setOptions) checkTarget(cur override, exists bool, now time.Time) error {
	if !exists {
		return nil
	}
	s := wrapSubject(cur)
	if s != o.subject {
		return fmt.Errorf("%s belongs to %s, not %s: rename or delete it", cur.ref(o.subject), s, o.subject)
	}
	if cur.spec.Enabled != nil && !*cur.spec.Enabled {
		return fmt.Errorf("%s is disabled (spec.enabled is false), so values set in it would not apply; enable it, or clear it first", cur.ref(o.subject))
	}
	if cur.spec.ExpiresAt != nil && !now.Before(cur.spec.ExpiresAt.Time) && o.expiry == nil {
		return fmt.Errorf("%s expired at %s, so values set in it would not apply; give a new expiry with --expires-in or --expires-at",
			cur.ref(o.subject), cur.spec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// wrapSubject returns the subject of an override object.
func wrapSubject(o override) subject {
	switch x := o.obj.(type) {
	case *v1.DeviceFlagOverride:
		return subject{kind: evaluator.SubjectDevice, id: x.Spec.DeviceID}
	case *v1.UserFlagOverride:
		return subject{kind: evaluator.SubjectUser, id: x.Spec.UserID}
	}
	return subject{}
}

// applyEntries checks every assignment against its flag and applies it to next: a value
// replaces the key's entry, null removes it. It returns the keys whose entry changed.
func (o *setOptions) applyEntries(l *loaded, next override, others []override, now time.Time) ([]string, error) {
	var changed []string
	for _, a := range o.entries {
		for _, x := range others {
			if x.entry(a.key) >= 0 && x.active(now) {
				return nil, fmt.Errorf("%s: %s is already overridden for it by %s; change it there, or clear it first (clear %s %s)",
					a.key, o.subject, x.ref(o.subject), subjectFlag(o.subject), a.key)
			}
		}
		i := next.entry(a.key)
		if a.clear {
			if i < 0 {
				return nil, fmt.Errorf("%s: %s has no override for it in %s, so null has nothing to clear", a.key, o.subject, next.ref(o.subject))
			}
			next.spec.Flags = slices.Delete(next.spec.Flags, i, i+1)
			changed = append(changed, a.key)
			continue
		}
		raw, err := typedValue(l, o.namespace, a)
		if err != nil {
			return nil, err
		}
		e := v1.FlagOverrideEntry{Key: a.key, Value: &apiextensionsv1.JSON{Raw: raw}}
		if i >= 0 {
			if equality.Semantic.DeepEqual(next.spec.Flags[i], e) {
				continue
			}
			next.spec.Flags[i] = e
		} else {
			next.spec.Flags = append(next.spec.Flags, e)
		}
		changed = append(changed, a.key)
	}
	slices.Sort(changed)
	return changed, nil
}

// subjectFlag is the flag that names the subject on the command line, e.g. --user alice.
func subjectFlag(s subject) string {
	if s.kind == evaluator.SubjectDevice {
		return "--device " + s.id
	}
	return "--user " + s.id
}

// typedValue parses an assignment's text to its flag's type and checks it against the flag's
// schema with the evaluator, as the admission webhook does. Text that is not JSON is taken as
// a string for a String flag.
func typedValue(l *loaded, ns string, a assignment) (json.RawMessage, error) {
	f := l.claimant(ns, a.key)
	if f == nil {
		return nil, flagNotFound(a.key, ns)
	}
	compiled, err := evaluator.Compile(f.key, adapt.FlagSpec(f.obj))
	if err != nil {
		return nil, fmt.Errorf("%s: the value cannot be checked because the flag's spec does not compile; fix the flag first: %s", a.key, oneLine(err.Error()))
	}
	raw := []byte(strings.TrimSpace(a.text))
	if compiled.Type() == evaluator.TypeString && (!json.Valid(raw) || len(raw) == 0 || raw[0] != '"') {
		raw, _ = json.Marshal(a.text)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s=%s: %s flag needs a JSON %s value", a.key, a.text, strings.ToLower(string(compiled.Type())), strings.ToLower(string(compiled.Type())))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", a.key, a.text, err)
	}
	if err := compiled.CheckValue(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("%s=%s: %s", a.key, a.text, oneLine(err.Error()))
	}
	return buf.Bytes(), nil
}

func ptrBool(b bool) *bool { return &b }

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

package flagadmin

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

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// MaxEntries is the most entries one set takes, and the most entries an override object
// holds (spec.flags' maxItems): seed 000's batch limit.
const MaxEntries = 32

// MaxReason is the longest spec.reason the API accepts, in characters.
const MaxReason = 500

// KeyPattern is spec.flags[].key's pattern.
var KeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidKey reports whether key is a valid flag key.
func ValidKey(key string) bool { return KeyPattern.MatchString(key) && len(key) <= 253 }

// Assignment is one entry of a set, before the value is typed by its flag.
type Assignment struct {
	Key  string
	Text string
	// Clear is true for a null value: the key's entry is removed.
	Clear bool
}

// ParseAssignments reads KEY=VALUE arguments: at most MaxEntries, each key a valid flag key;
// the last of repeated keys wins, in the place of the first; KEY=null clears the key.
func ParseAssignments(args []string) ([]Assignment, error) {
	if len(args) == 0 {
		return nil, errors.New("at least one KEY=VALUE is required")
	}
	if len(args) > MaxEntries {
		return nil, fmt.Errorf("%d entries: at most %d KEY=VALUE entries in one set", len(args), MaxEntries)
	}
	var out []Assignment
	for _, arg := range args {
		key, text, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("%s: want KEY=VALUE (KEY=null clears the key)", strconv.Quote(arg))
		}
		if !ValidKey(key) {
			return nil, fmt.Errorf("%s: %s is not a flag key (letters, digits, '.', '_' and '-', starting with a letter or digit)", strconv.Quote(arg), strconv.Quote(key))
		}
		out = AddAssignment(out, Assignment{Key: key, Text: text, Clear: strings.TrimSpace(text) == "null"})
	}
	return out, nil
}

// AddAssignment adds a to the batch: the last of repeated keys wins, in the place of the
// first.
func AddAssignment(batch []Assignment, a Assignment) []Assignment {
	if i := slices.IndexFunc(batch, func(x Assignment) bool { return x.Key == a.Key }); i >= 0 {
		batch[i] = a
		return batch
	}
	return append(batch, a)
}

// CheckReason checks a reason's length; input names it in the error.
func CheckReason(input, reason string) error {
	if n := len([]rune(reason)); n > MaxReason {
		return fmt.Errorf("%s: %d characters, at most %d", input, n, MaxReason)
	}
	return nil
}

// Hints name a front end's inputs in PlanSet's errors: the plugin's flags, the console's
// fields.
type Hints struct {
	// NewExpiry says how to give a new expiry, e.g. "give a new expiry with --expires-in or
	// --expires-at".
	NewExpiry string
	// ExpiresAt names the input of the expiry, e.g. "--expires-at".
	ExpiresAt string
	// Clear says how to clear key for the subject, e.g. "clear --user alice theme".
	Clear func(s Subject, key string) string
}

// SetRequest is a set: seed 000's batch of entries for one subject of a namespace.
type SetRequest struct {
	Namespace string
	Subject   Subject
	Entries   []Assignment
	// Expiry, when not nil, returns the new expiry of the object given the time now.
	Expiry func(now time.Time) *metav1.Time
	// Reason, when not empty, is the object's new reason (checked by CheckReason).
	Reason string
	Hints  Hints
}

// SetPlan is what a set writes: Next in place of Cur (the subject's own object as listed,
// when Exists).
type SetPlan struct {
	Cur    Override
	Exists bool
	Next   Override
	// Changed are the keys whose entry changes, sorted.
	Changed []string
}

// PlanSet checks every entry of req against its flag and computes the subject's own object
// after the set. It writes nothing. An entry may not set a key that another active override
// object of the subject holds, and the subject's own object must apply (belong to the
// subject, be enabled, not have expired unless a new expiry is given).
func PlanSet(l *Loaded, req *SetRequest, now time.Time) (*SetPlan, error) {
	name := SubjectObjectName(req.Subject.Kind, req.Subject.ID)
	p := &SetPlan{}
	p.Cur, p.Exists = FindOverride(l.Objs, req.Subject.Kind, req.Namespace, name)
	if err := checkTarget(req, p.Cur, p.Exists, now); err != nil {
		return nil, err
	}
	others := slices.DeleteFunc(req.Subject.OverridesOf(l.Objs, req.Namespace), func(x Override) bool { return x.Obj.GetName() == name })
	if p.Exists {
		p.Next = p.Cur.CopyOf()
	} else {
		p.Next = req.Subject.NewOverride(req.Namespace, name)
		enabled := true
		p.Next.Spec.Enabled = &enabled
	}
	var err error
	if p.Changed, err = applyEntries(l, req, p.Next, others, now); err != nil {
		return nil, err
	}
	if req.Expiry != nil {
		p.Next.Spec.ExpiresAt = req.Expiry(now)
		if !now.Before(p.Next.Spec.ExpiresAt.Time) {
			return nil, fmt.Errorf("%s %s: must be in the future", req.Hints.ExpiresAt, p.Next.Spec.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	if req.Reason != "" {
		p.Next.Spec.Reason = req.Reason
	}
	if len(p.Next.Spec.Flags) > MaxEntries {
		return nil, fmt.Errorf("%s would hold %d entries: at most %d; clear some first", p.Next.Ref(req.Subject), len(p.Next.Spec.Flags), MaxEntries)
	}
	return p, nil
}

// checkTarget refuses to add values to the subject's own object when they would not apply:
// the object belongs to another subject, is disabled, or has expired (unless a new expiry is
// given).
func checkTarget(req *SetRequest, cur Override, exists bool, now time.Time) error {
	if !exists {
		return nil
	}
	if s := cur.Subject(); s != req.Subject {
		return fmt.Errorf("%s belongs to %s, not %s: rename or delete it", cur.Ref(req.Subject), s, req.Subject)
	}
	if cur.Spec.Enabled != nil && !*cur.Spec.Enabled {
		return fmt.Errorf("%s is disabled (spec.enabled is false), so values set in it would not apply; enable it, or clear it first", cur.Ref(req.Subject))
	}
	if cur.Spec.ExpiresAt != nil && !now.Before(cur.Spec.ExpiresAt.Time) && req.Expiry == nil {
		return fmt.Errorf("%s expired at %s, so values set in it would not apply; %s",
			cur.Ref(req.Subject), cur.Spec.ExpiresAt.UTC().Format(time.RFC3339), req.Hints.NewExpiry)
	}
	return nil
}

// applyEntries checks every entry against its flag and applies it to next: a value replaces
// the key's entry, null removes it. It returns the keys whose entry changed, sorted.
func applyEntries(l *Loaded, req *SetRequest, next Override, others []Override, now time.Time) ([]string, error) {
	var changed []string
	for _, a := range req.Entries {
		for _, x := range others {
			if x.Entry(a.Key) >= 0 && x.Active(now) {
				return nil, fmt.Errorf("%s: %s is already overridden for it by %s; change it there, or clear it first (%s)",
					a.Key, req.Subject, x.Ref(req.Subject), req.Hints.Clear(req.Subject, a.Key))
			}
		}
		i := next.Entry(a.Key)
		if a.Clear {
			if i < 0 {
				return nil, fmt.Errorf("%s: %s has no override for it in %s, so null has nothing to clear", a.Key, req.Subject, next.Ref(req.Subject))
			}
			next.Spec.Flags = slices.Delete(next.Spec.Flags, i, i+1)
			changed = append(changed, a.Key)
			continue
		}
		raw, err := TypedValue(l, req.Namespace, a)
		if err != nil {
			return nil, err
		}
		e := v1.FlagOverrideEntry{Key: a.Key, Value: &apiextensionsv1.JSON{Raw: raw}}
		if i >= 0 {
			if equality.Semantic.DeepEqual(next.Spec.Flags[i], e) {
				continue
			}
			next.Spec.Flags[i] = e
		} else {
			next.Spec.Flags = append(next.Spec.Flags, e)
		}
		changed = append(changed, a.Key)
	}
	slices.Sort(changed)
	return changed, nil
}

// TypedValue parses an assignment's text to its flag's type and checks it against the flag's
// schema with the evaluator, as the admission webhook does. Text that is not JSON is taken as
// a string for a String flag. Errors start with the key.
func TypedValue(l *Loaded, ns string, a Assignment) (json.RawMessage, error) {
	f := l.Claimant(ns, a.Key)
	if f == nil {
		return nil, FlagNotFound(a.Key, ns)
	}
	compiled, err := evaluator.Compile(f.Key, adapt.FlagSpec(f.Obj))
	if err != nil {
		return nil, fmt.Errorf("%s: the value cannot be checked because the flag's spec does not compile; fix the flag first: %s", a.Key, OneLine(err.Error()))
	}
	raw := []byte(strings.TrimSpace(a.Text))
	if compiled.Type() == evaluator.TypeString && (!json.Valid(raw) || len(raw) == 0 || raw[0] != '"') {
		raw, _ = json.Marshal(a.Text)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s=%s: %s flag needs a JSON %s value", a.Key, a.Text, strings.ToLower(string(compiled.Type())), strings.ToLower(string(compiled.Type())))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", a.Key, a.Text, err)
	}
	if err := compiled.CheckValue(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("%s=%s: %s", a.Key, a.Text, OneLine(err.Error()))
	}
	return buf.Bytes(), nil
}

// ParseDuration reads a positive duration: Go's form (90m, 24h, 1h30m) or whole days (7d).
// input names it in the error.
func ParseDuration(input, s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && !strings.ContainsAny(days, "hmsuµn") {
		var n int64
		n, err = strconv.ParseInt(days, 10, 32)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %s is not a positive duration (e.g. 90m, 24h, 7d)", input, strconv.Quote(s))
	}
	return d, nil
}

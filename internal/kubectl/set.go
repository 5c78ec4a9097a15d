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
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

// MaxEntries is the most KEY=VALUE entries one set takes, and the most entries an override
// object holds (spec.flags' maxItems): seed 000's batch limit.
const MaxEntries = flagadmin.MaxEntries

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
	// first appearance.
	entries []flagadmin.Assignment
	expiry  func(now time.Time) *metav1.Time
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

// Complete reads the namespace and the assignments.
func (o *setOptions) Complete(_ *cobra.Command, args []string) error {
	var err error
	if o.namespace, err = o.globals.namespace(); err != nil {
		return err
	}
	o.entries, err = flagadmin.ParseAssignments(args)
	return err
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
	if err := flagadmin.CheckReason("--reason", o.reason); err != nil {
		return err
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

// setHints name the plugin's flags in the errors of a set.
var setHints = flagadmin.Hints{
	NewExpiry: "give a new expiry with --expires-in or --expires-at",
	ExpiresAt: "--expires-at",
	Clear:     func(s subject, key string) string { return "clear " + subjectFlag(s) + " " + key },
}

// Run checks every value against its flag, computes the new override and writes it.
func (o *setOptions) Run(cmd *cobra.Command) error {
	l, err := loadNamespace(cmd, o.globals, o.namespace)
	if err != nil {
		return err
	}
	now := o.now()
	p, err := flagadmin.PlanSet(l, &flagadmin.SetRequest{
		Namespace: o.namespace, Subject: o.subject, Entries: o.entries, Expiry: o.expiry, Reason: o.reason, Hints: setHints,
	}, now)
	if err != nil {
		return err
	}
	if o.write.export {
		if len(p.Next.Spec.Flags) == 0 {
			return fmt.Errorf("%s would hold no entries: delete it from git instead", p.Next.Ref(o.subject))
		}
		return exportObject(o.Out, p.Next.Obj)
	}
	if p.Exists {
		if err := o.write.guard(o.ErrOut, o.subject.KindName(), p.Cur.Obj, true); err != nil {
			return err
		}
	}
	w := &overrideWrite{globals: o.globals, flags: &o.write, subject: o.subject}
	action, result, err := w.write(cmd, p.Cur, p.Exists, p.Next, now)
	if err != nil {
		return err
	}
	objs := flagadmin.Replaced(l.Objs, p.Next.Obj, action == flagadmin.ActionDeleted)
	if result != nil {
		objs = flagadmin.Replaced(l.Objs, result, action == flagadmin.ActionDeleted)
	}
	return printWriteResult(o.globals, o.output, o.namespace, o.ctx, objs,
		[]objectChange{{Object: resourceName(o.subject.KindName(), p.Next.Obj.GetName()), Action: action + o.write.suffix()}}, p.Changed)
}

// subjectFlag is the flag that names the subject on the command line, e.g. --user alice.
func subjectFlag(s subject) string {
	if s.Kind == evaluator.SubjectDevice {
		return "--device " + s.ID
	}
	return "--user " + s.ID
}

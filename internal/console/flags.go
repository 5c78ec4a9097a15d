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

package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
)

// flagsData is the flag list's (seed 003's table with seed 004's role badges and seed 001's
// override counts).
type flagsData struct {
	Query    string
	Rows     []flagRow
	Total    int
	CanPatch bool
}

// flagRow is one FeatureFlag.
type flagRow struct {
	Name, Key, Type, Description string
	// Enabled and Rollout are what is served now, after the schedule steps that took
	// effect; RolloutValue is spec.rollout.percentage, for the input.
	Enabled      bool
	Rollout      string
	RolloutValue string
	Roles        []string
	// Users and Devices count the override entries that apply now.
	Users, Devices int
	Ready, Message string
	Notes          []string
	// GitOps names the tool that manages the flag: then it is read-only here.
	GitOps          string
	ResourceVersion string
	// Editable is true when the user may patch flags and no GitOps tool manages this one.
	Editable bool
}

// readNamespace returns the request's namespace, the user's client and the namespace's
// objects as the user reads them, loaded; on failure it has shown the error, and ok is false.
func (s *Server) readNamespace(w http.ResponseWriter, r *http.Request, sess *session) (ns string, c client.Client, l *flagadmin.Loaded, ok bool) {
	ns, err := namespaceOf(r)
	if err != nil {
		s.renderError(w, r, sess, http.StatusBadRequest, err)
		return "", nil, nil, false
	}
	if c, err = s.backend.client(sess, requestExtras(r)); err != nil {
		s.renderError(w, r, sess, http.StatusInternalServerError, err)
		return "", nil, nil, false
	}
	objs, err := flagadmin.NewLister(c).List(r.Context(), ns)
	if err == nil {
		l, err = flagadmin.Load(objs, s.opts.now)
	}
	if err != nil {
		s.apiError(w, r, sess, err)
		return "", nil, nil, false
	}
	return ns, c, l, true
}

// gitopsRefusal is why obj (named ref) is not written, when a GitOps tool or Helm manages
// it; "" when none does.
func gitopsRefusal(ref string, obj metav1.Object) string {
	tool := gitops.Tool(obj)
	if tool == "" {
		return ""
	}
	return fmt.Sprintf("%s is managed by %s (%s), which would revert the change at its next sync: change it in git", ref, tool, gitops.Marker(obj))
}

func (s *Server) flagsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showFlags(w, r, sess, http.StatusOK, "")
}

// showFlags renders the flag list as the API server shows it to the user now, with status and
// an error message (none when empty).
func (s *Server) showFlags(w http.ResponseWriter, r *http.Request, sess *session, status int, errMsg string) {
	ns, _, l, ok := s.readNamespace(w, r, sess)
	if !ok {
		return
	}
	canPatch, err := s.backend.allowed(r.Context(), sess, ns, "patch", "featureflags")
	if err != nil {
		s.opts.Logger.Error(err, "Access review failed; showing no controls")
	}
	q := r.URL.Query().Get("q")
	if r.Method != http.MethodGet {
		q = r.PostFormValue("q")
	}
	data := flagsData{Query: q, CanPatch: canPatch}
	snap := l.Store.Snapshot()
	now := s.opts.now()
	for _, f := range l.NamespaceFlags(ns) {
		data.Total++
		row := flagRowOf(f, snap.Namespace(ns), now, canPatch)
		if matches(&row, q) {
			data.Rows = append(data.Rows, row)
		}
	}
	p := &page{Title: "Flags in " + ns, User: sess.user, Namespace: ns, Nav: "flags", Error: errMsg, Data: data}
	if errMsg == "" {
		p.Notice = flagNotice(r.URL.Query(), r.URL.Query().Get("flag"), l, ns, now)
	}
	s.render(w, status, "flags", p)
}

// flagRowOf returns the row of a flag as served now: the master switch and rollout after the
// schedule steps that took effect, the override entries that apply, Ready.
func flagRowOf(f *flagadmin.FlagEntry, n evaluator.Namespace, now time.Time, canPatch bool) flagRow {
	row := flagRow{
		Name: f.Obj.Name, Key: f.Key, Type: string(f.Obj.Spec.Type), Description: f.Obj.Spec.Description,
		Roles: f.Obj.Spec.AllowedRoles, Notes: f.Notes, ResourceVersion: f.Obj.ResourceVersion,
		GitOps: gitops.Tool(f.Obj),
	}
	row.Enabled, row.Rollout = flagadmin.FlagState(&f.Obj.Spec, now)
	if f.Obj.Spec.Rollout != nil {
		row.RolloutValue = fmt.Sprint(f.Obj.Spec.Rollout.Percentage)
	}
	if f.Served {
		row.Users, row.Devices = flagadmin.OverrideCounts(n, f.Key)
	}
	row.Ready, row.Message = flagadmin.ReadyOf(f.Obj)
	row.Editable = canPatch && row.GitOps == ""
	return row
}

// matches reports whether the row has q (case-insensitive) in its key, name, type,
// description or roles; an empty q matches every row.
func matches(row *flagRow, q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	for _, s := range append([]string{row.Key, row.Name, row.Type, row.Description}, row.Roles...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// flagNotice says what the last change of a flag did, from the query the change redirected
// with (?done=on|off|rollout&flag=NAME), and warns when a schedule step decides the field
// now. It is made from fixed words, so a crafted link cannot make the page say anything.
func flagNotice(q url.Values, name string, l *flagadmin.Loaded, ns string, now time.Time) string {
	done := q.Get("done")
	var f *flagadmin.FlagEntry
	for _, e := range l.NamespaceFlags(ns) {
		if e.Obj.Name == name {
			f = e
		}
	}
	if f == nil {
		return ""
	}
	var change flagadmin.FlagChange
	var msg string
	switch done {
	case "on", "off":
		change = flagadmin.SwitchChange(done == "on")
		msg = fmt.Sprintf("%s: master switch turned %s.", f.Key, done)
	case "rollout":
		if f.Obj.Spec.Rollout == nil {
			return ""
		}
		change = flagadmin.RolloutChange(f.Obj.Spec.Rollout.Percentage)
		msg = fmt.Sprintf("%s: rollout set to %d%%.", f.Key, f.Obj.Spec.Rollout.Percentage)
	default:
		return ""
	}
	if now, ok := change.ScheduleDecides(f.Obj, now); ok {
		msg += fmt.Sprintf(" A schedule step that has taken effect sets %s to %s, which is served until a later step or a change of spec.schedule.", change.Field, now)
	}
	return msg
}

func (s *Server) setEnabled(w http.ResponseWriter, r *http.Request, sess *session) {
	s.changeFlag(w, r, sess, func() (flagadmin.FlagChange, string, error) {
		switch r.PostFormValue("enabled") {
		case "true":
			return flagadmin.SwitchChange(true), "on", nil
		case "false":
			return flagadmin.SwitchChange(false), "off", nil
		}
		return flagadmin.FlagChange{}, "", errors.New(`enabled: want "true" or "false"`)
	})
}

func (s *Server) setRollout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.changeFlag(w, r, sess, func() (flagadmin.FlagChange, string, error) {
		v := strings.TrimSpace(r.PostFormValue("percentage"))
		p, ok := flagadmin.ParsePercent(v)
		if !ok {
			return flagadmin.FlagChange{}, "", fmt.Errorf("percentage %q: want a whole number from 0 to 100", v)
		}
		return flagadmin.RolloutChange(p), "rollout", nil
	})
}

// changeFlag patches one field of a FeatureFlag as the user: a merge patch of that field with
// the resourceVersion the page showed, so that a change made meanwhile is a conflict. A flag
// that a GitOps tool manages is not changed.
func (s *Server) changeFlag(w http.ResponseWriter, r *http.Request, sess *session, parse func() (flagadmin.FlagChange, string, error)) {
	ns, err := namespaceOf(r)
	if err != nil {
		s.renderError(w, r, sess, http.StatusBadRequest, err)
		return
	}
	change, done, err := parse()
	if err != nil {
		s.showFlags(w, r, sess, http.StatusUnprocessableEntity, err.Error())
		return
	}
	rv := r.PostFormValue("rv")
	if rv == "" {
		s.showFlags(w, r, sess, http.StatusUnprocessableEntity, "rv: the form has no resourceVersion; reload the page and try again")
		return
	}
	c, err := s.backend.client(sess, requestExtras(r))
	if err != nil {
		s.renderError(w, r, sess, http.StatusInternalServerError, err)
		return
	}
	name := r.PathValue("name")
	f := &v1.FeatureFlag{}
	if err := c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, f); err != nil {
		s.writeFailed(w, r, sess, err, "FeatureFlag "+ns+"/"+name, s.showFlags)
		return
	}
	if msg := gitopsRefusal("FeatureFlag "+ns+"/"+name, f); msg != "" {
		s.showFlags(w, r, sess, http.StatusUnprocessableEntity, msg)
		return
	}
	// The resourceVersion the page showed is the patch's precondition: the API server
	// refuses it with a conflict when the flag changed meanwhile.
	if !change.Same(&f.Spec) {
		patch, err := flagadmin.RVPatch(rv, change.Patch(f.Spec.DeepCopy()))
		if err != nil {
			s.renderError(w, r, sess, http.StatusInternalServerError, err)
			return
		}
		if err := flagadmin.NewWriter(c, FieldManager).Patch(r.Context(), f, patch, false); err != nil {
			s.writeFailed(w, r, sess, err, "FeatureFlag "+ns+"/"+name, s.showFlags)
			return
		}
	}
	target := "/ns/" + ns + "/flags?" + url.Values{"done": {done}, "flag": {name}, "q": {r.PostFormValue("q")}}.Encode()
	if r.PostFormValue("return") == "flag" {
		target = "/ns/" + ns + "/flags/" + name + "?" + url.Values{"done": {done}}.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// changedMeanwhile is the message of a write refused because the object changed since the
// page showed it.
func changedMeanwhile(obj string) string {
	return obj + " changed meanwhile (someone else saved first): nothing was written. The page shows the current state; make the change again if it is still wanted."
}

// writeFailed shows the page again (with show, which reads the current state) after a write
// the API server refused: a conflict as "changed meanwhile", a refusal with the API server's
// words (Forbidden names the verb and resource).
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, sess *session, err error, obj string,
	show func(http.ResponseWriter, *http.Request, *session, int, string)) {
	switch {
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		show(w, r, sess, http.StatusConflict, changedMeanwhile(obj))
	case apierrors.IsForbidden(err):
		show(w, r, sess, http.StatusForbidden, "The API server refused the change. "+describe(err))
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		show(w, r, sess, http.StatusUnprocessableEntity, "The API server refused the change. "+describe(err))
	case apierrors.IsNotFound(err):
		show(w, r, sess, http.StatusNotFound, describe(err))
	default:
		s.apiError(w, r, sess, err)
	}
}

// apiError shows an error of the API server (or of the client) on an error page, with the
// status that says what it is.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	status := http.StatusBadGateway
	var notInstalled *flagadmin.ErrNotInstalled
	switch {
	case apierrors.IsForbidden(err):
		status = http.StatusForbidden
	case apierrors.IsNotFound(err):
		status = http.StatusNotFound
	case apierrors.IsUnauthorized(err):
		status = http.StatusUnauthorized
	case errors.As(err, &notInstalled):
		status = http.StatusServiceUnavailable
	default:
		s.opts.Logger.Error(err, "Request to the API server failed")
	}
	s.renderError(w, r, sess, status, errors.New(describe(err)))
}

// describe renders an error on one line, an API server's as kubectl does.
func describe(err error) string {
	if line, ok := flagadmin.ServerError(err); ok {
		return line
	}
	return flagadmin.OneLine(err.Error())
}

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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
)

// subjectKind is what a subject page is about: a user (seed 000's Feature flags tab) or a
// device.
type subjectKind struct {
	kind     evaluator.SubjectKind
	path     string
	title    string
	resource string
}

var (
	userKind   = subjectKind{kind: evaluator.SubjectUser, path: "users", title: "User", resource: "userflagoverrides"}
	deviceKind = subjectKind{kind: evaluator.SubjectDevice, path: "devices", title: "Device", resource: "deviceflagoverrides"}
)

// subjectData is a subject page's: every flag's value for the subject, where it comes from,
// and the controls the user may use.
type subjectData struct {
	Kind, Title, ID string
	// Path is the page's path, Query its evaluation context (role and org of a user; class
	// and user of a device), which every link and form keeps.
	Path, Query string
	Context     evaluator.Context
	IsDevice    bool
	// NeedClass is true for a device page without its class: overrides apply only to
	// devices of an eligible class.
	NeedClass bool
	Rows      []subjectRow
	// CanEdit shows Edit; CanClear shows Clear override. The API server decides the write.
	CanEdit, CanClear bool
	// ReadOnly says why the subject's own override object cannot be changed here.
	ReadOnly string
	// Version is the resourceVersions of the subject's override objects as shown, so that a
	// save made after someone else's change is refused.
	Version string
	Form    subjectForm
}

// subjectForm is what the user entered, shown again when the save is refused.
type subjectForm struct {
	Key, Value, Expires, Reason string
}

// subjectRow is one flag's value for the subject.
type subjectRow struct {
	Key, Type string
	// Value is the compact JSON value, "" for none.
	Value string
	// SourceKind is the evaluator's resolution step; SourceLabel says it in words, Source
	// is the evaluator's source (e.g. user-override:shop/user-alice).
	SourceKind, SourceLabel, Source string
	Hidden                          bool
	Error                           string
	Notes                           []string
	// Expires and Reason are the deciding override's; OverrideObject names it, GitOps the
	// tool that manages it.
	Expires, Reason, OverrideObject, GitOps string
	// Overridden is true when one of the subject's objects has an entry for the key.
	Overridden bool
	EditURL    string
	Editing    bool
	Input      valueInput
}

// valueInput is the type-aware input of a flag's value: a switch for Boolean, a number, a
// text field, or a JSON editor for Object.
type valueInput struct {
	Kind    string // checkbox, number, text or json
	Value   string
	Checked bool
}

var sourceLabels = map[string]string{
	"default": "default", "rule": "rule", "rollout": "rollout", "schedule": "schedule", "allow-list": "allow-list",
	"user-override": "user override", "device-override": "device override", "role-gate": "role gate",
	"kill-switch": "kill switch", "error": "error",
}

// subjectOf returns the page's namespace, subject, path and evaluation context from the
// request.
func subjectOf(r *http.Request, kind subjectKind) (string, flagadmin.Subject, subjectData, error) {
	ns, err := namespaceOf(r)
	if err != nil {
		return "", flagadmin.Subject{}, subjectData{}, err
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 253 {
		return "", flagadmin.Subject{}, subjectData{}, fmt.Errorf("%s id: want 1 to 253 characters", strings.ToLower(kind.title))
	}
	q := r.URL.Query()
	d := subjectData{Kind: kind.path, Title: kind.title, ID: id, IsDevice: kind.kind == evaluator.SubjectDevice,
		Path: "/ns/" + ns + "/" + kind.path + "/" + url.PathEscape(id)}
	keep := url.Values{}
	if d.IsDevice {
		d.Context = evaluator.Context{DeviceID: id, DeviceClass: q.Get("class"), UserID: q.Get("user")}
		keep.Set("class", d.Context.DeviceClass)
		keep.Set("user", d.Context.UserID)
		d.NeedClass = d.Context.DeviceClass == ""
	} else {
		d.Context = evaluator.Context{UserID: id, Role: q.Get("role"), OrgID: q.Get("org")}
		keep.Set("role", d.Context.Role)
		keep.Set("org", d.Context.OrgID)
	}
	for k, v := range keep {
		if v[0] == "" {
			delete(keep, k)
		}
	}
	if len(keep) > 0 {
		d.Query = "?" + keep.Encode()
	}
	return ns, flagadmin.Subject{Kind: kind.kind, ID: id}, d, nil
}

// subjectFinder leads from the namespace's user or device form (?id=, and ?class= for a
// device) to the subject's page.
func (s *Server) subjectFinder(kind subjectKind) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		ns, err := namespaceOf(r)
		if err != nil {
			s.renderError(w, r, sess, http.StatusBadRequest, err)
			return
		}
		id := strings.TrimSpace(r.URL.Query().Get("id"))
		if id == "" {
			s.renderError(w, r, sess, http.StatusBadRequest, fmt.Errorf("id: enter a %s id", strings.ToLower(kind.title)))
			return
		}
		target := "/ns/" + ns + "/" + kind.path + "/" + url.PathEscape(id)
		if class := strings.TrimSpace(r.URL.Query().Get("class")); class != "" && kind == deviceKind {
			target += "?" + url.Values{"class": {class}}.Encode()
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

func (s *Server) subjectPage(kind subjectKind) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		s.showSubject(kind)(w, r, sess, http.StatusOK, "")
	}
}

// showSubject returns the renderer of a subject page: every flag's value for the subject as
// the API server shows the objects to the user now, with status and an error message.
func (s *Server) showSubject(kind subjectKind) func(http.ResponseWriter, *http.Request, *session, int, string) {
	return func(w http.ResponseWriter, r *http.Request, sess *session, status int, errMsg string) {
		_, subj, d, err := subjectOf(r, kind)
		if err != nil {
			s.renderError(w, r, sess, http.StatusBadRequest, err)
			return
		}
		ns, _, l, ok := s.readNamespace(w, r, sess)
		if !ok {
			return
		}
		s.subjectAccess(r, sess, ns, kind, subj, l, &d)
		if r.Method == http.MethodPost {
			d.Form = subjectForm{Key: r.PostFormValue("key"), Expires: r.PostFormValue("expires"), Reason: r.PostFormValue("reason")}
			d.Form.Value = lastValue(r, d.Form.Key)
		} else {
			d.Form.Key = r.URL.Query().Get("edit")
		}
		if !d.NeedClass {
			d.Rows = subjectRows(l, ns, subj, &d, s.opts.now())
		}
		p := &page{Title: kind.title + " " + subj.ID, User: sess.user, Namespace: ns, Nav: kind.path, Error: errMsg, Data: d}
		if errMsg == "" {
			p.Notice = subjectNotice(r.URL.Query())
		}
		s.render(w, status, "subject", p)
	}
}

// subjectAccess fills in which controls the user gets: Edit when the user may create and
// patch the subject's override kind in ns and no GitOps tool manages the subject's own
// object; Clear override when the user may patch them. The API server decides the write.
func (s *Server) subjectAccess(r *http.Request, sess *session, ns string, kind subjectKind, subj flagadmin.Subject, l *flagadmin.Loaded, d *subjectData) {
	allowed := func(verb string) bool {
		ok, err := s.backend.allowed(r.Context(), sess, ns, verb, kind.resource)
		if err != nil {
			s.opts.Logger.Error(err, "Access review failed; showing no controls", "verb", verb)
		}
		return ok
	}
	canPatch := allowed("patch")
	d.CanEdit = canPatch && allowed("create")
	d.CanClear = canPatch
	own, exists := flagadmin.FindOverride(l.Objs, subj.Kind, ns, flagadmin.SubjectObjectName(subj.Kind, subj.ID))
	if exists {
		if tool := gitops.Tool(own.Obj); tool != "" {
			d.CanEdit = false
			d.ReadOnly = fmt.Sprintf("%s is managed by %s (%s): its overrides are read-only here; change them in git.", own.Ref(subj), tool, gitops.Marker(own.Obj))
		}
	}
	d.Version = versionOf(subj.OverridesOf(l.Objs, ns))
}

// versionOf is the resourceVersions of override objects, by name.
func versionOf(ovs []flagadmin.Override) string {
	parts := make([]string, 0, len(ovs))
	for _, o := range ovs {
		parts = append(parts, o.Obj.GetName()+"="+o.Obj.GetResourceVersion())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// subjectRows evaluates every flag for the subject's context.
func subjectRows(l *flagadmin.Loaded, ns string, subj flagadmin.Subject, d *subjectData, now time.Time) []subjectRow {
	ovs := subj.OverridesOf(l.Objs, ns)
	byName := map[string]flagadmin.Override{}
	for _, o := range ovs {
		byName[o.Obj.GetName()] = o
	}
	view := flagadmin.Effective(l, ns, d.Context, now)
	rows := make([]subjectRow, 0, len(view.Flags))
	for _, f := range view.Flags {
		row := subjectRow{Key: f.Key, Value: string(f.Value), SourceKind: f.SourceKind, Source: f.Source, Hidden: f.Hidden, Notes: f.Notes,
			SourceLabel: sourceLabels[f.SourceKind]}
		if f.ErrorCode != "" {
			row.Error = f.ErrorCode + ": " + f.ErrorDetails
		}
		if name, ok := strings.CutPrefix(f.Source, "rule:"); ok {
			row.SourceLabel = "rule " + name
		}
		if e := l.Claimant(ns, f.Key); e != nil {
			row.Type = string(e.Obj.Spec.Type)
		}
		if o := f.Override; o != nil {
			row.Expires, row.Reason, row.OverrideObject = o.ExpiresAt, o.Reason, o.Namespace+"/"+o.Name
			if ov, ok := byName[o.Name]; ok && o.Kind == subj.Kind {
				row.GitOps = gitops.Tool(ov.Obj)
			}
		}
		for _, o := range ovs {
			if o.Entry(f.Key) >= 0 {
				row.Overridden = true
				if tool := gitops.Tool(o.Obj); tool != "" {
					row.GitOps = tool
				}
			}
		}
		q := url.Values{"edit": {f.Key}}
		if d.Query != "" {
			extra, _ := url.ParseQuery(d.Query[1:])
			for k, v := range extra {
				q[k] = v
			}
		}
		row.EditURL = d.Path + "?" + q.Encode() + "#editor"
		if row.Error == "" && d.CanEdit && d.Form.Key == f.Key {
			row.Editing = true
			row.Input = inputFor(row.Type, f.Value)
			if d.Form.Value != "" {
				row.Input.Value = d.Form.Value
				row.Input.Checked = d.Form.Value == "true"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// inputFor returns the input of a flag type, filled with the value now served.
func inputFor(typ string, raw json.RawMessage) valueInput {
	switch v1.FlagType(typ) {
	case v1.FlagTypeBoolean:
		return valueInput{Kind: "checkbox", Value: "true", Checked: string(raw) == "true"}
	case v1.FlagTypeNumber:
		return valueInput{Kind: "number", Value: string(raw)}
	case v1.FlagTypeString:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = ""
		}
		return valueInput{Kind: "text", Value: s}
	}
	var buf bytes.Buffer
	if len(raw) > 0 && json.Indent(&buf, raw, "", "  ") == nil {
		return valueInput{Kind: "json", Value: buf.String()}
	}
	return valueInput{Kind: "json", Value: string(raw)}
}

// subjectNotice says what the last save or clear changed, from the query it redirected with
// (?saved=KEYS or ?cleared=KEYS, only flag keys shown).
func subjectNotice(q url.Values) string {
	for _, x := range []struct{ param, verb string }{{"saved", "Saved"}, {"cleared", "Cleared the override of"}} {
		if !q.Has(x.param) {
			continue
		}
		var keys []string
		for _, k := range strings.Split(q.Get(x.param), ",") {
			if flagadmin.ValidKey(k) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return "Nothing changed: the values were already those."
		}
		return x.verb + " " + strings.Join(keys, ", ") + ". The values below are the new effective values."
	}
	return ""
}

// lastValue is the last value of key's field value.KEY: a Boolean switch sends false from a
// hidden field and then true when checked.
func lastValue(r *http.Request, key string) string {
	vs := r.PostForm["value."+key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// consoleHints name the console's fields in the errors of a save.
var consoleHints = flagadmin.Hints{
	NewExpiry: "give a new expiry in Expires",
	ExpiresAt: "expires",
	Clear:     func(_ flagadmin.Subject, key string) string { return "Clear override on the row of " + key },
}

// subjectSave applies seed 000's batch semantics to the subject's own override object: every
// key field with its value.KEY (the last of a repeated key wins, at most 32), an optional
// expiry and reason. Nothing is written unless every value passes its flag's schema, and the
// write carries the resourceVersion, so a change made meanwhile is refused.
func (s *Server) subjectSave(kind subjectKind) func(http.ResponseWriter, *http.Request, *session) {
	show := s.showSubject(kind)
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		ns, subj, d, err := subjectOf(r, kind)
		if err != nil {
			s.renderError(w, r, sess, http.StatusBadRequest, err)
			return
		}
		now := s.opts.now()
		req, err := saveRequest(r, ns, subj, now)
		if err != nil {
			show(w, r, sess, http.StatusUnprocessableEntity, err.Error())
			return
		}
		_, c, l, ok := s.readNamespace(w, r, sess)
		if !ok || !s.sameVersion(w, r, sess, show, subj, l, ns) {
			return
		}
		p, err := flagadmin.PlanSet(l, req, now)
		if err != nil {
			show(w, r, sess, http.StatusUnprocessableEntity, err.Error())
			return
		}
		if p.Exists {
			if msg := gitopsRefusal(p.Cur.Ref(subj), p.Cur.Obj); msg != "" {
				show(w, r, sess, http.StatusUnprocessableEntity, msg)
				return
			}
		}
		if _, _, err := flagadmin.WriteOverride(r.Context(), flagadmin.NewWriter(c, FieldManager), subj, p.Cur, p.Exists, p.Next, false); err != nil {
			s.writeFailed(w, r, sess, err, p.Next.Ref(subj), show)
			return
		}
		redirectSubject(w, r, &d, "saved", p.Changed)
	}
}

// saveRequest reads a save's form: the entries, the expiry (a duration such as 7d, or a time)
// and the reason. Errors name the field.
func saveRequest(r *http.Request, ns string, subj flagadmin.Subject, now time.Time) (*flagadmin.SetRequest, error) {
	keys := r.PostForm["key"]
	if len(keys) == 0 {
		return nil, errors.New("key: no flag to save")
	}
	if len(keys) > flagadmin.MaxEntries {
		return nil, fmt.Errorf("key: %d entries, at most %d in one save", len(keys), flagadmin.MaxEntries)
	}
	req := &flagadmin.SetRequest{Namespace: ns, Subject: subj, Hints: consoleHints}
	for _, k := range keys {
		if !flagadmin.ValidKey(k) {
			return nil, fmt.Errorf("key %s: not a flag key", strconv.Quote(k))
		}
		if _, ok := r.PostForm["value."+k]; !ok {
			return nil, fmt.Errorf("value.%s: missing", k)
		}
		req.Entries = flagadmin.AddAssignment(req.Entries, flagadmin.Assignment{Key: k, Text: lastValue(r, k)})
	}
	var err error
	if req.Expiry, err = parseExpiry(r.PostFormValue("expires"), now); err != nil {
		return nil, err
	}
	req.Reason = strings.TrimSpace(r.PostFormValue("reason"))
	if err := flagadmin.CheckReason("reason", req.Reason); err != nil {
		return nil, err
	}
	return req, nil
}

// parseExpiry reads the Expires field: empty (no new expiry), a duration from now (90m, 24h,
// 7d), or a time: RFC 3339, or a date and time (or a date) in UTC.
func parseExpiry(s string, now time.Time) (func(time.Time) *metav1.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if d, err := flagadmin.ParseDuration("expires", s); err == nil {
		t := metav1.NewTime(now.Add(d).UTC().Truncate(time.Second))
		return func(time.Time) *metav1.Time { return &t }, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if at, err := time.Parse(layout, s); err == nil {
			t := metav1.NewTime(at.UTC())
			return func(time.Time) *metav1.Time { return &t }, nil
		}
	}
	return nil, fmt.Errorf("expires %s: want a duration (90m, 24h, 7d) or a time (2030-01-31T00:00:00Z, or 2030-01-31 for midnight UTC)", strconv.Quote(s))
}

// subjectClear removes the subject's overrides of the keys given from every override object
// of the subject (flagadmin.PlanClear), unless a GitOps tool manages one of them or an object
// changed since the page showed it.
func (s *Server) subjectClear(kind subjectKind) func(http.ResponseWriter, *http.Request, *session) {
	show := s.showSubject(kind)
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		ns, subj, d, err := subjectOf(r, kind)
		if err != nil {
			s.renderError(w, r, sess, http.StatusBadRequest, err)
			return
		}
		keys := r.PostForm["key"]
		for _, k := range keys {
			if !flagadmin.ValidKey(k) {
				show(w, r, sess, http.StatusUnprocessableEntity, fmt.Sprintf("key %s: not a flag key", strconv.Quote(k)))
				return
			}
		}
		if len(keys) == 0 {
			show(w, r, sess, http.StatusUnprocessableEntity, "key: no flag to clear")
			return
		}
		_, c, l, ok := s.readNamespace(w, r, sess)
		if !ok || !s.sameVersion(w, r, sess, show, subj, l, ns) {
			return
		}
		changes, changed, err := flagadmin.PlanClear(l, ns, subj, keys)
		if err != nil {
			show(w, r, sess, http.StatusUnprocessableEntity, err.Error())
			return
		}
		for _, ch := range changes {
			if msg := gitopsRefusal(ch.Cur.Ref(subj), ch.Cur.Obj); msg != "" {
				show(w, r, sess, http.StatusUnprocessableEntity, msg)
				return
			}
		}
		wr := flagadmin.NewWriter(c, FieldManager)
		for i, ch := range changes {
			if _, _, err := flagadmin.WriteOverride(r.Context(), wr, subj, ch.Cur, true, ch.Next, false); err != nil {
				if i > 0 {
					err = fmt.Errorf("%w (the changes of %d objects before it were written)", err, i)
				}
				s.writeFailed(w, r, sess, err, ch.Cur.Ref(subj), show)
				return
			}
		}
		redirectSubject(w, r, &d, "cleared", changed)
	}
}

// sameVersion reports whether the subject's override objects are as the page showed them
// (the form's version); if not, it has shown the current state with a 409.
func (s *Server) sameVersion(w http.ResponseWriter, r *http.Request, sess *session, show func(http.ResponseWriter, *http.Request, *session, int, string),
	subj flagadmin.Subject, l *flagadmin.Loaded, ns string) bool {
	if versionOf(subj.OverridesOf(l.Objs, ns)) == r.PostFormValue("version") {
		return true
	}
	show(w, r, sess, http.StatusConflict, changedMeanwhile("The overrides of "+subj.String()+" in "+ns))
	return false
}

// redirectSubject sends the browser back to the subject's page after a write, saying which
// keys changed.
func redirectSubject(w http.ResponseWriter, r *http.Request, d *subjectData, param string, keys []string) {
	q := url.Values{}
	if d.Query != "" {
		q, _ = url.ParseQuery(d.Query[1:])
	}
	q.Set(param, strings.Join(keys, ","))
	http.Redirect(w, r, d.Path+"?"+q.Encode(), http.StatusSeeOther)
}

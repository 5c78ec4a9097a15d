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
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
)

// overridesData is the Overrides page's (seed 001's User Overrides panel): every override
// entry of the namespace, expiring soonest first, filtered, with bulk enable and disable of
// their objects.
type overridesData struct {
	Query, Kind, Within string
	Rows                []overridesRow
	Total               int
	CanPatch            bool
}

// overridesRow is one override entry, with its object's selection value for the bulk
// forms (KIND/NAME/RESOURCEVERSION) and the pages of its subject and flag.
type overridesRow struct {
	overrideView
	Select   string
	FlagPath string
	GitOps   string
	// ID is unique on the page: the object's kind, name and the key.
	ID string
}

func (s *Server) overridesPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showOverrides(w, r, sess, http.StatusOK, "")
}

// showOverrides renders the Overrides page as the API server shows the objects to the user
// now, with status and an error message.
func (s *Server) showOverrides(w http.ResponseWriter, r *http.Request, sess *session, status int, errMsg string) {
	ns, _, l, ok := s.readNamespace(w, r, sess)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := overridesData{Query: q.Get("q"), Kind: q.Get("kind"), Within: q.Get("within")}
	var within time.Duration
	if d.Within != "" {
		var err error
		if within, err = flagadmin.ParseDuration("within", d.Within); err != nil && errMsg == "" {
			status, errMsg = http.StatusUnprocessableEntity, err.Error()
		}
	}
	for _, res := range []string{userKind.resource, deviceKind.resource} {
		ok, err := s.backend.allowed(r.Context(), sess, ns, "patch", res)
		if err != nil {
			s.opts.Logger.Error(err, "Access review failed; showing no controls")
		}
		d.CanPatch = d.CanPatch || ok
	}
	now := s.opts.now()
	objs := map[string]flagadmin.Override{}
	for _, kind := range []evaluator.SubjectKind{evaluator.SubjectUser, evaluator.SubjectDevice} {
		for _, o := range flagadmin.OverridesIn(l.Objs, kind, ns) {
			objs[string(kind)+"/"+o.Obj.GetName()] = o
		}
	}
	for _, e := range flagadmin.OverrideEntries(l) {
		if e.Namespace != ns {
			continue
		}
		d.Total++
		row := overridesRow{overrideView: overrideViewOf(ns, e), ID: string(e.Kind) + "-" + e.Name + "-" + e.Key}
		if o, ok := objs[string(e.Kind)+"/"+e.Name]; ok {
			row.Select = string(e.Kind) + "/" + e.Name + "/" + o.Obj.GetResourceVersion()
			row.GitOps = gitops.Tool(o.Obj)
		}
		if f := l.Claimant(ns, e.Key); f != nil {
			row.FlagPath = "/ns/" + ns + "/flags/" + f.Obj.Name
		}
		if keep(&row, &d, within, now) {
			d.Rows = append(d.Rows, row)
		}
	}
	// Expiring soonest first (RFC 3339 in UTC sorts as time), then the rest in list order.
	slices.SortStableFunc(d.Rows, func(a, b overridesRow) int {
		switch {
		case a.ExpiresAt == "" || b.ExpiresAt == "":
			return cmp.Compare(btoi(a.ExpiresAt == ""), btoi(b.ExpiresAt == ""))
		}
		return strings.Compare(a.ExpiresAt, b.ExpiresAt)
	})
	p := &page{Title: "Overrides in " + ns, User: sess.user, Namespace: ns, Nav: "overrides", Error: errMsg, Data: d}
	if errMsg == "" {
		p.Notice = bulkNotice(q)
	}
	s.render(w, status, "overrides", p)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keep reports whether a row passes the filters: the text (subject, flag, object or reason),
// the kind, and an expiry within the duration (for entries that apply).
func keep(row *overridesRow, d *overridesData, within time.Duration, now time.Time) bool {
	if d.Kind != "" && string(row.Kind) != d.Kind {
		return false
	}
	if within > 0 {
		exp, err := time.Parse(time.RFC3339Nano, row.ExpiresAt)
		if err != nil || row.State != evaluator.OverrideApplies || exp.After(now.Add(within)) {
			return false
		}
	}
	q := strings.ToLower(strings.TrimSpace(d.Query))
	return q == "" || slices.ContainsFunc([]string{row.SubjectID, row.Key, row.Name, row.Reason}, func(s string) bool {
		return strings.Contains(strings.ToLower(s), q)
	})
}

// bulkNotice says what the last bulk change did, from the query it redirected with
// (?bulk=enabled|disabled&n=COUNT), in fixed words.
func bulkNotice(q url.Values) string {
	n := q.Get("n")
	if _, err := fmt.Sscanf(n, "%d", new(int)); err != nil {
		return ""
	}
	switch q.Get("bulk") {
	case "enabled", "disabled":
		return fmt.Sprintf("%s %s override objects.", strings.ToUpper(q.Get("bulk")[:1])+q.Get("bulk")[1:], n)
	}
	return ""
}

// bulkSwitch turns the selected override objects on or off (spec.enabled): every selection
// (KIND/NAME/RESOURCEVERSION) is checked first, against the objects as the user reads them
// now and the GitOps guard, and each is then written as a merge patch of spec.enabled with
// its resourceVersion, so a change made since the page was shown is refused.
func (s *Server) bulkSwitch(w http.ResponseWriter, r *http.Request, sess *session) {
	var on bool
	switch r.PostFormValue("enabled") {
	case "true":
		on = true
	case "false":
	default:
		s.showOverrides(w, r, sess, http.StatusUnprocessableEntity, `enabled: want "true" or "false"`)
		return
	}
	selected := r.PostForm["select"]
	if len(selected) == 0 {
		s.showOverrides(w, r, sess, http.StatusUnprocessableEntity, "select: no override selected")
		return
	}
	ns, c, l, ok := s.readNamespace(w, r, sess)
	if !ok {
		return
	}
	type target struct {
		o  flagadmin.Override
		rv string
	}
	var targets []target
	seen := map[string]bool{}
	for _, sel := range selected {
		parts := strings.Split(sel, "/")
		if len(parts) != 3 || (parts[0] != string(evaluator.SubjectUser) && parts[0] != string(evaluator.SubjectDevice)) {
			s.showOverrides(w, r, sess, http.StatusUnprocessableEntity, fmt.Sprintf("select %q: want KIND/NAME/RESOURCEVERSION", sel))
			return
		}
		if seen[parts[0]+"/"+parts[1]] {
			continue
		}
		seen[parts[0]+"/"+parts[1]] = true
		o, found := flagadmin.FindOverride(l.Objs, evaluator.SubjectKind(parts[0]), ns, parts[1])
		if !found {
			s.showOverrides(w, r, sess, http.StatusConflict, changedMeanwhile(fmt.Sprintf("The %s override %s/%s", parts[0], ns, parts[1])))
			return
		}
		ref := o.Ref(o.Subject())
		if o.Obj.GetResourceVersion() != parts[2] {
			s.showOverrides(w, r, sess, http.StatusConflict, changedMeanwhile(ref))
			return
		}
		if msg := gitopsRefusal(ref, o.Obj); msg != "" {
			s.showOverrides(w, r, sess, http.StatusUnprocessableEntity, msg)
			return
		}
		targets = append(targets, target{o: o, rv: parts[2]})
	}
	wr := flagadmin.NewWriter(c, FieldManager)
	for i, t := range targets {
		patch, err := flagadmin.RVPatch(t.rv, map[string]any{"enabled": on})
		if err == nil {
			err = wr.Patch(r.Context(), t.o.Obj, patch, false)
		}
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("%w (the %d objects before it were changed)", err, i)
			}
			s.writeFailed(w, r, sess, err, t.o.Ref(t.o.Subject()), s.showOverrides)
			return
		}
	}
	verb := "disabled"
	if on {
		verb = "enabled"
	}
	back := url.Values{"bulk": {verb}, "n": {fmt.Sprint(len(targets))}}
	for _, k := range []string{"q", "kind", "within"} {
		if v := r.PostFormValue(k); v != "" {
			back.Set(k, v)
		}
	}
	http.Redirect(w, r, "/ns/"+ns+"/overrides?"+back.Encode(), http.StatusSeeOther)
}

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
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

// flagData is a flag page's: its row of the list, its spec in words, its override entries,
// and the simulator.
type flagData struct {
	Row       flagRow
	Spec      specView
	Overrides []overrideView
	History   historyView
	Sim       simView
}

// historyView is the flag's recent history: the Events the manager recorded about it and
// its overrides, newest first (flagadmin.History, as `kubectl flagops history KEY`).
type historyView struct {
	Entries []historyRow
	// More counts the older entries left out.
	More int
	// Error says why there is no history, e.g. the user may not list Events.
	Error string
}

// historyRow is one entry: an audited change with its actor and the values of its keys
// before and after, or another Event with its message.
type historyRow struct {
	flagadmin.HistoryEntry
	// What is the change's action, or the Event's reason.
	What    string
	Changes []keyChange
	// Warning is true for an Event of type Warning.
	Warning bool
}

// keyChange is a key's value before and after a change, compact JSON; "" for absent.
type keyChange struct {
	Key, Before, After string
}

// maxHistory is the most history entries the flag page shows; kubectl flagops history shows
// them all.
const maxHistory = 50

// specView is a FeatureFlag's spec, each value as compact JSON.
type specView struct {
	Value, OffValue, Schema string
	AllowUsers, AllowOrgs   []string
	Rules                   []ruleView
	BucketBy                string
	Schedule                []stepView
	DeviceClasses           []string
}

type ruleView struct {
	Name       string
	Conditions []string
	Value      string
}

type stepView struct {
	At, Changes string
	// Past is true for a step that has taken effect.
	Past bool
}

// overrideView is one override entry of the flag, with the page of its subject.
type overrideView struct {
	flagadmin.OverrideEntry
	SubjectPath string
	Serves      string
}

// simView is the simulator: a context in, the value, the source and the decision trace out.
type simView struct {
	User, Device, Class, Org, Role, Attrs string
	Ran                                   bool
	Error                                 string
	Value, Source, SourceLabel, Reason    string
	Steps                                 []evaluator.TraceStep
}

// flagPage shows one flag: its spec, its override entries, and the simulator (?sim=1 with a
// context) with the evaluator's decision trace, as `kubectl flagops explain` shows it.
func (s *Server) flagPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ns, c, l, ok := s.readNamespace(w, r, sess)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var f *flagadmin.FlagEntry
	for _, e := range l.NamespaceFlags(ns) {
		if e.Obj.Name == name {
			f = e
		}
	}
	if f == nil {
		s.renderError(w, r, sess, http.StatusNotFound, fmt.Errorf("FeatureFlag %s/%s not found", ns, name))
		return
	}
	canPatch, err := s.backend.allowed(r.Context(), sess, ns, "patch", "featureflags")
	if err != nil {
		s.opts.Logger.Error(err, "Access review failed; showing no controls")
	}
	now := s.opts.now()
	d := flagData{Row: flagRowOf(f, l.Store.Namespace(ns), now, canPatch), Spec: specOf(&f.Obj.Spec, now)}
	for _, e := range flagadmin.OverrideEntries(l) {
		if e.Namespace == ns && e.Key == f.Key {
			d.Overrides = append(d.Overrides, overrideViewOf(ns, e))
		}
	}
	d.History = s.history(r, c, l, ns, f.Key)
	if q := r.URL.Query(); q.Get("sim") != "" {
		d.Sim = simulate(l, ns, f, q)
	}
	p := &page{Title: "Flag " + f.Key, User: sess.user, Namespace: ns, Nav: "flags", Data: d,
		Notice: flagNotice(r.URL.Query(), name, l, ns, now)}
	s.render(w, http.StatusOK, "flag", p)
}

// history reads namespace ns's Events as the user, with c, and returns those about flag key.
// Events the user may not list leave the page without a history and say why.
func (s *Server) history(r *http.Request, c client.Client, l *flagadmin.Loaded, ns, key string) historyView {
	events, err := flagadmin.ListEvents(r.Context(), c, ns)
	if err != nil {
		if !apierrors.IsForbidden(err) {
			s.opts.Logger.Error(err, "Failed to list events", "namespace", ns)
		}
		return historyView{Error: "The history cannot be shown: " + describe(err)}
	}
	entries, _ := flagadmin.History(l.Objs, events, ns, flagadmin.HistoryQuery{Key: key})
	var v historyView
	if len(entries) > maxHistory {
		v.More, entries = len(entries)-maxHistory, entries[:maxHistory]
	}
	for _, e := range entries {
		row := historyRow{HistoryEntry: e, What: cmp.Or(e.Action, e.Reason), Warning: e.Type == corev1.EventTypeWarning}
		if e.Before != nil || e.After != nil {
			for _, k := range e.Keys {
				row.Changes = append(row.Changes, keyChange{Key: k, Before: shownValue(e.Before[k]), After: shownValue(e.After[k])})
			}
		}
		v.Entries = append(v.Entries, row)
	}
	return v
}

// shownValue is a value of a change as the history shows it: "" when absent.
func shownValue(v json.RawMessage) string {
	if s := string(v); s != "null" {
		return s
	}
	return ""
}

// overrideViewOf returns an override entry of namespace ns with what it serves, in words,
// and the page of its subject.
func overrideViewOf(ns string, e flagadmin.OverrideEntry) overrideView {
	kind := userKind
	if e.Kind == evaluator.SubjectDevice {
		kind = deviceKind
	}
	serves := "(" + e.Mode + ")"
	if e.Mode == "value" {
		serves = string(e.Value)
	}
	return overrideView{OverrideEntry: e, Serves: serves, SubjectPath: "/ns/" + ns + "/" + kind.path + "/" + url.PathEscape(e.SubjectID)}
}

func specOf(spec *v1.FeatureFlagSpec, now time.Time) specView {
	v := specView{DeviceClasses: spec.DeviceClasses}
	if spec.Type == v1.FlagTypeBoolean {
		v.Value, v.OffValue = "true", "false" // implied when omitted, and the only values allowed
	}
	if spec.Value != nil {
		v.Value = string(spec.Value.Raw)
	}
	if spec.OffValue != nil {
		v.OffValue = string(spec.OffValue.Raw)
	}
	if spec.Schema != nil {
		v.Schema = string(spec.Schema.Raw)
	}
	if a := spec.AllowList; a != nil {
		v.AllowUsers, v.AllowOrgs = a.Users, a.Orgs
	}
	for i, rule := range spec.Rules {
		rv := ruleView{Name: rule.Name}
		if rv.Name == "" {
			rv.Name = fmt.Sprintf("rule %d", i+1)
		}
		for _, c := range rule.Match {
			rv.Conditions = append(rv.Conditions, strings.TrimSpace(c.Attribute+" "+string(c.Operator)+" "+strings.Join(c.Values, ", ")))
		}
		if rule.Value != nil {
			rv.Value = string(rule.Value.Raw)
		}
		v.Rules = append(v.Rules, rv)
	}
	if spec.Rollout != nil {
		v.BucketBy = spec.Rollout.BucketBy
	}
	steps := slices.Clone(spec.Schedule)
	slices.SortStableFunc(steps, func(a, b v1.ScheduleStep) int { return a.At.Compare(b.At.Time) })
	for _, st := range steps {
		var changes []string
		if st.Enabled != nil {
			changes = append(changes, fmt.Sprintf("enabled %v", *st.Enabled))
		}
		if st.RolloutPercentage != nil {
			changes = append(changes, fmt.Sprintf("rollout %d%%", *st.RolloutPercentage))
		}
		if st.Value != nil {
			changes = append(changes, "value "+string(st.Value.Raw))
		}
		v.Schedule = append(v.Schedule, stepView{At: st.At.UTC().Format(time.RFC3339), Changes: strings.Join(changes, ", "), Past: !st.At.After(now)})
	}
	return v
}

// wellKnown are the attributes the simulator's own fields set.
var wellKnown = []string{evaluator.AttrUserID, evaluator.AttrDeviceID, evaluator.AttrDeviceClass, evaluator.AttrOrgID, evaluator.AttrRole, evaluator.AttrTargetingKey}

// simulate explains the flag for the simulator's context: sim-user, sim-device with
// sim-class, sim-org, sim-role, and sim-attrs, one NAME=VALUE a line (values are strings,
// as in the server's query parameters).
func simulate(l *flagadmin.Loaded, ns string, f *flagadmin.FlagEntry, q url.Values) simView {
	v := simView{User: q.Get("sim-user"), Device: q.Get("sim-device"), Class: q.Get("sim-class"), Org: q.Get("sim-org"),
		Role: q.Get("sim-role"), Attrs: q.Get("sim-attrs"), Ran: true}
	ctx := evaluator.Context{UserID: v.User, DeviceID: v.Device, DeviceClass: v.Class, OrgID: v.Org, Role: v.Role}
	if v.Device != "" && v.Class == "" {
		v.Error = "device class: required with a device: overrides apply only to devices of an eligible class"
		return v
	}
	for _, line := range strings.Split(v.Attrs, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok || name == "":
			v.Error = fmt.Sprintf("attributes: %q: want NAME=VALUE", line)
		case slices.Contains(wellKnown, name):
			v.Error = fmt.Sprintf("attributes: %s is set by its own field", name)
		case ctx.Attributes[name] != nil:
			v.Error = fmt.Sprintf("attributes: %s is given twice", name)
		}
		if v.Error != "" {
			return v
		}
		if ctx.Attributes == nil {
			ctx.Attributes = map[string]any{}
		}
		ctx.Attributes[name] = val
	}
	if !f.Served {
		v.Error = "the flag's spec does not compile, so it is not evaluated: " + flagadmin.OneLine(f.CompileErr.Error())
		return v
	}
	tr := l.Store.Namespace(ns).Explain(f.Key, ctx)
	res := tr.Result
	v.Steps, v.Source, v.Reason = tr.Steps, res.Source, res.Reason.String()
	v.SourceLabel = sourceLabels[res.SourceKind()]
	v.Value = string(res.Raw)
	return v
}

package evaluator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resolution stages in order, as reported by Explain.
const (
	stageFlag = iota
	stageRoleGate
	stageDevice
	stageUser
	stageAllowUser
	stageAllowOrg
	stageSchedule
	stageKill
	stageRules
	stageRollout
	stageDefault
	numStages
)

var stageNames = [numStages]string{
	"flag", "role-gate", "device-override", "user-override", SourceAllowListUser, SourceAllowListOrg,
	"schedule", "kill-switch", "rules", "rollout", "default",
}

// TraceStep is one step of a decision trace.
type TraceStep struct {
	// Step names the resolution step: flag, role-gate, device-override,
	// user-override, allow-list:user, allow-list:org, schedule, kill-switch,
	// rule:<name> (or rules when there are none), rollout, default.
	Step string `json:"step"`
	// Reached is false for steps after the deciding one.
	Reached bool `json:"reached"`
	// Applied is true for the step that decided the result, and for the
	// schedule step when a schedule step is in effect.
	Applied bool `json:"applied"`
	// Detail says why the step applied or not.
	Detail string `json:"detail,omitempty"`
}

// Trace is the full decision trace of one evaluation.
type Trace struct {
	Namespace string      `json:"namespace"`
	Key       string      `json:"key"`
	At        time.Time   `json:"at"`
	Context   Context     `json:"context"`
	Steps     []TraceStep `json:"steps"`
	Result    Result      `json:"result"`
}

type tracer struct {
	steps []TraceStep
	last  int
}

func (t *tracer) add(stage int, name string, applied bool, format string, args ...any) {
	t.steps = append(t.steps, TraceStep{Step: name, Reached: true, Applied: applied, Detail: fmt.Sprintf(format, args...)})
	t.last = max(t.last, stage)
}

// Explain evaluates key for ctx exactly like Evaluate (at one clock reading)
// and records every resolution step: whether it was reached, whether it
// applied, and why.
func (n Namespace) Explain(key string, ctx Context) Trace {
	tr := &tracer{last: -1}
	env := evalEnv{n: n, ctx: &ctx, tr: tr}
	at := env.time()
	var r Result
	n.evaluate(&env, key, &r)
	for s := tr.last + 1; s < numStages; s++ {
		tr.steps = append(tr.steps, TraceStep{Step: stageNames[s], Detail: "not reached"})
	}
	return Trace{Namespace: n.name, Key: key, At: at, Context: ctx, Steps: tr.steps, Result: r}
}

func (e *evalEnv) traceSchedule(f *Flag, s *state) {
	if len(f.steps) == 0 {
		e.tr.add(stageSchedule, "schedule", false, "no schedule")
		return
	}
	if s == &f.base {
		e.tr.add(stageSchedule, "schedule", false, "no step in effect yet; first step at %s", rfc3339(f.steps[0].at))
		return
	}
	i := 0
	for j := range f.steps {
		if &f.steps[j].st == s {
			i = j
		}
	}
	from := func(idx int) string {
		if idx < 0 {
			return "spec"
		}
		return f.steps[idx].source
	}
	rollout := "none"
	if s.rollout {
		rollout = fmt.Sprintf("%d%% (from %s)", s.pct, from(s.pctStep))
	}
	e.tr.add(stageSchedule, "schedule", true, "step %d of %d (at %s) in effect: enabled=%t (from %s), rollout=%s, value=%s (from %s)",
		i+1, len(f.steps), rfc3339(f.steps[i].at), s.enabled, from(s.enabledStep), rollout, s.on.raw, from(s.valueStep))
}

func (e *evalEnv) traceAllowMiss(stage int, name, what, attr, id string, set map[string]struct{}) {
	switch {
	case set == nil:
		e.tr.add(stage, name, false, "no %s allow-list", what)
	case id == "":
		e.tr.add(stage, name, false, "context has no %s", attr)
	default:
		e.tr.add(stage, name, false, "%s %q is not allow-listed", what, id)
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (c *cond) describe() string {
	if c.op == OpExists {
		return c.attr.name + " Exists"
	}
	q := make([]string, len(c.values))
	for i, v := range c.values {
		q[i] = strconv.Quote(v)
	}
	return c.attr.name + " " + string(c.op) + " [" + strings.Join(q, ", ") + "]"
}

// String renders the trace for humans, one step per line.
func (t Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flag %q in namespace %q at %s\n", t.Key, t.Namespace, rfc3339(t.At))
	fmt.Fprintf(&b, "context: %s\n", t.Context.String())
	width := 0
	for _, s := range t.Steps {
		width = max(width, len(s.Step))
	}
	for i, s := range t.Steps {
		status := "passed"
		switch {
		case !s.Reached:
			status = "not reached"
		case s.Applied:
			status = "APPLIED"
		}
		fmt.Fprintf(&b, "%3d. %-*s  %-11s  %s\n", i+1, width, s.Step, status, s.Detail)
	}
	fmt.Fprintf(&b, "result: %s", t.Result.String())
	return b.String()
}

// String renders the context with well-known fields first and attributes
// sorted by name.
func (c Context) String() string {
	var parts []string
	for _, kv := range [...][2]string{
		{AttrTargetingKey, c.TargetingKey}, {AttrUserID, c.UserID}, {AttrOrgID, c.OrgID},
		{AttrRole, c.Role}, {AttrDeviceID, c.DeviceID}, {AttrDeviceClass, c.DeviceClass},
	} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+strconv.Quote(kv[1]))
		}
	}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%#v", k, c.Attributes[k]))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, " ")
}

// String renders a result on one line.
func (r Result) String() string {
	var b strings.Builder
	val := "<none>"
	if r.Raw != nil {
		val = string(r.Raw)
	}
	fmt.Fprintf(&b, "value=%s enabled=%t", val, r.Enabled)
	if r.Variant != "" {
		fmt.Fprintf(&b, " variant=%s", r.Variant)
	}
	fmt.Fprintf(&b, " reason=%s", r.Reason)
	if r.Source != "" {
		fmt.Fprintf(&b, " source=%s", r.Source)
	}
	if r.ErrorCode != ErrorNone {
		fmt.Fprintf(&b, " error=%s (%s)", r.ErrorCode, r.ErrorMessage)
	}
	return b.String()
}

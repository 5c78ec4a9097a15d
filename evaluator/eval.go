package evaluator

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// evalEnv carries one evaluation: the context, the lazily read clock and
// the optional tracer used by Explain.
type evalEnv struct {
	n       Namespace
	ctx     *Context
	now     time.Time
	haveNow bool
	tr      *tracer
}

func (e *evalEnv) time() time.Time {
	if !e.haveNow {
		e.now, e.haveNow = e.n.now(), true
	}
	return e.now
}

// state returns the schedule-adjusted settings of f at the evaluation time.
// The clock is only read for flags with a schedule.
func (e *evalEnv) state(f *Flag) *state {
	if len(f.steps) == 0 {
		return &f.base
	}
	return f.stateAt(e.time())
}

// Evaluate resolves key for ctx following the resolution order in the
// package documentation. It never parses JSON or compiles patterns and does
// not allocate (see the package documentation for the exceptions).
func (n Namespace) Evaluate(ctx Context, key string) Result {
	env := evalEnv{n: n, ctx: &ctx}
	var r Result
	n.evaluate(&env, key, &r)
	return r
}

// EvaluateAs is Evaluate for callers that expect a given type: a flag of
// another type yields reason ERROR with TYPE_MISMATCH.
func (n Namespace) EvaluateAs(ctx Context, key string, want FlagType) Result {
	if n.st != nil {
		if fe := n.st.flags[key]; fe != nil && fe.flag != nil && fe.flag.typ != want {
			return Result{Key: key, Reason: ReasonError, ErrorCode: ErrorTypeMismatch,
				ErrorMessage: "flag type is " + string(fe.flag.typ) + ", not " + string(want)}
		}
	}
	return n.Evaluate(ctx, key)
}

// EvaluateAll evaluates every flag of the namespace, sorted by key, leaving
// out flags the context's role may not see.
func (n Namespace) EvaluateAll(ctx Context) []Result {
	if n.st == nil {
		return nil
	}
	// Size the result exactly: bulk results are the only allocation.
	visible := 0
	for _, fe := range n.st.flagList {
		if fe.flag == nil || fe.flag.roles == nil || slices.Contains(fe.flag.roles, ctx.GateRole()) {
			visible++
		}
	}
	// One spare slot: EvaluateAllInto evaluates into the next slot before
	// it knows whether the role gate hides the flag.
	return n.EvaluateAllInto(make([]Result, 0, visible+1), ctx)
}

// EvaluateAllInto is EvaluateAll appending to dst[:0], so that a caller can
// reuse one slice and evaluate without allocating.
func (n Namespace) EvaluateAllInto(dst []Result, ctx Context) []Result {
	dst = dst[:0]
	if n.st == nil {
		return dst
	}
	env := evalEnv{n: n, ctx: &ctx}
	user, dev := n.subjects(&ctx, nil)
	uf, df := n.st.subjectFlags(user), n.st.subjectFlags(dev)
	for _, fe := range n.st.flagList {
		// Evaluate in place: append a zero result and drop it again when
		// the role gate hides the flag.
		dst = append(dst, Result{})
		if env.evalFlag(&dst[len(dst)-1], fe, fe.key, uf.of(fe), df.of(fe)) {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// subjectFlags are the flags a subject has override entries for, so that
// evaluating every flag tests each flag against them by pointer instead of
// looking its key up among the subject's keys (whose strings often share a
// length and a long prefix, which makes each comparison a byte compare).
type subjectFlags struct {
	se  *subjEntry
	fes [maxSubjectFlags]*flagEntry
	n   int
	all bool // more keys than fes holds: every flag looks its key up
}

// maxSubjectFlags is how many flags of a subject subjectFlags resolves; most
// subjects have a handful.
const maxSubjectFlags = 8

func (st *nsState) subjectFlags(se *subjEntry) subjectFlags {
	sf := subjectFlags{se: se}
	if se == nil {
		return sf
	}
	if len(se.keys) > maxSubjectFlags {
		sf.all = true
		return sf
	}
	for i := range se.keys {
		// Entries of a key that names no flag are never looked up: no
		// flag of flagList has it.
		if fe := st.flags[se.keys[i].key]; fe != nil {
			sf.fes[sf.n] = fe
			sf.n++
		}
	}
	return sf
}

// of returns the subject when it may have entries for fe, else nil, which
// evalFlag treats as a subject without entries for it.
func (sf *subjectFlags) of(fe *flagEntry) *subjEntry {
	if sf.all {
		return sf.se
	}
	for i := range sf.n {
		if sf.fes[i] == fe {
			return sf.se
		}
	}
	return nil
}

// subjects returns the context's user and device entries. For one flag (fe
// non-nil) the pair filter rules out most principals without a lookup.
func (n Namespace) subjects(ctx *Context, fe *flagEntry) (user, dev *subjEntry) {
	if n.st.numObjs == 0 {
		return nil, nil
	}
	if id := ctx.DeviceID; id != "" {
		dev = n.st.subjectFor(SubjectDevice, id, fe)
	}
	if id := ctx.EffectiveUserID(); id != "" {
		user = n.st.subjectFor(SubjectUser, id, fe)
	}
	return user, dev
}

const msgNotFound = "flag not found"

// evaluate writes the result for key into r, which must be zero.
func (n Namespace) evaluate(env *evalEnv, key string, r *Result) {
	if n.snap == nil {
		if env.tr != nil {
			env.tr.add(stageFlag, "flag", true, "namespace handle is not initialised")
		}
		*r = Result{Key: key, Reason: ReasonError, ErrorCode: ErrorGeneral, ErrorMessage: "namespace handle is not initialised"}
		return
	}
	var fe *flagEntry
	if n.st != nil {
		fe = n.st.flags[key]
	}
	if fe == nil {
		if env.tr != nil {
			env.tr.add(stageFlag, "flag", true, "no flag %q in namespace %q", key, n.name)
		}
		*r = Result{Key: key, Reason: ReasonError, ErrorCode: ErrorFlagNotFound, ErrorMessage: msgNotFound}
		return
	}
	user, dev := n.subjects(env.ctx, fe)
	env.evalFlag(r, fe, key, user, dev)
}

// fill sets a successful result into the zero Result r. on says whether the
// on path was taken; for Boolean flags Enabled is the served value itself.
func fill(r *Result, f *Flag, key string, v value, on bool, variant string, reason Reason, source string) {
	if f.typ == TypeBoolean {
		on = v.b
	}
	r.Key, r.Value, r.Raw, r.Enabled = key, v.v, v.raw, on
	r.Variant, r.Reason, r.Source = variant, reason, source
}

// evalFlag runs the resolution order for one flag, writing into the zero
// Result r. gated reports that the role gate decided, so bulk evaluation
// leaves the flag out.
func (e *evalEnv) evalFlag(r *Result, fe *flagEntry, key string, user, dev *subjEntry) (gated bool) {
	f := fe.flag
	if f == nil {
		if e.tr != nil {
			e.tr.add(stageFlag, "flag", true, "flag failed to compile: %s", fe.errMsg)
		}
		*r = Result{Key: key, Reason: ReasonError, ErrorCode: ErrorParse, ErrorMessage: fe.errMsg}
		return false
	}
	if e.tr != nil {
		e.tr.add(stageFlag, "flag", false, "%s flag", f.typ)
	}
	ctx := e.ctx

	// 2. Role gate.
	if f.roles != nil {
		role := ctx.GateRole()
		if !slices.Contains(f.roles, role) {
			if e.tr != nil {
				e.tr.add(stageRoleGate, "role-gate", true, "role %q is not in allowedRoles %v", role, f.roles)
			}
			fill(r, f, key, f.off, false, VariantOff, ReasonDisabled, SourceRoleGate)
			return true
		}
		if e.tr != nil {
			e.tr.add(stageRoleGate, "role-gate", false, "role %q is allowed", role)
		}
	} else {
		if e.tr != nil {
			e.tr.add(stageRoleGate, "role-gate", false, "no allowedRoles: every role may see the flag")
		}
	}

	// 3. Device override. Overrides of either tier apply to a device
	// context only when its class is eligible for the flag.
	ineligible := deviceIneligible(ctx, f)
	switch {
	case ctx.DeviceID == "":
		if e.tr != nil {
			e.tr.add(stageDevice, "device-override", false, "context has no deviceId")
		}
	case ineligible:
		if e.tr != nil {
			e.traceIneligible(stageDevice, "device-override", f)
		}
	case dev == nil || len(dev.get(key)) == 0:
		if e.tr != nil {
			e.tr.add(stageDevice, "device-override", false, "no override for device %q", ctx.DeviceID)
		}
	default:
		if oe := e.pick(stageDevice, "device-override", dev.get(key)); oe != nil {
			e.serveOverride(r, f, key, oe, stageDevice, "device-override")
			return false
		}
		if e.tr != nil {
			e.tr.add(stageDevice, "device-override", false, "no applicable device override")
		}
	}

	// 4. User override.
	uid := ctx.EffectiveUserID()
	switch {
	case uid == "":
		if e.tr != nil {
			e.tr.add(stageUser, "user-override", false, "context has no userId or targetingKey")
		}
	case ineligible:
		if e.tr != nil {
			e.traceIneligible(stageUser, "user-override", f)
		}
	case user == nil || len(user.get(key)) == 0:
		if e.tr != nil {
			e.tr.add(stageUser, "user-override", false, "no override for user %q", uid)
		}
	default:
		if oe := e.pick(stageUser, "user-override", user.get(key)); oe != nil {
			e.serveOverride(r, f, key, oe, stageUser, "user-override")
			return false
		}
		if e.tr != nil {
			e.tr.add(stageUser, "user-override", false, "no applicable user override")
		}
	}

	// 5, 6. Allow-lists.
	if uid != "" && f.allowUsers != nil {
		if _, ok := f.allowUsers[uid]; ok {
			if e.tr != nil {
				e.tr.add(stageAllowUser, SourceAllowListUser, true, "user %q is allow-listed", uid)
			}
			fill(r, f, key, e.state(f).on, true, VariantOn, ReasonTargetingMatch, SourceAllowListUser)
			return false
		}
	}
	if e.tr != nil {
		e.traceAllowMiss(stageAllowUser, SourceAllowListUser, "user", AttrUserID, uid, f.allowUsers)
	}
	if ctx.OrgID != "" && f.allowOrgs != nil {
		if _, ok := f.allowOrgs[ctx.OrgID]; ok {
			if e.tr != nil {
				e.tr.add(stageAllowOrg, SourceAllowListOrg, true, "org %q is allow-listed", ctx.OrgID)
			}
			fill(r, f, key, e.state(f).on, true, VariantOn, ReasonTargetingMatch, SourceAllowListOrg)
			return false
		}
	}
	if e.tr != nil {
		e.traceAllowMiss(stageAllowOrg, SourceAllowListOrg, "org", AttrOrgID, ctx.OrgID, f.allowOrgs)
	}

	s := e.state(f)
	if e.tr != nil {
		e.traceSchedule(f, s)
	}

	// 7. Kill switch.
	if !s.enabled {
		src := SourceKillSwitch
		if s.enabledStep >= 0 {
			src = f.steps[s.enabledStep].source
		}
		if e.tr != nil {
			e.tr.add(stageKill, "kill-switch", true, "flag is disabled (enabled=false from %s)", src)
		}
		fill(r, f, key, f.off, false, VariantOff, ReasonDisabled, src)
		return false
	}
	if e.tr != nil {
		e.tr.add(stageKill, "kill-switch", false, "flag is enabled")
	}

	// 8. Rules.
	if len(f.rules) == 0 {
		if e.tr != nil {
			e.tr.add(stageRules, "rules", false, "no rules")
		}
	}
	for i := range f.rules {
		rl := &f.rules[i]
		ok, bad := e.matchRule(rl)
		if bad != nil {
			msg := "attribute " + strconv.Quote(bad.name) + ": " + attrVal{kind: valInvalid}.describe(e.ctx.Attributes[bad.name])
			if e.tr != nil {
				e.tr.add(stageRules, rl.source, true, "invalid context: %s", msg)
			}
			*r = Result{Key: key, Reason: ReasonError, ErrorCode: ErrorInvalidContext, ErrorMessage: msg, Source: rl.source}
			return false
		}
		if ok {
			v := rl.val
			if !v.present() {
				v = s.on
			}
			fill(r, f, key, v, true, rl.name, ReasonTargetingMatch, rl.source)
			return false
		}
	}

	// 9. Rollout.
	if s.rollout {
		e.rollout(r, f, key, s)
		return false
	}
	if e.tr != nil {
		e.tr.add(stageRollout, "rollout", false, "no rollout")
	}

	// 10. Default.
	src := SourceDefault
	if i := max(s.enabledStep, s.valueStep); i >= 0 {
		src = f.steps[i].source
	}
	if e.tr != nil {
		e.tr.add(stageDefault, "default", true, "serving the on value")
	}
	fill(r, f, key, s.on, true, VariantOn, ReasonStatic, src)
	return false
}

// deviceIneligible reports whether ctx is a device context (it has a
// deviceId or a deviceClass) whose class is absent or not eligible for f.
// Such a context gets neither device nor user overrides (seed 000: values
// of the user tier apply only to flag-eligible devices).
func deviceIneligible(ctx *Context, f *Flag) bool {
	if ctx.DeviceID == "" && ctx.DeviceClass == "" {
		return false
	}
	return ctx.DeviceClass == "" || !slices.Contains(f.devClasses, ctx.DeviceClass)
}

func (e *evalEnv) traceIneligible(stage int, name string, f *Flag) {
	if e.ctx.DeviceClass == "" {
		e.tr.add(stage, name, false, "device %q has no deviceClass: overrides apply only to eligible devices (eligible: %v)", e.ctx.DeviceID, f.devClasses)
		return
	}
	e.tr.add(stage, name, false, "device class %q is not eligible: overrides apply only to eligible devices (eligible: %v)", e.ctx.DeviceClass, f.devClasses)
}

// pick returns the first entry of a precedence-sorted candidate list that is
// valid, enabled and not expired.
func (e *evalEnv) pick(stage int, name string, list []*objEntry) *objEntry {
	for _, oe := range list {
		switch {
		case oe.invalid != "":
			if e.tr != nil {
				e.tr.add(stage, name, false, "%s ignored: invalid value: %s", oe.obj.ref, oe.invalid)
			}
		case !oe.obj.ov.Enabled:
			if e.tr != nil {
				e.tr.add(stage, name, false, "%s ignored: override is disabled", oe.obj.ref)
			}
		case oe.obj.ov.ExpiresAt != nil && !e.time().Before(*oe.obj.ov.ExpiresAt):
			if e.tr != nil {
				e.tr.add(stage, name, false, "%s ignored: expired at %s", oe.obj.ref, oe.obj.ov.ExpiresAt.UTC().Format(time.RFC3339Nano))
			}
		default:
			return oe
		}
	}
	return nil
}

func (e *evalEnv) serveOverride(r *Result, f *Flag, key string, oe *objEntry, stage int, name string) {
	switch oe.mode {
	case modeValue:
		if e.tr != nil {
			e.tr.add(stage, name, true, "%s serves its own value %s", oe.obj.ref, oe.val.raw)
		}
		fill(r, f, key, oe.val, true, VariantOverride, ReasonTargetingMatch, oe.obj.source)
		return
	case modeOff:
		if e.tr != nil {
			e.tr.add(stage, name, true, "%s turns the flag off", oe.obj.ref)
		}
		fill(r, f, key, f.off, false, VariantOff, ReasonTargetingMatch, oe.obj.source)
		return
	default:
		if e.tr != nil {
			e.tr.add(stage, name, true, "%s turns the flag on", oe.obj.ref)
		}
		fill(r, f, key, e.state(f).on, true, VariantOn, ReasonTargetingMatch, oe.obj.source)
		return
	}
}

func (e *evalEnv) rollout(r *Result, f *Flag, key string, s *state) {
	var buf [128]byte
	b := append(buf[:0], key...)
	b = append(b, '/')
	n := len(b)
	var via string
	if f.hasBucket {
		v := e.ctx.lookup(f.bucketBy)
		if v.kind == valInvalid {
			msg := "attribute " + strconv.Quote(f.bucketBy.name) + ": " + v.describe(e.ctx.Attributes[f.bucketBy.name])
			if e.tr != nil {
				e.tr.add(stageRollout, "rollout", true, "invalid context: %s", msg)
			}
			*r = Result{Key: key, Reason: ReasonError, ErrorCode: ErrorInvalidContext, ErrorMessage: msg, Source: SourceRollout}
			return
		}
		b, via = v.appendText(b), f.bucketBy.name
	} else if uid := e.ctx.EffectiveUserID(); uid != "" {
		b, via = append(b, uid...), AttrUserID
	} else {
		b, via = append(b, e.ctx.OrgID...), AttrOrgID
	}
	src := SourceRollout
	if len(b) == n {
		if s.pctStep >= 0 {
			src = f.steps[s.pctStep].source
		}
		if e.tr != nil {
			e.tr.add(stageRollout, "rollout", true, "no principal (%s is absent): off", via)
		}
		fill(r, f, key, f.off, false, VariantOff, ReasonSplit, src)
		return
	}
	sum := sha256.Sum256(b)
	bucket := binary.BigEndian.Uint64(sum[:8]) % 100
	in := bucket < uint64(s.pct)
	i := s.pctStep
	if in {
		i = max(i, s.valueStep)
	}
	if i >= 0 {
		src = f.steps[i].source
	}
	if in {
		if e.tr != nil {
			e.tr.add(stageRollout, "rollout", true, "%s %q is in bucket %d < %d%%: on", via, string(b[n:]), bucket, s.pct)
		}
		fill(r, f, key, s.on, true, VariantOn, ReasonSplit, src)
		return
	}
	if e.tr != nil {
		e.tr.add(stageRollout, "rollout", true, "%s %q is in bucket %d >= %d%%: off", via, string(b[n:]), bucket, s.pct)
	}
	fill(r, f, key, f.off, false, VariantOff, ReasonSplit, src)
}

// Bucket returns the rollout bucket (0-99) of a principal for a flag:
// the first 8 bytes of sha256(key + "/" + principal), big-endian, modulo 100.
func Bucket(key, principal string) uint64 {
	sum := sha256.Sum256([]byte(key + "/" + principal))
	return binary.BigEndian.Uint64(sum[:8]) % 100
}

// matchRule reports whether all conditions match; bad is set when a
// condition refers to an attribute of an unsupported type.
func (e *evalEnv) matchRule(rl *rule) (ok bool, bad *attrRef) {
	for j := range rl.conds {
		c := &rl.conds[j]
		v := e.ctx.lookup(c.attr)
		if v.kind == valInvalid {
			return false, &c.attr
		}
		if !c.match(v) {
			if e.tr != nil {
				e.tr.add(stageRules, rl.source, false, "condition %d (%s) does not match: %s is %s", j, c.describe(), c.attr.name, v.describe(nil))
			}
			return false, nil
		}
	}
	if e.tr != nil {
		e.tr.add(stageRules, rl.source, true, "all %d conditions match", len(rl.conds))
	}
	return true, nil
}

// match applies the operator to a present or missing attribute. A missing
// attribute matches nothing, not even NotIn.
func (c *cond) match(v attrVal) bool {
	if v.kind == valMissing {
		return false
	}
	switch c.op {
	case OpExists:
		return true
	case OpIn:
		return c.in(v)
	case OpNotIn:
		return !c.in(v)
	case OpStartsWith:
		s := v.text()
		for _, x := range c.values {
			if strings.HasPrefix(s, x) {
				return true
			}
		}
	case OpEndsWith:
		s := v.text()
		for _, x := range c.values {
			if strings.HasSuffix(s, x) {
				return true
			}
		}
	case OpMatches:
		s := v.text()
		for _, re := range c.res {
			if re.MatchString(s) {
				return true
			}
		}
	case OpGreaterThan:
		n, ok := v.number()
		return ok && n > c.num
	case OpLessThan:
		n, ok := v.number()
		return ok && n < c.num
	case OpSemVerAtLeast:
		ver, err := semver.NewVersion(v.text())
		return err == nil && ver.Compare(c.ver) >= 0
	}
	return false
}

func (c *cond) in(v attrVal) bool {
	switch v.kind {
	case valString:
		return slices.Contains(c.values, v.s)
	case valNumber:
		return slices.Contains(c.nums, v.n)
	case valBool:
		return slices.Contains(c.values, strconv.FormatBool(v.n != 0))
	}
	return false
}

// number reads an attribute as a finite number; strings are parsed.
func (v attrVal) number() (float64, bool) {
	switch v.kind {
	case valNumber:
		return v.n, true
	case valString:
		n, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

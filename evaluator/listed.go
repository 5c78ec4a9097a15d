package evaluator

// EvaluateListed evaluates key as EvaluateAll would list it: ok is false
// when EvaluateAll leaves the key out (no such flag, or the context's role
// may not see it). A caller that keeps the results of EvaluateAll up to
// date key by key uses it to stay equal to a fresh EvaluateAll.
func (n Namespace) EvaluateListed(ctx Context, key string) (Result, bool) {
	if n.snap == nil || n.st == nil {
		return Result{}, false
	}
	fe := n.st.flags[key]
	if fe == nil {
		return Result{}, false
	}
	env := evalEnv{n: n, ctx: &ctx}
	user, dev := n.subjects(&ctx, fe)
	var r Result
	if env.evalFlag(&r, fe, key, user, dev) {
		return Result{}, false
	}
	return r, true
}

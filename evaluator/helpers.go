package evaluator

import "encoding/json"

// IsEnabled reports whether key is on for ctx: the served value for Boolean
// flags, Result.Enabled for other types, and def when evaluation fails
// (unknown flag, invalid flag, invalid context).
func (n Namespace) IsEnabled(key string, ctx Context, def bool) bool {
	r := n.Evaluate(ctx, key)
	if r.ErrorCode != ErrorNone {
		return def
	}
	if b, ok := r.Value.(bool); ok {
		return b
	}
	return r.Enabled
}

// Config decodes the value served for key into T with encoding/json. On any
// problem (evaluation error, no value, a value that does not decode into T)
// it returns def.
func Config[T any](n Namespace, key string, ctx Context, def T) T {
	r := n.Evaluate(ctx, key)
	if r.ErrorCode != ErrorNone || r.Raw == nil {
		return def
	}
	var out T
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		return def
	}
	return out
}

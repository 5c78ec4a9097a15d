package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/flagops/flagops/evaluator"
)

// Page sizes of GET /v1/flags/{key}/overrides.
const (
	// DefaultOverridesLimit is the page size without a limit parameter.
	DefaultOverridesLimit = 100
	// MaxOverridesLimit is the largest limit accepted.
	MaxOverridesLimit = 1000
)

// Query parameters of GET /v1/flags/{key}/overrides.
const (
	paramLimit    = "limit"
	paramContinue = "continue"
)

// flagOverrideView is one override entry naming the flag of GET
// /v1/flags/{key}/overrides.
type flagOverrideView struct {
	Kind      evaluator.SubjectKind `json:"kind"`
	SubjectID string                `json:"subjectId"`
	Object    evaluator.ObjectRef   `json:"object"`
	Source    string                `json:"source"`
	// Mode and Value are the entry: "value" serves Value, "off" (an entry
	// with enabled false) the flag's off value, "on" its on value.
	Mode  string          `json:"mode"`
	Value json.RawMessage `json:"value,omitempty"`
	// Enabled is the override object's enabled.
	Enabled   bool   `json:"enabled"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// State is applies, lost, expired, disabled or invalid; Applies is
	// State == applies.
	State   evaluator.OverrideState `json:"state"`
	Applies bool                    `json:"applies"`
	// Error is why an invalid entry is never served.
	Error string `json:"error,omitempty"`
	// Winner is the object whose entry wins, when State is lost.
	Winner *evaluator.ObjectRef `json:"winner,omitempty"`
}

// flagOverridesView is the body of GET /v1/flags/{key}/overrides.
type flagOverridesView struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Revision  uint64 `json:"revision"`
	// FlagExists is false when only overrides name the key.
	FlagExists bool `json:"flagExists"`
	// Total counts every entry naming the key, on every page.
	Total     int                `json:"total"`
	Overrides []flagOverrideView `json:"overrides"`
	// Continue, when set, is the continue parameter of the next page.
	Continue string `json:"continue,omitempty"`
}

// continueToken is the decoded continue parameter: the position after
// which the next page starts, bound to its namespace and flag.
type continueToken struct {
	Namespace string                   `json:"ns"`
	Key       string                   `json:"key"`
	After     evaluator.OverrideCursor `json:"after"`
}

func encodeContinue(tok continueToken) string {
	b, _ := json.Marshal(tok) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s, ns, key string) (*evaluator.OverrideCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var tok continueToken
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err != nil || tok.After.Kind == "" {
		return nil, fmt.Errorf("query parameter %q: not a token this route returned", paramContinue)
	}
	if tok.Namespace != ns || tok.Key != key {
		return nil, fmt.Errorf("query parameter %q: the token continues flag %s of namespace %s, not %s of %s",
			paramContinue, strconv.Quote(tok.Key), strconv.Quote(tok.Namespace), strconv.Quote(key), strconv.Quote(ns))
	}
	return &tok.After, nil
}

// overridesQuery reads the query of GET /v1/flags/{key}/overrides: limit
// and continue, each at most once; anything else is refused.
func overridesQuery(r *http.Request, ns, key string) (limit int, after *evaluator.OverrideCursor, err error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, nil, err
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // the same error for the same query
	limit = DefaultOverridesLimit
	for _, name := range names {
		vals := q[name]
		if len(vals) > 1 {
			return 0, nil, &requestError{code: codeInvalidQuery, err: fmt.Errorf("query parameter %q is given %d times", name, len(vals))}
		}
		switch name {
		case paramLimit:
			n, convErr := strconv.Atoi(vals[0])
			if convErr != nil || n < 1 || n > MaxOverridesLimit {
				return 0, nil, &requestError{code: codeInvalidQuery,
					err: fmt.Errorf("query parameter %q: %s is not an integer from 1 to %d", name, strconv.Quote(vals[0]), MaxOverridesLimit)}
			}
			limit = n
		case paramContinue:
			if after, err = decodeContinue(vals[0], ns, key); err != nil {
				return 0, nil, &requestError{code: codeInvalidQuery, err: err}
			}
		default:
			return 0, nil, &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("unknown query parameter %q (want %s or %s)", name, paramLimit, paramContinue)}
		}
	}
	return limit, after, nil
}

// flagOverrides serves GET /v1/flags/{key}/overrides, an admin route:
// every user and device override entry of the namespace naming the key,
// with whether it applies now, a page at a time.
func (s *server) flagOverrides(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	key := r.PathValue("key")
	limit, after, err := overridesQuery(r, ns.Name(), key)
	if err != nil {
		s.writeRequestError(w, key, err)
		return
	}
	page := ns.FlagOverrides(key, after, limit)
	if !page.FlagExists && page.Total == 0 {
		s.writeError(w, http.StatusNotFound, key, codeFlagNotFound,
			"flag "+strconv.Quote(key)+" not found in namespace "+strconv.Quote(ns.Name()))
		return
	}
	view := flagOverridesView{
		Namespace: ns.Name(), Key: key, Revision: ns.Revision(), FlagExists: page.FlagExists, Total: page.Total,
		Overrides: make([]flagOverrideView, 0, len(page.Overrides)),
	}
	for i := range page.Overrides {
		fo := &page.Overrides[i]
		v := flagOverrideView{
			Kind: fo.Kind, SubjectID: fo.SubjectID, Object: fo.Object, Source: fo.Source, Mode: fo.Mode, Value: fo.Value,
			Enabled: fo.Enabled, CreatedAt: fo.CreatedAt.UTC().Format(timeFormat), Reason: fo.Reason,
			State: fo.State, Applies: fo.State == evaluator.OverrideApplies, Error: fo.Error, Winner: fo.Winner,
		}
		if fo.ExpiresAt != nil {
			v.ExpiresAt = fo.ExpiresAt.UTC().Format(timeFormat)
		}
		view.Overrides = append(view.Overrides, v)
	}
	if page.Next != nil {
		view.Continue = encodeContinue(continueToken{Namespace: ns.Name(), Key: key, After: *page.Next})
	}
	s.marshal(w, http.StatusOK, view)
}

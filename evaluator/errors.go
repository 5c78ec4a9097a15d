package evaluator

import (
	"errors"
	"slices"
	"strings"
)

// FieldError reports a problem with one field of a flag spec or an override,
// for example Field "spec.rules[1].match[0].values[0]". Compile joins all
// field errors of a spec with errors.Join; use errors.As to get the first or
// FieldErrors to get all of them.
type FieldError struct {
	// Field is the path of the offending field.
	Field string
	// Detail describes the problem in lower case.
	Detail string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Detail
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrors returns every *FieldError contained in err, following both
// single and multi-error (errors.Join) wrapping.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Messages reported in OverrideStatus.Invalid besides type and schema
// errors.
const (
	// MessageUnknownFlag: the entry names a flag that does not exist in the
	// override's namespace.
	MessageUnknownFlag = "unknown flag"
	// MessageInvalidFlag: the entry's flag exists but failed to compile.
	MessageInvalidFlag = "flag is invalid"
	// MessageDuplicateKey: a later entry of the same object repeats a key.
	MessageDuplicateKey = "duplicate entry for this key; the first one is used"
)

// ErrInvalidOp is wrapped by errors Apply returns for malformed operations.
var ErrInvalidOp = errors.New("invalid operation")

// joinSorted joins field errors ordered by field path so that messages are
// deterministic even when they were collected from a map.
func joinSorted(errs []error) error {
	slices.SortStableFunc(errs, func(a, b error) int {
		return strings.Compare(a.Error(), b.Error())
	})
	return errors.Join(errs...)
}

package server

import "github.com/flagops/flagops/evaluator"

// ofrepReason is the reason OFREP reports for a successful result. It is
// chosen so that every OpenFeature client returns the value flagops decided:
// some providers (the Go OFREP provider among them) replace any DISABLED
// answer with the caller's default, so DISABLED is sent exactly when the
// result has no value and the caller's default must apply. A value served
// by the kill switch is the flag's static off value (STATIC); a value
// served by the role gate is a decision about this context
// (TARGETING_MATCH). Every other reason is the evaluator's own. The variant
// and metadata.source still say which step decided (docs/ofrep.md has the
// whole table).
func ofrepReason(res *evaluator.Result) evaluator.Reason {
	switch {
	case res.Raw == nil:
		return evaluator.ReasonDisabled
	case res.Reason != evaluator.ReasonDisabled:
		return res.Reason
	case res.Source == evaluator.SourceRoleGate:
		return evaluator.ReasonTargetingMatch
	default:
		return evaluator.ReasonStatic
	}
}

package server

import (
	"strings"

	"github.com/flagops/flagops/evaluator"
)

// overrideMeta is what the client of a result decided by an override learns
// of that override besides its object (in the result's source): until when
// it applies and why (seed 001's getOverrideInfo). Both are empty for other
// results. The reason reaches only the clients of the override's subject:
// the override decided their own result.
type overrideMeta struct {
	// expiresAt is the override's expiry in RFC 3339, UTC; "" when it does
	// not expire.
	expiresAt string
	reason    string
}

// overrideMetaOf returns the overrideMeta of res, the result of res.Key for
// ctx in ns. Only results decided by an override pay for the lookup.
func overrideMetaOf(ns evaluator.Namespace, ctx *evaluator.Context, res *evaluator.Result) overrideMeta {
	var info evaluator.OverrideInfo
	var ok bool
	switch {
	case strings.HasPrefix(res.Source, evaluator.SourceUserOverride):
		info, ok = ns.UserOverride(ctx.EffectiveUserID(), res.Key)
	case strings.HasPrefix(res.Source, evaluator.SourceDeviceOverride):
		info, ok = ns.DeviceOverride(ctx.DeviceID, res.Key)
	}
	// Another source: the override expired between the evaluation and now.
	if !ok || info.Source != res.Source {
		return overrideMeta{}
	}
	m := overrideMeta{reason: info.Reason}
	if info.ExpiresAt != nil {
		m.expiresAt = info.ExpiresAt.UTC().Format(timeFormat)
	}
	return m
}

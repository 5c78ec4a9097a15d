package server

import (
	"encoding/json"
	"strconv"

	"github.com/flagops/flagops/evaluator"
)

// The encoding/json implementations below are what the hand-written code
// must stay equal to: the fuzz tests compare them, and a build with
// -tags stdjson serves with them instead (decodeRequest then always takes
// slowRequest), so that hack/ofrepload.sh can measure what the hand-written
// code gains.

// ofrepSuccess and ofrepFailure are the OFREP representations of a result.
type ofrepSuccess struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata ofrepMetadata   `json:"metadata"`
}

type ofrepMetadata struct {
	Source            string `json:"source"`
	Enabled           bool   `json:"enabled"`
	OverrideExpiresAt string `json:"overrideExpiresAt,omitempty"`
	OverrideReason    string `json:"overrideReason,omitempty"`
}

type ofrepFailure struct {
	Key          string `json:"key"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
}

// appendOFREPResultStd is appendOFREPResult with encoding/json.
func appendOFREPResultStd(b []byte, res *evaluator.Result, m overrideMeta) []byte {
	var v any = ofrepFailure{Key: res.Key, ErrorCode: res.ErrorCode.String(), ErrorDetails: res.ErrorMessage}
	if res.ErrorCode == evaluator.ErrorNone {
		v = ofrepSuccess{
			Key: res.Key, Value: res.Raw, Reason: ofrepReason(res).String(), Variant: res.Variant,
			Metadata: ofrepMetadata{Source: res.Source, Enabled: res.Enabled, OverrideExpiresAt: m.expiresAt, OverrideReason: m.reason},
		}
	}
	enc, err := json.Marshal(v)
	if err != nil {
		// Only an invalid stored value can fail; the evaluator never holds one.
		enc, _ = json.Marshal(ofrepFailure{Key: res.Key, ErrorCode: codeGeneral, ErrorDetails: "encoding the result: " + err.Error()})
	}
	return append(b, enc...)
}

// appendStringStd is appendString with encoding/json.
func appendStringStd(b []byte, s string) []byte {
	enc, err := json.Marshal(s)
	if err != nil {
		// Marshalling a string cannot fail; quote defensively.
		return strconv.AppendQuote(b, s)
	}
	return append(b, enc...)
}

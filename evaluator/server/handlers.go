package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/flagops/flagops/evaluator"
)

// decode reads and decodes the body of an OFREP request, writing the error
// response on failure.
func (s *server) decode(w http.ResponseWriter, r *http.Request, key string) (request, bool) {
	return s.decodeBody(w, r, key, ofrepBody)
}

// decodeBody reads and decodes a request body of the given kind, writing
// the error response on failure.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, key string, kind bodyKind) (request, bool) {
	buf := s.readBody(w, r, key)
	if buf == nil {
		return request{}, false
	}
	req, err := decodeRequest(buf.Bytes(), s.lim, kind)
	putBuf(buf)
	if err != nil {
		s.writeRequestError(w, key, err)
		return request{}, false
	}
	return req, true
}

func (s *server) writeRequestError(w http.ResponseWriter, key string, err error) {
	var re *requestError
	code := codeGeneral
	if errors.As(err, &re) {
		code = re.code
	}
	s.writeError(w, http.StatusBadRequest, key, code, err.Error())
}

// ofrepSingle serves POST /ofrep/v1/evaluate/flags/{key}.
func (s *server) ofrepSingle(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	key := r.PathValue("key")
	req, ok := s.decode(w, r, key)
	if !ok {
		return
	}
	s.applyClaims(r, &req.ctx)
	res := ns.Evaluate(req.ctx, key)
	switch res.ErrorCode {
	case evaluator.ErrorNone:
	case evaluator.ErrorFlagNotFound:
		s.writeError(w, http.StatusNotFound, key, codeFlagNotFound,
			"flag "+strconv.Quote(key)+" not found in namespace "+strconv.Quote(ns.Name()))
		return
	default:
		s.opts.Metrics.Evaluated(res.Reason.String())
		s.writeError(w, http.StatusBadRequest, key, res.ErrorCode.String(), res.ErrorMessage)
		return
	}
	s.opts.Metrics.Evaluated(res.Reason.String())
	buf := getBuf()
	buf.Write(appendOFREPResult(buf.AvailableBuffer(), &res, overrideMetaOf(ns, &req.ctx, &res)))
	s.writeJSON(w, http.StatusOK, buf.Bytes())
	putBuf(buf)
}

// appendOFREPResult appends the OFREP representation of one result: the
// success object, with the reason of ofrepReason and the override's expiry
// and reason (m) in its metadata, or the error object for an evaluation
// error.
func appendOFREPResult(b []byte, res *evaluator.Result, m overrideMeta) []byte {
	if stdJSON {
		return appendOFREPResultStd(b, res, m)
	}
	b = append(b, `{"key":`...)
	b = appendString(b, res.Key)
	if res.ErrorCode != evaluator.ErrorNone {
		b = append(b, `,"errorCode":`...)
		b = appendString(b, res.ErrorCode.String())
		b = append(b, `,"errorDetails":`...)
		b = appendString(b, res.ErrorMessage)
		return append(b, '}')
	}
	if res.Raw != nil {
		b = append(b, `,"value":`...)
		b = append(b, res.Raw...)
	}
	b = append(b, `,"reason":"`...)
	b = append(b, ofrepReason(res).String()...)
	b = append(b, '"')
	if res.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendString(b, res.Variant)
	}
	b = append(b, `,"metadata":{"source":`...)
	b = appendString(b, res.Source)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, res.Enabled)
	if m.expiresAt != "" {
		b = append(b, `,"overrideExpiresAt":`...)
		b = appendString(b, m.expiresAt)
	}
	if m.reason != "" {
		b = append(b, `,"overrideReason":`...)
		b = appendString(b, m.reason)
	}
	return append(b, "}}"...)
}

// ofrepBulk serves POST /ofrep/v1/evaluate/flags.
func (s *server) ofrepBulk(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, prefix string) {
	req, ok := s.decode(w, r, "")
	if !ok {
		return
	}
	s.applyClaims(r, &req.ctx)
	token := s.requestToken(r)
	buf, etag := bulkResponse(ns, &req.ctx, prefix, token, s.opts.Metrics)
	w.Header().Set("ETag", etag)
	if token != "" {
		// The body carries the token in the stream URI.
		w.Header().Set("Cache-Control", "no-store")
	}
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		putBuf(buf)
		return
	}
	s.writeJSON(w, http.StatusOK, buf.Bytes())
	putBuf(buf)
}

// bulkResponse renders the OFREP bulk response for ctx into a pooled
// buffer (release it with putBuf) and returns its entity tag. The response
// advertises the event stream URI of ctx (see advertisedURI); the tag is a
// digest of the results and that URI, so it changes exactly when the
// evaluated values (or the context, or the token) do. A non-nil m counts
// every result.
func bulkResponse(ns evaluator.Namespace, ctx *evaluator.Context, prefix, token string, m Metrics) (*bytes.Buffer, string) {
	rp := resultsPool.Get().(*[]evaluator.Result)
	results := ns.EvaluateAllInto(*rp, *ctx)

	buf := getBuf()
	b := buf.AvailableBuffer()
	b = append(b, `{"flags":[`...)
	var sum uint64
	for i := range results {
		if i > 0 {
			b = append(b, ',')
		}
		om := overrideMetaOf(ns, ctx, &results[i])
		b = appendOFREPResult(b, &results[i], om)
		sum += resultSum(&results[i], om)
		if m != nil {
			m.Evaluated(results[i].Reason.String())
		}
	}
	uri := advertisedURI(prefix, contextJSON(ctx), token, digestString(sum))
	b = append(b, `],"metadata":{"namespace":`...)
	b = appendString(b, ns.Name())
	b = append(b, `},"eventStreams":[{"type":"sse","endpoint":{"requestUri":`...)
	b = appendString(b, uri)
	b = append(b, "}}]}"...)
	buf.Write(b)

	clear(results)
	*rp = results[:0]
	resultsPool.Put(rp)
	return buf, bulkETag(ns.Name(), uri)
}

// etagMatches implements the weak comparison of If-None-Match (RFC 9110
// 13.1.2) against a strong tag.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}

// nativeFlag is one flag of the native API's response.
type nativeFlag struct {
	Value        json.RawMessage `json:"value,omitempty"`
	Enabled      bool            `json:"enabled"`
	Variant      string          `json:"variant,omitempty"`
	Reason       string          `json:"reason"`
	Source       string          `json:"source,omitempty"`
	ErrorCode    string          `json:"errorCode,omitempty"`
	ErrorDetails string          `json:"errorDetails,omitempty"`
	// OverrideReason and OverrideExpiresAt are those of the override that
	// decided the result (see overrideMeta).
	OverrideReason    string `json:"overrideReason,omitempty"`
	OverrideExpiresAt string `json:"overrideExpiresAt,omitempty"`
}

func nativeOf(res *evaluator.Result, m overrideMeta) nativeFlag {
	f := nativeFlag{
		Value: res.Raw, Enabled: res.Enabled, Variant: res.Variant,
		Reason: res.Reason.String(), Source: res.Source,
		OverrideReason: m.reason, OverrideExpiresAt: m.expiresAt,
	}
	if res.ErrorCode != evaluator.ErrorNone {
		f.ErrorCode, f.ErrorDetails = res.ErrorCode.String(), res.ErrorMessage
	}
	return f
}

type nativeResponse struct {
	Namespace string                `json:"namespace"`
	Revision  uint64                `json:"revision"`
	Flags     map[string]nativeFlag `json:"flags"`
}

// native serves POST /v1/evaluate.
func (s *server) native(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	req, ok := s.decodeBody(w, r, "", nativeBody)
	if !ok {
		return
	}
	s.applyClaims(r, &req.ctx)
	resp := nativeResponse{Namespace: ns.Name(), Revision: ns.Revision()}
	if req.flags == nil {
		results := ns.EvaluateAll(req.ctx)
		resp.Flags = make(map[string]nativeFlag, len(results))
		for i := range results {
			resp.Flags[results[i].Key] = nativeOf(&results[i], overrideMetaOf(ns, &req.ctx, &results[i]))
			s.opts.Metrics.Evaluated(results[i].Reason.String())
		}
	} else {
		resp.Flags = make(map[string]nativeFlag, len(req.flags))
		for _, key := range req.flags {
			if _, dup := resp.Flags[key]; dup {
				continue
			}
			res := ns.Evaluate(req.ctx, key)
			if res.Hidden() {
				continue
			}
			if res.ErrorCode == evaluator.ErrorFlagNotFound {
				res.ErrorMessage = "flag " + strconv.Quote(key) + " not found in namespace " + strconv.Quote(ns.Name())
			}
			resp.Flags[key] = nativeOf(&res, overrideMetaOf(ns, &req.ctx, &res))
			s.opts.Metrics.Evaluated(res.Reason.String())
		}
	}
	s.marshal(w, http.StatusOK, resp)
}

func (s *server) marshal(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encoding response", "error", err)
		s.writeError(w, http.StatusInternalServerError, "", codeGeneral, fmt.Errorf("encoding response: %w", err).Error())
		return
	}
	s.writeJSON(w, status, body)
}

// explainParams are the query parameters naming well-known attributes.
var explainParams = map[string]bool{
	evaluator.AttrTargetingKey: true, evaluator.AttrUserID: true, evaluator.AttrOrgID: true,
	evaluator.AttrRole: true, evaluator.AttrDeviceID: true, evaluator.AttrDeviceClass: true,
}

const attrPrefix = "attr."

type explainResponse struct {
	evaluator.Trace
	// Text is the trace rendered for humans.
	Text string `json:"text"`
}

// explain serves GET /v1/flags/{key}/explain, an admin route: the whole
// context comes from the query.
func (s *server) explain(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	key := r.PathValue("key")
	ctx, err := s.explainContext(r)
	if err != nil {
		s.writeRequestError(w, key, err)
		return
	}
	tr := ns.Explain(key, ctx)
	if tr.Result.ErrorCode == evaluator.ErrorFlagNotFound {
		s.writeError(w, http.StatusNotFound, key, codeFlagNotFound,
			"flag "+strconv.Quote(key)+" not found in namespace "+strconv.Quote(ns.Name()))
		return
	}
	s.marshal(w, http.StatusOK, explainResponse{Trace: tr, Text: tr.String()})
}

// explainContext builds the context of an explain request from its query:
// well-known attributes by name, free attributes as attr.<name> (string
// values). Unknown, repeated or empty-named parameters are rejected.
func (s *server) explainContext(r *http.Request) (evaluator.Context, error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return evaluator.Context{}, err
	}
	m := make(map[string]any, len(q))
	for name, vals := range q {
		attr := name
		switch {
		case explainParams[name]:
		case strings.HasPrefix(name, attrPrefix) && len(name) > len(attrPrefix):
			attr = name[len(attrPrefix):]
			if explainParams[attr] {
				return evaluator.Context{}, &requestError{code: codeInvalidQuery,
					err: fmt.Errorf("query parameter %q: %s is a well-known attribute; use %s=", name, attr, attr)}
			}
		default:
			return evaluator.Context{}, &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("unknown query parameter %q (want targetingKey, userId, orgId, role, deviceId, deviceClass or attr.<name>)", name)}
		}
		if len(vals) > 1 {
			return evaluator.Context{}, &requestError{code: codeInvalidQuery,
				err: fmt.Errorf("query parameter %q is given %d times", name, len(vals))}
		}
		m[attr] = vals[0]
	}
	return contextFromMap(m, s.lim)
}

func parseQuery(raw string) (map[string][]string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, &requestError{code: codeInvalidQuery, err: fmt.Errorf("malformed query: %w", err)}
	}
	return q, nil
}

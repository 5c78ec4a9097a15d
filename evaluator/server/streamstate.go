package server

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// streamState is what the client of one stream holds: the digest of each
// flag result it was last sent (native) or told to fetch (OFREP), for its
// context. Its ID, the digest of those values, is the SSE event ID.
type streamState struct {
	kind       streamKind
	ns, prefix string
	ctx        evaluator.Context
	// ctxJSON and token are the context and the token of the stream URI
	// a bulk evaluation advertises for this context (OFREP only).
	ctxJSON, token string
	held           []heldEntry // sorted by key
}

type heldEntry struct {
	key string
	sum uint64
}

// reset makes the client hold the effective map of ns, which it returns.
func (st *streamState) reset(ns evaluator.Namespace) []evaluator.Result {
	results := ns.EvaluateAll(st.ctx)
	st.held = make([]heldEntry, len(results))
	for i := range results {
		st.held[i] = heldEntry{results[i].Key, resultSum(&results[i], st.meta(ns, &results[i]))}
	}
	slices.SortFunc(st.held, func(a, b heldEntry) int { return strings.Compare(a.key, b.key) })
	return results
}

func (st *streamState) find(key string) (int, bool) {
	return slices.BinarySearchFunc(st.held, key, func(e heldEntry, k string) int { return strings.Compare(e.key, k) })
}

// allKeys lists every key the client holds or ns has.
func (st *streamState) allKeys(ns evaluator.Namespace) []evaluator.FlagRef {
	var out []evaluator.FlagRef
	for _, e := range st.held {
		out = append(out, evaluator.FlagRef{Namespace: st.ns, Key: e.key})
	}
	for _, k := range ns.Keys() {
		if _, had := st.find(k); !had {
			out = append(out, evaluator.FlagRef{Namespace: st.ns, Key: k})
		}
	}
	return out
}

type changedData struct {
	// Revision is the server's store revision, for diagnostics: it
	// differs between replicas.
	Revision uint64                `json:"revision"`
	Changed  map[string]nativeFlag `json:"changed"`
	Removed  []string              `json:"removed"`
}

// update re-evaluates keys against ns and makes the client hold the new
// results. It reports what changed for the client, if anything.
func (st *streamState) update(ns evaluator.Namespace, keys []evaluator.FlagRef) (changedData, bool) {
	data := changedData{Revision: ns.Revision(), Changed: map[string]nativeFlag{}, Removed: []string{}}
	for _, ref := range keys {
		res, listed := ns.EvaluateListed(st.ctx, ref.Key)
		i, had := st.find(ref.Key)
		switch {
		case listed:
			m := st.meta(ns, &res)
			sum := resultSum(&res, m)
			if had && st.held[i].sum == sum {
				continue
			}
			if had {
				st.held[i].sum = sum
			} else {
				st.held = slices.Insert(st.held, i, heldEntry{ref.Key, sum})
			}
			data.Changed[ref.Key] = nativeOf(&res, m)
		case had:
			st.held = slices.Delete(st.held, i, i+1)
			data.Removed = append(data.Removed, ref.Key)
		}
	}
	slices.Sort(data.Removed)
	return data, len(data.Changed) > 0 || len(data.Removed) > 0
}

// id is the digest of the values the client holds: the same on every
// replica and after a restart for the same values.
func (st *streamState) id() string {
	var sum uint64
	for _, e := range st.held {
		sum += e.sum
	}
	return digestString(sum)
}

func digestString(sum uint64) string {
	b := make([]byte, 0, 16)
	b = strconv.AppendUint(b, sum, 16)
	return strings.Repeat("0", 16-len(b)) + string(b)
}

// meta is the overrideMeta of res, a result of the stream's context in ns.
func (st *streamState) meta(ns evaluator.Namespace, res *evaluator.Result) overrideMeta {
	return overrideMetaOf(ns, &st.ctx, res)
}

// resultSum digests every field of a result that reaches a client: the
// key, the value, enabled, variant, reason, source and the error, and the
// expiry and reason of the override that decided it (m). Those two are
// digested only when one is set, so that the digests of other results stay
// what they were before the fields existed.
func resultSum(r *evaluator.Result, m overrideMeta) uint64 {
	var b [512]byte
	buf := b[:0]
	field := func(s string) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	field(r.Key)
	field(string(r.Raw))
	if r.Enabled {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	field(r.Variant)
	field(r.Reason.String())
	field(r.Source)
	field(r.ErrorCode.String())
	field(r.ErrorMessage)
	if m != (overrideMeta{}) {
		field(m.expiresAt)
		field(m.reason)
	}
	h := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(h[:8])
}

// kindName is the metrics kind of a stream's events.
func (st *streamState) kindName(native string) string {
	if st.kind == streamOFREP {
		return "refetch"
	}
	return native
}

// snapshotFrame renders the snapshot event of results, the effective map
// of ns the client now holds.
func (st *streamState) snapshotFrame(ns evaluator.Namespace, results []evaluator.Result) []byte {
	resp := nativeResponse{Namespace: st.ns, Revision: ns.Revision(), Flags: make(map[string]nativeFlag, len(results))}
	for i := range results {
		resp.Flags[results[i].Key] = nativeOf(&results[i], st.meta(ns, &results[i]))
	}
	return frame(st.id(), eventSnapshot, mustJSON(resp))
}

// changedFrame renders the event of a change: a changed event (native) or
// a refetch event (OFREP).
func (st *streamState) changedFrame(ns evaluator.Namespace, asOf time.Time, data changedData) []byte {
	if st.kind == streamOFREP {
		return st.refetchFrame(ns, asOf)
	}
	return frame(st.id(), eventChanged, mustJSON(data))
}

// refetchFrame renders the OFREP refetch event: etag is the ETag that bulk
// evaluation returns for the client's context now, lastModified the time
// of the latest write in Unix seconds.
func (st *streamState) refetchFrame(ns evaluator.Namespace, asOf time.Time) []byte {
	id := st.id()
	b := []byte(`{"type":"refetchEvaluation","etag":`)
	b = appendString(b, bulkETag(ns.Name(), advertisedURI(st.prefix, st.ctxJSON, st.token, id)))
	b = append(b, `,"lastModified":`...)
	b = strconv.AppendInt(b, asOf.Unix(), 10)
	b = append(b, '}')
	return frame(id, "", b)
}

// mustJSON encodes a value made of strings, bools and JSON values produced
// by the evaluator, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("encoding a stream event: " + err.Error())
	}
	return b
}

func frame(id, name string, data []byte) []byte {
	b := make([]byte, 0, len(data)+64)
	b = append(b, "id: "...)
	b = append(b, id...)
	b = append(b, '\n')
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// contextJSON renders ctx as the flat JSON object of an evaluation
// context, with sorted members; "" for an empty context.
func contextJSON(ctx *evaluator.Context) string {
	m := make(map[string]any, len(ctx.Attributes)+6)
	for k, v := range ctx.Attributes {
		if v != nil {
			m[k] = v
		}
	}
	for _, a := range []struct{ name, v string }{
		{evaluator.AttrTargetingKey, ctx.TargetingKey}, {evaluator.AttrUserID, ctx.UserID},
		{evaluator.AttrOrgID, ctx.OrgID}, {evaluator.AttrRole, ctx.Role},
		{evaluator.AttrDeviceID, ctx.DeviceID}, {evaluator.AttrDeviceClass, ctx.DeviceClass},
	} {
		if a.v != "" {
			m[a.name] = a.v
		}
	}
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Only a number JSON cannot hold (NaN, ±Inf), which no JSON
		// request carries.
		return ""
	}
	return string(b)
}

// advertisedURI is the OFREP event stream URI of a context: the stream
// route with the context, the token (RFC 6750 access_token) and the ID of
// the values the bulk response holds as lastEventId, so that a client
// opening it verbatim hears about every change after that response.
func advertisedURI(prefix, ctxJSON, token, id string) string {
	q := url.Values{paramLastEventID: {id}}
	if ctxJSON != "" {
		q.Set(paramContext, ctxJSON)
	}
	if token != "" {
		q.Set(paramAccessToken, token)
	}
	return prefix + "/ofrep/v1/sse?" + q.Encode()
}

// bulkETag is the entity tag of a bulk response of namespace ns that
// advertises uri: uri holds the digest of the results and the context, so
// the tag changes exactly when the body does.
func bulkETag(ns, uri string) string {
	h := sha256.Sum256([]byte(ns + "\x00" + uri))
	return `"` + digestString(binary.BigEndian.Uint64(h[:8])) + `"`
}

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/flagops/flagops/evaluator"
)

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `{"context":null}`, `{"context":{"targetingKey":"alice","plan":"pro","n":1.5,"b":true,"z":null}}`,
		`{"context":{"userId":7}}`, `{"context":{"tags":["a"]}}`, `{"context":"x"}`, `{"flags":["a","b"]}`,
		`{"flags":[""]}`, `{"context":{"n":12345678901234567890123}}`, `{} {}`, `[1]`, `{"context":{"\u00e9":"\u2028<&>"}}`,
		`{"context":{"a":1e400}}`, `{"context":{"a":-0.5e+3,"b":0,"c":-1}}`, `{"context":{"a":01}}`, `{"context":{"a":"x\\n"}}`,
		`{"context":{},"context":{}}`, `{"flags":null,"context":{"a":false}}`, ` { "context" : { "x" : "\xff" } } `, `{"other":1}`,
		`{"context":{"userId":"a","userId":null,"x":null,"x":"y"}}`, `{"context":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}}`,
		`{"context":{"a":1,"a":2,"a":3,"a":4,"a":5,"a":6,"a":7,"a":8,"a":9}}`, `{"context":{"role":true}}`,
		`{"CONTEXT":{}}`, `{"Context":{},"flags":[]}`, `{"flags":["a"],"flags":["b"]}`, `{"\u0063ontext":{"a":1}}`,
		`{"context":{"plan":"a","Plan":"b"}}`, `{"context":{"targetingKey":"a","targetingKey":"a"}}`, `{"context":{"a":null,"a":null}}`,
		`{"context":{"userId":null,"userId":"x"}}`, `{"context":{"a":1},"x":{"y":[1,2]}}`, `{"context":{}`, `{"flags":"a"}`,
	} {
		f.Add([]byte(s), uint8(ofrepBody))
		f.Add([]byte(s), uint8(nativeBody))
	}
	f.Add([]byte("{\"context\":{\"x\":\"\xff\",\"\xc3\xa9\":\"\u2028\"}}"), uint8(ofrepBody))
	lim := limits{maxAttrs: 8, maxAttrBytes: 64}
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := bodyKind(k % 2)
		// The fast path must agree with encoding/json wherever it answers,
		// member rules included: whatever it accepts, the slow path accepts
		// with the same result.
		if fast, ok := fastDecode(body, lim, kind); ok {
			slow, err := slowRequest(body, lim, kind)
			if err != nil {
				t.Fatalf("fast path accepted %q, slow path rejects it: %v", body, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path on %q:\n got %#v\nwant %#v", body, fast, slow)
			}
		}
		req, err := decodeRequest(body, lim, kind)
		if err == nil {
			checkMembers(t, body, kind)
		}
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || (re.code != codeParse && re.code != codeInvalidContext) || err.Error() == "" {
				t.Fatalf("error %v (%T) is not a request error with an OFREP code", err, err)
			}
			return
		}
		// Round trip: re-encode the context as a flat map and decode again.
		flat := map[string]any{}
		for k, v := range req.ctx.Attributes {
			flat[k] = v
		}
		for k, v := range map[string]string{
			"targetingKey": req.ctx.TargetingKey, "userId": req.ctx.UserID, "orgId": req.ctx.OrgID,
			"role": req.ctx.Role, "deviceId": req.ctx.DeviceID, "deviceClass": req.ctx.DeviceClass,
		} {
			if v != "" {
				flat[k] = v
			}
		}
		wire := map[string]any{"context": flat}
		if kind == nativeBody {
			wire["flags"] = req.flags
		}
		enc, err := json.Marshal(wire)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", req, err)
		}
		again, err := decodeRequest(enc, lim, kind)
		if err != nil {
			t.Fatalf("decoding re-encoded %s: %v", enc, err)
		}
		if !reflect.DeepEqual(again.ctx, req.ctx) || !reflect.DeepEqual(again.flags, req.flags) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", body, again, req)
		}
		if hashContext(fnvOffset, &again.ctx) != hashContext(fnvOffset, &req.ctx) {
			t.Fatalf("hash differs after round trip")
		}
	})
}

// checkMembers fails unless body, an accepted request, has only the members
// of its kind, each once, and no context attribute twice. It reads the body
// with encoding/json's Decoder.Token, independently of both decoders.
func checkMembers(t *testing.T, body []byte, kind bodyKind) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// names returns the member names of the object that starts next, in
	// order, and the raw value of each member.
	names := func() ([]string, []json.RawMessage) {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, nil
		}
		var ns []string
		var vs []json.RawMessage
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("accepted %q, which is not valid JSON: %v", body, err)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("accepted %q, which is not valid JSON: %v", body, err)
			}
			ns, vs = append(ns, tok.(string)), append(vs, raw)
		}
		return ns, vs
	}
	top, vals := names()
	seen := map[string]bool{}
	for i, n := range top {
		if seen[n] || (n != memberContext && (n != memberFlags || kind != nativeBody)) {
			t.Fatalf("kind %d accepted %q, whose member %q is repeated or unknown", kind, body, n)
		}
		seen[n] = true
		if n == memberContext {
			dec = json.NewDecoder(bytes.NewReader(vals[i]))
			attrs, _ := names()
			if len(attrs) != len(slices.Compact(slices.Sorted(slices.Values(attrs)))) {
				t.Fatalf("accepted %q, whose context repeats an attribute", body)
			}
		}
	}
}

// FuzzOFREPResult checks that the hand-written OFREP result encoder writes
// what encoding/json writes.
func FuzzOFREPResult(f *testing.F) {
	f.Add("k", []byte(`true`), uint8(evaluator.ReasonStatic), "on", "default", true, uint8(0), "", "", "")
	f.Add("banner", []byte(nil), uint8(evaluator.ReasonDisabled), "off", "kill-switch", false, uint8(0), "", "", "")
	f.Add("admin", []byte(`"off"`), uint8(evaluator.ReasonDisabled), "off", evaluator.SourceRoleGate, false, uint8(0), "", "", "")
	f.Add("k\u2028<&>", []byte(`{"a":[1,"<b>"]}`), uint8(evaluator.ReasonTargetingMatch), "rule \"x\"", "rule:x", true, uint8(0), "", "", "")
	f.Add("e", []byte(nil), uint8(evaluator.ReasonError), "", "", false, uint8(evaluator.ErrorInvalidContext), "attribute \"a\": \xff", "", "")
	f.Add("ov", []byte(`"neon"`), uint8(evaluator.ReasonTargetingMatch), "override", "user-override:shop/o", true, uint8(0), "",
		"2030-01-01T13:00:00Z", "ticket \"42\" <\u2028>")
	f.Fuzz(func(t *testing.T, key string, raw []byte, reason uint8, variant, source string, enabled bool, code uint8, msg, expiresAt, ovReason string) {
		if len(raw) > 0 && !json.Valid(raw) {
			return
		}
		res := evaluator.Result{Key: key, Raw: raw, Reason: evaluator.Reason(reason), Variant: variant, Source: source,
			Enabled: enabled, ErrorCode: evaluator.ErrorCode(code), ErrorMessage: msg}
		if len(raw) == 0 {
			res.Raw = nil
		}
		m := overrideMeta{expiresAt: expiresAt, reason: ovReason}
		hand, std := appendOFREPResult(nil, &res, m), appendOFREPResultStd(nil, &res, m)
		var h, s any
		if err := json.Unmarshal(hand, &h); err != nil {
			t.Fatalf("hand-written encoding %q is not JSON: %v", hand, err)
		}
		if err := json.Unmarshal(std, &s); err != nil {
			t.Fatalf("encoding/json wrote %q: %v", std, err)
		}
		if !reflect.DeepEqual(h, s) {
			t.Fatalf("hand-written %s\nencoding/json %s", hand, std)
		}
		if q := appendString(nil, key); !bytes.Equal(q, appendStringStd(nil, key)) {
			t.Fatalf("appendString(%q) = %s, encoding/json writes %s", key, q, appendStringStd(nil, key))
		}
	})
}

// fnv64a hashes with FNV-1a (a canonical context hash the round-trip fuzzer
// compares), 64 bit, without allocating.
type fnv64a uint64

const (
	fnvOffset fnv64a = 14695981039346656037
	fnvPrime  fnv64a = 1099511628211
)

func (h fnv64a) str(s string) fnv64a {
	for i := 0; i < len(s); i++ {
		h ^= fnv64a(s[i])
		h *= fnvPrime
	}
	// Terminate each field so that ("ab","c") and ("a","bc") differ.
	h ^= 0xff
	h *= fnvPrime
	return h
}

// hashContext hashes a context canonically: well-known fields in a fixed
// order, then free attributes sorted by name with a type tag.
func hashContext(h fnv64a, c *evaluator.Context) fnv64a {
	h = h.str(c.TargetingKey).str(c.UserID).str(c.OrgID).str(c.Role).str(c.DeviceID).str(c.DeviceClass)
	if len(c.Attributes) == 0 {
		return h
	}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h = h.str(k)
		switch v := c.Attributes[k].(type) {
		case string:
			h = h.str("s").str(v)
		case json.Number:
			h = h.str("n").str(string(v))
		case bool:
			h = h.str("b").str(strconv.FormatBool(v))
		case nil:
			h = h.str("z")
		default:
			h = h.str("o").str(fmt.Sprint(v))
		}
	}
	return h
}

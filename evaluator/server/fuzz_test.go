package server

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
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
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte("{\"context\":{\"x\":\"\xff\",\"\xc3\xa9\":\"\u2028\"}}"))
	lim := limits{maxAttrs: 8, maxAttrBytes: 64}
	f.Fuzz(func(t *testing.T, body []byte) {
		// The fast path must agree with encoding/json wherever it answers.
		if fast, ok := fastDecode(body, lim); ok {
			slow, err := slowRequest(body, lim)
			if err != nil {
				t.Fatalf("fast path accepted %q, slow path rejects it: %v", body, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path on %q:\n got %#v\nwant %#v", body, fast, slow)
			}
		}
		req, err := decodeRequest(body, lim)
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
		enc, err := json.Marshal(map[string]any{"context": flat, "flags": req.flags})
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", req, err)
		}
		again, err := decodeRequest(enc, lim)
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

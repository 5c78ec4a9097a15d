/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"
)

// jsonNull is the value used for a key that is missing on one side of a change.
var jsonNull = json.RawMessage("null")

// Diff compares two key-to-JSON-value maps and returns the sorted keys whose values differ,
// with the values of only those keys on each side. Values are compared as JSON: object key
// order and whitespace do not matter, and numbers are compared by exact value (1, 1.0 and
// 1e0 are equal). A key missing on one side, or present with an empty value, is null on
// that side, so a key that is null on one side and missing on the other is unchanged. The
// returned slice and maps are never nil and share no memory with the inputs. Values that
// are not valid JSON are compared byte for byte, ignoring surrounding whitespace.
func Diff(before, after map[string]json.RawMessage) (changed []string, b, a map[string]json.RawMessage) {
	changed = []string{}
	b = map[string]json.RawMessage{}
	a = map[string]json.RawMessage{}
	seen := make(map[string]struct{}, len(before)+len(after))
	for _, m := range []map[string]json.RawMessage{before, after} {
		for k := range m {
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			bv, av := before[k], after[k]
			if JSONEqual(bv, av) {
				continue
			}
			changed = append(changed, k)
			b[k] = orNull(bv)
			a[k] = orNull(av)
		}
	}
	slices.Sort(changed)
	return changed, b, a
}

// orNull returns a copy of v, or null if v is empty.
func orNull(v json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(v)) == 0 {
		return bytes.Clone(jsonNull)
	}
	return bytes.Clone(v)
}

// JSONEqual reports whether x and y are the same JSON value, with the rules of Diff.
func JSONEqual(x, y json.RawMessage) bool {
	x, y = orNull(x), orNull(y)
	xv, xerr := decodeJSON(x)
	yv, yerr := decodeJSON(y)
	if xerr != nil || yerr != nil {
		return bytes.Equal(bytes.TrimSpace(x), bytes.TrimSpace(y))
	}
	return jsonValuesEqual(xv, yv)
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after json value")
	}
	return v, nil
}

func jsonValuesEqual(x, y any) bool {
	switch xv := x.(type) {
	case nil:
		return y == nil
	case bool:
		yv, ok := y.(bool)
		return ok && xv == yv
	case string:
		yv, ok := y.(string)
		return ok && xv == yv
	case json.Number:
		yv, ok := y.(json.Number)
		return ok && canonicalNumber(string(xv)) == canonicalNumber(string(yv))
	case []any:
		yv, ok := y.([]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if !jsonValuesEqual(xv[i], yv[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		yv, ok := y.(map[string]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for k, v := range xv {
			w, ok := yv[k]
			if !ok || !jsonValuesEqual(v, w) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// canonicalNumber returns a canonical text for a JSON number, exact for any magnitude and
// precision: an optional minus sign, the significant digits without leading or trailing
// zeros, "e" and the decimal exponent; zero (and minus zero) is "0". The work is linear in
// the length of the input, so huge exponents such as 1e999999999 cost nothing.
func canonicalNumber(orig string) string {
	s := orig
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expText := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	exp := new(big.Int)
	if expText != "" {
		if _, ok := exp.SetString(expText, 10); !ok {
			return orig // not a JSON number; compare as text
		}
	}
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0"
	}
	trimmed := strings.TrimRight(digits, "0")
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed))))
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + exp.String()
}

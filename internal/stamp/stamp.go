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

// Package stamp signs and verifies the actor stamps of the audit trail.
//
// The admission webhooks write who changed or deleted a flagops object into an annotation
// (flagops.dev/changed-by, flagops.dev/deleted-by). Anyone who may edit the object may also
// write that annotation, for example while the webhooks (failurePolicy Ignore) are down. So
// next to each name the webhooks write a stamp: an HMAC-SHA256, keyed by a secret only the
// manager holds, over a Claim. The controllers rebuild the Claim from the object version they
// audit and trust the name only when the stamp verifies.
//
// A write made through flagops' console also carries the console's request (route, source
// IP, user agent: audit.Request), which the webhook reads from the user's extras and which
// the claim then covers too, so that it is recorded only as the webhook saw it.
//
// Invariants a reader can check here:
//   - a Claim is encoded field by field, each length-prefixed, behind a version string, so
//     that no two different claims encode alike;
//   - a Claim without a request is encoded and signed as in version 1 (prefix "v1."), so
//     that stamps made before requests were covered still verify; a Claim with a request is
//     version 2 (prefix "v2."), the version-1 fields followed by the request's;
//   - Sign uses the first key; Verify accepts a stamp made by any key (rotation);
//   - a nil *Keys signs nothing and verifies nothing.
package stamp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/flagops/flagops/internal/audit"
)

// The operations a Claim covers.
const (
	// OpCreate is a create. The API server assigns the UID and the generation after
	// admission, so a create claim has neither.
	OpCreate = "CREATE"
	// OpUpdate is an update that changed the spec. Its claim carries the UID and generation
	// of the object it replaced.
	OpUpdate = "UPDATE"
	// OpDelete is a deletion. Its claim carries the UID and no spec.
	OpDelete = "DELETE"
)

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = 32

// The versions mixed into every signature, so that one scheme cannot collide with another,
// and the prefixes that start their stamps. Version 2 adds the request.
const (
	version1 = "flagops.dev/actor-stamp/v1"
	prefix1  = "v1."
	version2 = "flagops.dev/actor-stamp/v2"
	prefix2  = "v2."
)

// Claim is what a stamp says: user made this operation on this object version.
type Claim struct {
	Operation string
	Kind      string
	Namespace string
	Name      string
	// UID and Generation are those of the object the write replaced (empty and 0 at
	// create), or of the object being deleted (Generation 0).
	UID        string
	Generation int64
	// SpecSHA256 is SpecHash of the written spec; empty for a delete.
	SpecSHA256 string
	User       string
	// Request is the console request the write or deletion came through, as the webhook
	// read it from the user's extras; zero when there was none.
	Request audit.Request
}

// WithRequest returns c covering r; nil is no request.
func (c Claim) WithRequest(r *audit.Request) Claim {
	c.Request = audit.Request{}
	if r != nil {
		c.Request = *r
	}
	return c
}

// hasRequest reports whether c is signed in version 2.
func (c Claim) hasRequest() bool { return c.Request != audit.Request{} }

// prefix returns the prefix of c's stamps.
func (c Claim) prefix() string {
	if c.hasRequest() {
		return prefix2
	}
	return prefix1
}

// encode returns the unambiguous byte form of c that is signed.
func (c Claim) encode() []byte {
	var buf bytes.Buffer
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		buf.Write(n[:])
		buf.WriteString(s)
	}
	if c.hasRequest() {
		field(version2)
	} else {
		field(version1)
	}
	field(c.Operation)
	field(c.Kind)
	field(c.Namespace)
	field(c.Name)
	field(c.UID)
	binary.BigEndian.PutUint64(n[:], uint64(c.Generation))
	buf.Write(n[:])
	field(c.SpecSHA256)
	field(c.User)
	if c.hasRequest() {
		field(c.Request.Route)
		field(c.Request.SourceIP)
		field(c.Request.UserAgent)
	}
	return buf.Bytes()
}

// Keys holds the stamp keys. The first signs; all verify.
type Keys struct {
	keys [][]byte
}

// ParseKeys reads keys from data: one key per non-empty line, surrounding white space
// removed, each at least MinKeyLen bytes. The first line is the signing key; the others
// are still accepted, so that a key can be rotated without failing stamps already made.
func ParseKeys(data []byte) (*Keys, error) {
	k := &Keys{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) < MinKeyLen {
			return nil, fmt.Errorf("stamp key on line %d is %d bytes, need at least %d", i+1, len(line), MinKeyLen)
		}
		k.keys = append(k.keys, []byte(line))
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("no stamp key found")
	}
	return k, nil
}

// LoadKeys reads keys from a file; see ParseKeys.
func LoadKeys(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the stamp key file: %w", err)
	}
	k, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("stamp key file %s: %w", path, err)
	}
	return k, nil
}

func mac(key []byte, c Claim) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(c.encode())
	return h.Sum(nil)
}

// Sign returns the stamp of c, or "" when k is nil.
func (k *Keys) Sign(c Claim) string {
	if k == nil {
		return ""
	}
	return c.prefix() + base64.RawURLEncoding.EncodeToString(mac(k.keys[0], c))
}

// Verify reports whether stamp is a stamp of c by one of the keys. It is false when k is
// nil or the stamp is malformed.
func (k *Keys) Verify(c Claim, stamp string) bool {
	if k == nil {
		return false
	}
	raw, ok := strings.CutPrefix(stamp, c.prefix())
	if !ok {
		return false
	}
	sum, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return false
	}
	for _, key := range k.keys {
		if hmac.Equal(sum, mac(key, c)) {
			return true
		}
	}
	return false
}

// SpecHash returns the hex SHA-256 of spec in a canonical JSON form: marshalled, then
// decoded and marshalled again, so that object keys are sorted and the text is compact
// whatever form embedded raw JSON values had.
func SpecHash(spec any) (string, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("failed to marshal the spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("failed to decode the spec: %w", err)
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("failed to marshal the canonical spec: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:]), nil
}

// ForWrite returns the claim of a write that produced an object of the given generation
// and spec hash, as the changed-by webhook signs it. Generation 1 is a create, which has no
// UID and no generation yet at admission; a later generation is an update of the object
// with that UID at generation-1, the generation the webhook sees on the replaced object.
func ForWrite(kind, namespace, name, uid string, generation int64, specHash, user string) Claim {
	if generation <= 1 {
		return Claim{Operation: OpCreate, Kind: kind, Namespace: namespace, Name: name, SpecSHA256: specHash, User: user}
	}
	return Claim{Operation: OpUpdate, Kind: kind, Namespace: namespace, Name: name, UID: uid,
		Generation: generation - 1, SpecSHA256: specHash, User: user}
}

// ForDelete returns the claim of the deletion of the object with the given UID.
func ForDelete(kind, namespace, name, uid, user string) Claim {
	return Claim{Operation: OpDelete, Kind: kind, Namespace: namespace, Name: name, UID: uid, User: user}
}

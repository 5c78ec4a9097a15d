//go:build e2e

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

package e2ecluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	. "github.com/onsi/gomega"
)

// tokenKey signs the suite's context tokens; its public half goes into the Secret
// flagops-evaluator-keys.
var tokenKey = func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// jwks is the evaluator's keys file: the public key of tokenKey.
func jwks() []byte {
	raw, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "e2e", "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(tokenKey.Public().(ed25519.PublicKey)),
	}}})
	Expect(err).NotTo(HaveOccurred())
	return raw
}

// token mints a context token for namespace ns with the evaluation context ctxClaims,
// valid for ten minutes.
func token(ns string, ctxClaims map[string]string) string {
	enc := func(v any) string {
		raw, err := json.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	now := time.Now()
	signing := enc(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": "e2e"}) + "." +
		enc(map[string]any{"aud": "flagops:" + ns, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "ctx": ctxClaims})
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(tokenKey, []byte(signing)))
}

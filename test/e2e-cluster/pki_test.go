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
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"time"

	. "github.com/onsi/gomega"
)

// webhookCerts stands in for cert-manager: a CA and a serving certificate for the names the
// API server uses to reach the Service flagops-webhook-service, as PEM.
func webhookCerts() (caPEM, certPEM, keyPEM []byte) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flagops-e2e-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(caDER)
	Expect(err).NotTo(HaveOccurred())

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "flagops-webhook-service.flagops-system.svc"},
		DNSNames: []string{
			"flagops-webhook-service.flagops-system.svc",
			"flagops-webhook-service.flagops-system.svc.cluster.local",
		},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

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

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

package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// testCertificate returns a self-signed PEM certificate named cn, valid until notAfter.
func testCertificate(t *testing.T, cn string, isCA bool, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCABundle(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	newCA := testCertificate(t, caName, true, now.Add(time.Hour))
	oldCA := testCertificate(t, caName, true, now.Add(time.Minute))
	olderCA := testCertificate(t, caName, true, now.Add(2*time.Minute))
	expiredCA := testCertificate(t, caName, true, now.Add(-time.Second))
	foreignCA := testCertificate(t, "someone-else", true, now.Add(time.Hour))
	leaf := testCertificate(t, caName, false, now.Add(time.Hour))
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }

	for _, tc := range []struct {
		name          string
		current, want []byte
	}{
		{"an empty caBundle gets the CA", nil, newCA},
		{"the CA alone stays as it is", newCA, newCA},
		{"an earlier CA stays, after the new one", oldCA, cat(newCA, oldCA)},
		{"earlier CAs keep their order, the CA comes first, once", cat(oldCA, newCA, olderCA), cat(newCA, oldCA, olderCA)},
		{"an expired CA goes", cat(newCA, expiredCA, oldCA), cat(newCA, oldCA)},
		{"a CA the manager did not make goes", cat(foreignCA, oldCA), cat(newCA, oldCA)},
		{"a certificate that is not a CA goes", cat(leaf, oldCA), cat(newCA, oldCA)},
		{"what is not a certificate goes", cat([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), oldCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), cat(newCA, oldCA)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caBundle(tc.current, newCA, now)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("caBundle:\n%s\nwant:\n%s", got, tc.want)
			}
			if again, _ := caBundle(got, newCA, now); !bytes.Equal(again, got) {
				t.Error("a second pass changes the caBundle")
			}
		})
	}

	t.Run("a CA that is not PEM is an error", func(t *testing.T) {
		if _, err := caBundle(oldCA, []byte("not PEM"), now); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestMirrorWrite(t *testing.T) {
	secret := func(crt, key string) *corev1.Secret {
		return &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte(crt), "tls.key": []byte(key)}}
	}
	read := func(t *testing.T, dir, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("an empty Secret writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		m := &mirror{dir: dir, log: logr.Discard()}
		if err := m.write(secret("", "")); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files written from an empty Secret: %v", entries)
		}
	})

	t.Run("writes, rewrites on a change only, and leaves no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		m := &mirror{dir: dir, log: logr.Discard()}
		if err := m.write(secret("cert-1", "key-1")); err != nil {
			t.Fatal(err)
		}
		if read(t, dir, "tls.crt") != "cert-1" || read(t, dir, "tls.key") != "key-1" {
			t.Fatal("the first certificate was not written")
		}
		before, err := os.Stat(filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.write(secret("cert-2", "key-1")); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) {
			t.Error("an unchanged key was rewritten")
		}
		if read(t, dir, "tls.crt") != "cert-2" {
			t.Error("the renewed certificate was not written")
		}
		if info, _ := os.Stat(filepath.Join(dir, "tls.key")); info.Mode().Perm() != 0o600 {
			t.Errorf("tls.key mode %v, want 0600", info.Mode().Perm())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Errorf("files left: %v", entries)
		}
	})

	t.Run("a directory it cannot write is an error naming the file", func(t *testing.T) {
		m := &mirror{dir: filepath.Join(t.TempDir(), "missing"), log: logr.Discard()}
		if err := m.write(secret("c", "k")); err == nil || !strings.Contains(err.Error(), "tls.key") {
			t.Fatalf("write into a missing directory: %v", err)
		}
	})
}

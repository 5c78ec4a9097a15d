package server

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

// pemKey encodes a public key as a PEM block, with a kid header unless
// kid is empty.
func pemKey(t testing.TB, kid string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	if kid != "" {
		b.Headers = map[string]string{"kid": kid}
	}
	return string(pem.EncodeToMemory(b))
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf renders the public JWK of a key, with extra members.
func jwkOf(t testing.TB, kid string, pub any, extra ...string) map[string]any {
	t.Helper()
	m := map[string]any{}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		m = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64u(k)}
	case *rsa.PublicKey:
		m = map[string]any{"kty": "RSA", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m = map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": b64u(pt[1:33]), "y": b64u(pt[33:])}
	}
	if kid != "" {
		m["kid"] = kid
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func jwks(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// opensslKeys are public keys written by OpenSSL 3.0 as docs/security.md
// shows (openssl genpkey, then openssl pkey -pubout), with kid headers
// added by hand.
const opensslKeys = `-----BEGIN PUBLIC KEY-----
kid: 2026-07

MCowBQYDK2VwAyEAFyX+daHmpvCpFNURhaGdA+ygo7pzs0PtrKl84JdCs90=
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
kid: rsa-2026-07

MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmr3tTGsN4ggyFwrsBWjH
pwuudrTjNShwVjeasvBIyst5CcXGkrocCbi93o1ewPbGWE0ijXjOlIn+mJbXYB3W
qViNarRPM3SSOtVWjCY1vrMGMqEK6bPtSrVlWYOHwM/q9ytlXnLpUJKX5QHqy9vb
F/I2stYeiqY+PfqZ+36WQgQx3Zr3ujAnazpUboIljmhecHLIG829XKdrRnwWRG/l
wWYQv5SDF2CiioX76tfo3ENhjUXF/uyttvrwWPxXWFSwdip7wb0wOTfazNRhPWM6
UxbyaiEn0HSkelcQfFPoa2eX0jeUZ4Ki9IVcU8AY5f1saPh3MUkEPkfPks2AS2hG
xQIDAQAB
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
kid: ec-2026-07

MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9hCpHv6JMx2Tg3CGo7jihSouSU5G
l1iqXxFl0QZ5LZiFWsefb+YuB1gCmAHorzA0VxGxuWCsiy3ijDktkMtfBg==
-----END PUBLIC KEY-----
`

func TestParseKeySet(t *testing.T) {
	k := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := k.ed.Public()
	rsaPKCS1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Headers: map[string]string{"kid": "r"},
		Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	privPEM := func() string {
		der, err := x509.MarshalPKCS8PrivateKey(k.ed)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}()
	tests := []struct {
		name    string
		data    string
		wantIDs string // comma-separated, sorted
		wantErr string
	}{
		{name: "JWKS of three key types", wantIDs: "e,ed,r", data: jwks(t,
			jwkOf(t, "ed", ed, "alg", "EdDSA", "use", "sig"), jwkOf(t, "r", &k.rsa.PublicKey, "alg", "RS256"), jwkOf(t, "e", &k.ec.PublicKey))},
		{name: "JWKS of one key without kid", wantIDs: "", data: jwks(t, jwkOf(t, "", ed))},
		{name: "JWKS with padded base64", wantIDs: "ed", data: jwks(t, jwkOf(t, "ed", ed, "x", b64u(ed.(ed25519.PublicKey))+"="))},
		{name: "PEM keys with kid headers", wantIDs: "ec,ed,r", data: pemKey(t, "ed", ed) + "\n" + rsaPKCS1 + pemKey(t, "ec", &k.ec.PublicKey)},
		{name: "one PEM key without kid", wantIDs: "", data: pemKey(t, "", &k.rsa.PublicKey)},
		{name: "OpenSSL keys", wantIDs: "2026-07,ec-2026-07,rsa-2026-07", data: opensslKeys},

		{name: "empty", data: " \n", wantErr: "no keys: the file is empty"},
		{name: "neither JSON nor PEM", data: "hello", wantErr: "neither a JWKS (JSON) nor PEM public keys"},
		{name: "invalid JSON", data: `{"keys":[`, wantErr: "invalid JWKS"},
		{name: "no keys in the JWKS", data: `{"keys":[]}`, wantErr: `empty or no "keys" array`},
		{name: "private JWK", data: jwks(t, jwkOf(t, "ed", ed, "d", "AAAA")), wantErr: `JWKS key "ed": holds private key material`},
		{name: "symmetric JWK", data: `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, wantErr: "is a symmetric key: HS256 secrets go in their own file"},
		{name: "encryption key", data: jwks(t, jwkOf(t, "ed", ed, "use", "enc")), wantErr: `use "enc": want sig`},
		{name: "unknown kty", data: `{"keys":[{"kty":"XYZ"}]}`, wantErr: `kty "XYZ"`},
		{name: "OKP not Ed25519", data: jwks(t, jwkOf(t, "x", ed, "crv", "X25519")), wantErr: `OKP curve "X25519": want Ed25519`},
		{name: "Ed25519 x of the wrong size", data: jwks(t, jwkOf(t, "x", ed, "x", b64u([]byte("short")))), wantErr: "x: 5 bytes, want 32"},
		{name: "missing x", data: `{"keys":[{"kty":"OKP","crv":"Ed25519"}]}`, wantErr: "x: missing"},
		{name: "bad base64", data: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!!"}]}`, wantErr: "x: invalid base64url"},
		{name: "RSA key too small", data: jwks(t, jwkOf(t, "small", &small.PublicKey)), wantErr: `key "small": RSA key of 1024 bits, fewer than 2048`},
		{name: "RSA bad exponent", data: jwks(t, jwkOf(t, "r", &k.rsa.PublicKey, "e", b64u([]byte{2}))), wantErr: "e: not a usable RSA public exponent"},
		{name: "RSA missing n", data: `{"keys":[{"kty":"RSA","e":"AQAB"}]}`, wantErr: "n: missing"},
		{name: "RSA missing e", data: jwks(t, jwkOf(t, "r", &k.rsa.PublicKey, "e", "")), wantErr: "e: missing"},
		{name: "EC P-384", data: jwks(t, jwkOf(t, "e", &p384.PublicKey)), wantErr: `EC curve "P-384": want P-256`},
		{name: "EC point off the curve", data: `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64u(make([]byte, 32)) + `","y":"` + b64u(make([]byte, 32)) + `"}]}`,
			wantErr: "not a P-256 point"},
		{name: "EC coordinates of the wrong size", data: `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, wantErr: "32 bytes each"},
		{name: "EC missing y", data: `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA"}]}`, wantErr: "y: missing"},
		{name: "EC missing x", data: `{"keys":[{"kty":"EC","crv":"P-256"}]}`, wantErr: "x: missing"},
		{name: "alg that does not fit", data: jwks(t, jwkOf(t, "ed", ed, "alg", "RS256")), wantErr: `key "ed": alg "RS256" does not fit a EdDSA key`},
		{name: "duplicate kid", data: jwks(t, jwkOf(t, "a", ed), jwkOf(t, "a", &k.ec.PublicKey)), wantErr: `key ID "a" is used twice`},
		{name: "several keys, one without kid", data: jwks(t, jwkOf(t, "a", ed), jwkOf(t, "", &k.ec.PublicKey)), wantErr: "key #2 has no key ID (kid)"},
		{name: "PEM private key", data: privPEM, wantErr: "PEM block 1 is a private key (PRIVATE KEY): give only public keys"},
		{name: "PEM certificate", data: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), wantErr: `unsupported type "CERTIFICATE"`},
		{name: "PEM garbage key", data: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}})), wantErr: "PEM block 1:"},
		{name: "PEM P-384 key", data: pemKey(t, "", &p384.PublicKey), wantErr: "only P-256 (ES256) is supported"},
		{name: "data after PEM", data: pemKey(t, "", ed) + "trailing", wantErr: "unexpected data after PEM block 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := ParseKeySet([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ks.IDs(), ","); got != tc.wantIDs || ks.Len() != len(ks.IDs()) {
				t.Errorf("IDs %q (Len %d), want %q", got, ks.Len(), tc.wantIDs)
			}
		})
	}
}

func TestNewKeySet(t *testing.T) {
	tests := []struct {
		name    string
		keys    []Key
		wantErr string
	}{
		{name: "none", wantErr: "no keys"},
		{name: "nil public key", keys: []Key{{ID: "a"}}, wantErr: `key "a": no public key`},
		{name: "unsupported type", keys: []Key{{Public: "secret"}}, wantErr: "key #1: unsupported key type string"},
		{name: "short Ed25519 key", keys: []Key{{Public: ed25519.PublicKey{1}}}, wantErr: "Ed25519 key of 1 bytes"},
		{name: "RSA without modulus", keys: []Key{{Public: &rsa.PublicKey{}}}, wantErr: "RSA key of 0 bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeySet(tc.keys...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

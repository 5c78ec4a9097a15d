package server

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Signing algorithms of context tokens. The asymmetric ones verify with a
// Key; HS256 only with AuthOptions.HS256Secret.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgHS256 = "HS256"
)

// Key size limits.
const (
	// MinRSABits is the smallest RSA modulus a Key may have.
	MinRSABits = 2048
	// MinHS256SecretBytes is the shortest HS256 secret accepted.
	MinHS256SecretBytes = 32
)

// Key is a public key verifying context tokens.
type Key struct {
	// ID is the key ID (the JWT header's kid). It may be empty only in a
	// set of one key.
	ID string
	// Alg is EdDSA (Public is an ed25519.PublicKey), RS256 (*rsa.PublicKey
	// of at least MinRSABits) or ES256 (*ecdsa.PublicKey on P-256). Empty
	// means the algorithm of the key's type.
	Alg    string
	Public crypto.PublicKey
}

// KeySet is an immutable set of public keys, selected by key ID.
type KeySet struct {
	keys []Key
	byID map[string]int
}

// NewKeySet checks keys and returns them as a set: at least one key, each
// with a supported type and size and an algorithm that fits it, key IDs
// unique, and present on every key when there are several.
func NewKeySet(keys ...Key) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	ks := &KeySet{keys: make([]Key, len(keys)), byID: make(map[string]int, len(keys))}
	for i, k := range keys {
		alg, err := keyAlg(k.Public)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", keyName(i, k.ID), err)
		}
		if k.Alg != "" && k.Alg != alg {
			return nil, fmt.Errorf("key %s: alg %q does not fit a %s key", keyName(i, k.ID), k.Alg, alg)
		}
		if k.ID == "" && len(keys) > 1 {
			return nil, fmt.Errorf("key %s has no key ID (kid): with several keys every key needs one", keyName(i, ""))
		}
		if _, dup := ks.byID[k.ID]; dup {
			return nil, fmt.Errorf("key ID %q is used twice", k.ID)
		}
		k.Alg = alg
		ks.keys[i] = k
		ks.byID[k.ID] = i
	}
	return ks, nil
}

func keyName(i int, id string) string {
	if id != "" {
		return fmt.Sprintf("%q", id)
	}
	return fmt.Sprintf("#%d", i+1)
}

// keyAlg returns the algorithm of a supported public key.
func keyAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("Ed25519 key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return AlgEdDSA, nil
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("RSA key of %d bits, fewer than %d", bitLen(k.N), MinRSABits)
		}
		return AlgRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on curve %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return AlgES256, nil
	case nil:
		return "", errors.New("no public key")
	}
	return "", fmt.Errorf("unsupported key type %T (want Ed25519, RSA or EC P-256)", pub)
}

func bitLen(n *big.Int) int {
	if n == nil {
		return 0
	}
	return n.BitLen()
}

// IDs returns the key IDs of the set, sorted ("" for a key without one).
func (ks *KeySet) IDs() []string {
	ids := make([]string, 0, len(ks.keys))
	for _, k := range ks.keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

// Len returns the number of keys.
func (ks *KeySet) Len() int { return len(ks.keys) }

// lookup returns the key of kid. A token without kid may use the only key
// of a set of one.
func (ks *KeySet) lookup(kid string) (*Key, error) {
	if kid == "" {
		if len(ks.keys) == 1 {
			return &ks.keys[0], nil
		}
		return nil, errors.New("the token has no kid header, and there are several keys")
	}
	i, ok := ks.byID[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key ID (kid) %q", kid)
	}
	return &ks.keys[i], nil
}

// ParseKeySet reads public keys from a JSON Web Key Set ({"keys":[...]},
// RFC 7517) or from PEM blocks ("PUBLIC KEY" in PKIX form, or "RSA PUBLIC
// KEY" in PKCS #1 form; a "kid" PEM header gives the key ID). JWKS keys
// are OKP/Ed25519, RSA and EC/P-256; a key with "use" other than "sig",
// with an alg that does not fit it, symmetric keys and private key
// material are rejected.
func ParseKeySet(data []byte) (*KeySet, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("no keys: the file is empty")
	}
	var keys []Key
	var err error
	if trimmed[0] == '{' {
		keys, err = parseJWKS(trimmed)
	} else {
		keys, err = parsePEM(trimmed)
	}
	if err != nil {
		return nil, err
	}
	return NewKeySet(keys...)
}

// jwk holds the members of a JSON Web Key that matter here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	// Private or symmetric key material: rejected.
	D string `json:"d"`
	P string `json:"p"`
	K string `json:"k"`
}

func parseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("invalid JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no keys: the JWKS has an empty or no \"keys\" array")
	}
	keys := make([]Key, 0, len(set.Keys))
	for i, j := range set.Keys {
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %s: %w", keyName(i, j.Kid), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (j *jwk) key() (Key, error) {
	switch {
	case j.D != "" || j.P != "":
		return Key{}, errors.New("holds private key material (member d or p): give only public keys")
	case j.Kty == "oct" || j.K != "":
		return Key{}, errors.New("is a symmetric key: HS256 secrets go in their own file (--context-token-hs256-secret-file)")
	case j.Use != "" && j.Use != "sig":
		return Key{}, fmt.Errorf("use %q: want sig", j.Use)
	}
	k := Key{ID: j.Kid, Alg: j.Alg}
	switch j.Kty {
	case "OKP":
		if j.Crv != "Ed25519" {
			return Key{}, fmt.Errorf("OKP curve %q: want Ed25519", j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return Key{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("x: %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		k.Public = ed25519.PublicKey(x)
	case "RSA":
		n, err := b64("n", j.N)
		if err != nil {
			return Key{}, err
		}
		e, err := b64("e", j.E)
		if err != nil {
			return Key{}, err
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return Key{}, errors.New("e: not a usable RSA public exponent")
		}
		k.Public = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "EC":
		if j.Crv != "P-256" {
			return Key{}, fmt.Errorf("EC curve %q: want P-256", j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return Key{}, err
		}
		y, err := b64("y", j.Y)
		if err != nil {
			return Key{}, err
		}
		if len(x) != 32 || len(y) != 32 {
			return Key{}, errors.New("x and y must be 32 bytes each for P-256")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return Key{}, fmt.Errorf("not a P-256 point: %w", err)
		}
		k.Public = pub
	default:
		return Key{}, fmt.Errorf("kty %q: want OKP, RSA or EC", j.Kty)
	}
	return k, nil
}

// b64 decodes a base64url member (RFC 7515: no padding; padding is
// tolerated).
func b64(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%s: missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%s: invalid base64url: %w", name, err)
	}
	return b, nil
}

func parsePEM(data []byte) ([]Key, error) {
	var keys []Key
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n := len(keys) + 1
		var pub crypto.PublicKey
		var err error
		switch {
		case block.Type == "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case block.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("PEM block %d is a private key (%s): give only public keys", n, block.Type)
		default:
			return nil, fmt.Errorf("PEM block %d: unsupported type %q (want PUBLIC KEY or RSA PUBLIC KEY)", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, Key{ID: block.Headers["kid"], Public: pub})
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		if len(keys) == 0 {
			return nil, errors.New("neither a JWKS (JSON) nor PEM public keys")
		}
		return nil, fmt.Errorf("unexpected data after PEM block %d", len(keys))
	}
	return keys, nil
}

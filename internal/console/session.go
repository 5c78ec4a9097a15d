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

package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// KeySize is the size of the session key: AES-256.
const KeySize = 32

// maxCookie is the longest cookie value a browser is sure to keep (4096 bytes with the name
// and attributes).
const maxCookie = 3800

// sealAAD binds a sealed session to its use: a value sealed with the same key for another
// purpose does not open as a session.
var sealAAD = []byte("flagops-console-session-v1")

// errNoSession is a missing, unreadable or expired session cookie: sign in again.
var errNoSession = errors.New("no session")

// sealed is what the session cookie holds, sealed with AES-GCM: the bearer token and when the
// session began. Nothing else is kept about a session, so any replica with the key serves it.
type sealed struct {
	Token  string `json:"t"`
	Issued int64  `json:"i"`
}

// sealer seals and opens session cookies with the session key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the session key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("failed to set up AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("failed to set up AES-GCM: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns the cookie value of s: a random nonce and the ciphertext, base64url.
func (k *sealer) seal(s sealed) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("failed to encode the session: %w", err)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("failed to make a nonce: %w", err)
	}
	v := base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, sealAAD))
	if len(v) > maxCookie {
		return "", fmt.Errorf("the token is too long to keep in a cookie (%d bytes sealed, at most %d)", len(v), maxCookie)
	}
	return v, nil
}

// open returns the session of a cookie value, or errNoSession when it was not sealed with
// the key (or was changed).
func (k *sealer) open(v string) (sealed, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < k.aead.NonceSize() {
		return sealed{}, errNoSession
	}
	plain, err := k.aead.Open(nil, b[:k.aead.NonceSize()], b[k.aead.NonceSize():], sealAAD)
	if err != nil {
		return sealed{}, errNoSession
	}
	var s sealed
	if err := json.Unmarshal(plain, &s); err != nil || s.Token == "" {
		return sealed{}, errNoSession
	}
	return s, nil
}

// cookieName is the session cookie's name: with the __Host- prefix over HTTPS, so that the
// browser keeps it only if it is Secure, for this host alone and the path /.
func (s *Server) cookieName() string {
	if s.opts.InsecureHTTP {
		return "flagops-console"
	}
	return "__Host-flagops-console"
}

// setSession sets the session cookie: HttpOnly, Secure (unless the console serves plain HTTP
// for tests), SameSite=Strict, for the whole console, ending with the browser session.
func (s *Server) setSession(w http.ResponseWriter, token string, now time.Time) error {
	v, err := s.sealer.seal(sealed{Token: token, Issued: now.Unix()})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: v, Path: "/",
		HttpOnly: true, Secure: !s.opts.InsecureHTTP, SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// clearSession removes the session cookie.
func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: !s.opts.InsecureHTTP, SameSite: http.SameSiteStrictMode,
	})
}

// readSession returns the session of the request's cookie, or errNoSession when there is
// none, it does not open, or it is older than the longest session.
func (s *Server) readSession(r *http.Request) (sealed, error) {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return sealed{}, errNoSession
	}
	sess, err := s.sealer.open(c.Value)
	if err != nil {
		return sealed{}, err
	}
	if age := s.opts.now().Sub(time.Unix(sess.Issued, 0)); age > s.opts.SessionMaxAge || age < -time.Minute {
		return sealed{}, errNoSession
	}
	return sess, nil
}

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

// Package servetest runs the real `flagops serve --dir` binary for tests of clients
// flagops did not write, or that live in modules of their own: it builds the binary,
// starts it on a loopback port (again on the same port, for restarts), writes manifests
// as editors do, and mints context tokens.
package servetest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/internal/atomicfile"
)

// StartTimeout bounds the wait for a started server to report its address: generous,
// since the machine may be busy.
const StartTimeout = 30 * time.Second

// WriteAtomic writes a file as editors that save safely do: a temporary file (a dot file,
// which serve ignores) renamed over the target.
func WriteAtomic(t testing.TB, path, data string) {
	t.Helper()
	if err := atomicfile.Write(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Build builds the flagops binary into a temporary directory and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flagops")
	if err := BuildTo(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildTo builds the flagops binary to the path bin, for programs that are not tests.
func BuildTo(bin string) error {
	cmd := exec.Command("go", "build", "-o", bin, "github.com/flagops/flagops/cmd/flagops")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// LockedBuffer collects a process's output for failure messages.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Server is a running `flagops serve`.
type Server struct {
	// URL is its base URL, http://<address>; Addr the address it listens on.
	URL, Addr string
	// Log is its standard error.
	Log *LockedBuffer
	// Serving is when it reported its address, by the time in its log line (with the
	// log's precision, milliseconds): the time it was listening and serving.
	Serving time.Time

	cmd    *exec.Cmd
	copied chan struct{}
	once   sync.Once
}

var addressRE = regexp.MustCompile(`^time=(\S+) .*msg="Serving flags" address=(\S+)`)

// Start runs `flagops serve --dir dir` on addr (127.0.0.1:0 for any free loopback port)
// with extra flags, and returns once it reports its address. The server is stopped at
// cleanup, and its log shown if the test failed.
func Start(t testing.TB, bin, dir, addr string, extra ...string) *Server {
	t.Helper()
	s, err := StartProcess(bin, dir, addr, extra...)
	if s != nil {
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("flagops serve %s log:\n%s", s.Addr, s.Log.String())
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartProcess is Start for programs that are not tests: the caller stops the server.
// On an error after the process started, it returns the server too, for its log, and
// the caller must still stop it.
func StartProcess(bin, dir, addr string, extra ...string) (*Server, error) {
	args := append([]string{"serve", "--dir", dir, "--evaluator-bind-address", addr}, extra...)
	s := &Server{Log: &LockedBuffer{}, cmd: exec.Command(bin, args...), copied: make(chan struct{})}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("flagops serve: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("flagops serve: %w", err)
	}
	found := make(chan []string, 1)
	go func() {
		defer close(s.copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = fmt.Fprintln(s.Log, sc.Text()) // a LockedBuffer's Write does not fail
			if m := addressRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
	}()
	select {
	case m := <-found:
		s.Addr, s.URL = m[1], "http://"+m[1]
		if s.Serving, err = time.Parse(time.RFC3339Nano, m[0]); err != nil {
			return s, fmt.Errorf("flagops serve: the time of its log line: %w", err)
		}
		return s, nil
	case <-s.copied:
		return s, fmt.Errorf("flagops serve exited before serving:\n%s", s.Log.String())
	case <-time.After(StartTimeout):
		return s, fmt.Errorf("flagops serve did not report its address within %s", StartTimeout)
	}
}

// Pid is the server's process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop interrupts the server and waits for it to exit; it may be called more than once.
func (s *Server) Stop() { s.end(os.Interrupt) }

// Kill kills the server (SIGKILL: no graceful shutdown) and waits for it to exit; it may
// be called more than once, and after Stop.
func (s *Server) Kill() { s.end(os.Kill) }

func (s *Server) end(sig os.Signal) {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(sig) // it may have exited already
		<-s.copied
		_ = s.cmd.Wait() // an interrupted server exits 0; its log tells otherwise
	})
}

// WriteKeys writes a JWKS holding a new Ed25519 public key (kid "test") to path, for
// --context-token-keys-file, and returns the private key.
func WriteKeys(t testing.TB, path string) ed25519.PrivateKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "test",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	WriteAtomic(t, path, string(jwks))
	return priv
}

// MintToken signs a context token for namespace ns, valid for ttl, carrying ctx.
func MintToken(t testing.TB, priv ed25519.PrivateKey, ns string, ttl time.Duration, ctx map[string]any) string {
	t.Helper()
	return MintScoped(t, priv, ns, ttl, ctx, "")
}

// MintScoped is MintToken with a scope claim (none when scope is empty).
func MintScoped(t testing.TB, priv ed25519.PrivateKey, ns string, ttl time.Duration, ctx map[string]any, scope string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"aud": "flagops:" + ns, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "ctx": ctx}
	if scope != "" {
		claims["scope"] = scope
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "test"
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

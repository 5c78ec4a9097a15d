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

package browsertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"html"
	"image/png"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// recorder is a testing.TB whose Fatalf and Skipf record the message and end the goroutine,
// as the real ones do; call it through catch.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// catch runs f with a recorder in a goroutine of its own and returns the recorder.
func catch(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// fakeChromium writes an executable file named name into a new directory and returns the
// directory.
func fakeChromium(t *testing.T, name string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExecutable(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	withChromium := fakeChromium(t, "chromium")
	withBrowser := fakeChromium(t, "chromium-browser")
	for _, tt := range []struct {
		name, chromium, path, ci string
		want                     string // the path found, or ""
		wantFatal, wantSkip      string // what the failure or skip says
	}{
		{name: "CHROMIUM wins over PATH", chromium: filepath.Join(withBrowser, "chromium-browser"), path: withChromium,
			want: filepath.Join(withBrowser, "chromium-browser")},
		{name: "chromium on PATH", path: withChromium, want: filepath.Join(withChromium, "chromium")},
		{name: "chromium-browser on PATH", path: withBrowser, want: filepath.Join(withBrowser, "chromium-browser")},
		{name: "none: skipped locally", path: t.TempDir(), wantSkip: "no chromium or chromium-browser on PATH"},
		{name: "none: fails in CI", path: t.TempDir(), ci: "true", wantFatal: "CI=true and no chromium"},
		{name: "CHROMIUM missing", chromium: filepath.Join(withChromium, "nope"), path: withChromium, ci: "true",
			wantFatal: "CHROMIUM=" + filepath.Join(withChromium, "nope") + ": stat"},
		{name: "CHROMIUM not executable", chromium: notExec, path: withChromium, wantSkip: "is not an executable file"},
		{name: "CHROMIUM a directory", chromium: withChromium, path: withChromium, wantSkip: "is not an executable file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CHROMIUM", tt.chromium)
			t.Setenv("PATH", tt.path)
			t.Setenv("CI", tt.ci)
			var got string
			r := catch(t, func(tb testing.TB) { got = Executable(tb) })
			if got != tt.want || !strings.Contains(r.fatal, tt.wantFatal) || !strings.Contains(r.skip, tt.wantSkip) ||
				(tt.wantFatal == "") != (r.fatal == "") || (tt.wantSkip == "") != (r.skip == "") {
				t.Errorf("got %q, fatal %q, skip %q; want %q, fatal %q, skip %q", got, r.fatal, r.skip, tt.want, tt.wantFatal, tt.wantSkip)
			}
		})
	}
}

// TestStartFailureShowsTheOutput checks that a browser that does not start fails the test
// with what it printed.
func TestStartFailureShowsTheOutput(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'cannot open display: nowhere' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHROMIUM", bin)
	r := catch(t, func(tb testing.TB) { New(tb, Timeout(time.Minute)) })
	for _, want := range []string{"failed to start " + bin, "cannot open display: nowhere"} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("the failure does not say %q:\n%s", want, r.fatal)
		}
	}
}

const formPage = `<!doctype html>
<html><head><meta name="viewport" content="width=device-width"><title>Form</title></head>
<body><h1>Greeter</h1>
<form method="post" action="/greet"><label>Name <input id="name" name="name"></label>
<button id="go" type="submit">Greet</button></form></body></html>`

// formServer serves formPage at / and, at POST /greet, a page whose #result greets the
// posted name; it counts the greetings.
func formServer(greetings *atomic.Int32) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, formPage)
	})
	mux.HandleFunc("POST /greet", func(w http.ResponseWriter, r *http.Request) {
		greetings.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><html><body><p id="result">Hello, %s</p></body></html>`, html.EscapeString(r.PostFormValue("name")))
	})
	return mux
}

// TestBrowser fills and submits a form on an HTTPS httptest server in a 375 px wide
// browser, reads the result, and takes a screenshot.
func TestBrowser(t *testing.T) {
	var greetings atomic.Int32
	srv := httptest.NewTLSServer(formServer(&greetings))
	defer srv.Close()
	b := New(t, WindowSize(375, 700), TrustCertificate(srv.Certificate()))

	b.Do(
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Ada <Lovelace>"),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if got := Run(b, chromedp.Text(chromedp.ID("result"))); got != "Hello, Ada <Lovelace>" {
		t.Errorf("result: %q", got)
	}
	if n := greetings.Load(); n != 1 {
		t.Errorf("the server greeted %d times, want 1", n)
	}
	if got := Run(b, chromedp.Evaluate[[]int](`[innerWidth, innerHeight]`)); len(got) != 2 || got[0] != 375 || got[1] != 700 {
		t.Errorf("the viewport is %v, want [375 700]", got)
	}

	path := filepath.Join(t.TempDir(), "result.png")
	shot := b.Screenshot(path)
	onDisk, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(onDisk, shot) {
		t.Fatalf("screenshot file: %v (%d bytes, returned %d)", err, len(onDisk), len(shot))
	}
	img, err := png.Decode(bytes.NewReader(onDisk))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w != 375 {
		t.Errorf("screenshot width %d, want 375 (the window's)", w)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the screenshot's directory has %d entries, want the PNG alone (no temporary file left)", len(entries))
	}
}

// TestTrustCertificateTrustsOneKey checks that a trusted certificate does not make the
// browser accept another: a server with a certificate of its own is refused, and never
// gets the request.
func TestTrustCertificateTrustsOneKey(t *testing.T) {
	var greetings atomic.Int32
	trusted := httptest.NewTLSServer(formServer(&greetings))
	defer trusted.Close()
	var hits atomic.Int32
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	other.StartTLS()
	defer other.Close()

	b := New(t, TrustCertificate(trusted.Certificate()))
	b.Do(chromedp.Navigate(trusted.URL + "/"))
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Navigate(other.URL+"/"))
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("navigating to a server with an untrusted certificate: %v, want net::ERR_CERT_AUTHORITY_INVALID", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the untrusted server got %d requests", n)
	}
}

// selfSigned returns a new self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestFailureShowsThePage checks that a step that times out fails the test with the page's
// URL and text.
func TestFailureShowsThePage(t *testing.T) {
	var greetings atomic.Int32
	srv := httptest.NewTLSServer(formServer(&greetings))
	defer srv.Close()
	b := New(t, TrustCertificate(srv.Certificate()))
	b.Do(chromedp.Navigate(srv.URL + "/"))

	r := catch(t, func(tb testing.TB) {
		short := *b
		short.t, short.timeout = tb, 2*time.Second
		short.Do(chromedp.WaitVisible(chromedp.ID("never")))
	})
	for _, want := range []string{"deadline exceeded", "page " + srv.URL + "/", "Greeter\nName"} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("the failure does not say %q:\n%s", want, r.fatal)
		}
	}
}

// TestNewTab checks that a second tab shares the browser's cookies and viewport, and that
// each tab shows its own page.
func TestNewTab(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: "ada", Path: "/", Secure: true, HttpOnly: true})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, `<!doctype html><p id="set">set</p>`)
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><p id="who">%s</p>`, html.EscapeString(who))
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	b := New(t, WindowSize(375, 700), TrustCertificate(srv.Certificate()))
	b.Do(chromedp.Navigate(srv.URL+"/set"), chromedp.WaitVisible(chromedp.ID("set")))
	tab := b.NewTab(t)
	tab.Do(chromedp.Navigate(srv.URL+"/get"), chromedp.WaitVisible(chromedp.ID("who")))
	if got := Run(tab, chromedp.Text(chromedp.ID("who"))); got != "ada" {
		t.Errorf("the second tab's cookie: %q, want ada", got)
	}
	if got := Run(tab, chromedp.Evaluate[int](`innerWidth`)); got != 375 {
		t.Errorf("the second tab's viewport is %d wide, want 375", got)
	}
	if got := Run(b, chromedp.Location()); got != srv.URL+"/set" {
		t.Errorf("the first tab shows %s, want its own page", got)
	}
}

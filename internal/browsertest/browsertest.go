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

// Package browsertest drives a headless Chromium from Go tests, through chromedp: New starts
// a browser for one test, with a fresh profile in the test's temporary directory, and kills
// it, with every process it started, when the test ends.
//
//	b := browsertest.New(t, browsertest.WindowSize(375, 800), browsertest.TrustCertificate(srv.Certificate()))
//	b.Do(chromedp.Navigate(srv.URL), chromedp.SetValue(chromedp.ID("name"), "ada"), chromedp.Submit(chromedp.ID("name")))
//	got := browsertest.Run(b, chromedp.Text(chromedp.ID("result")))
//	png := b.Screenshot(filepath.Join(t.TempDir(), "page.png"))
//
// Every step runs with a timeout (Timeout, generous by default, for a busy machine); a step
// that fails or times out fails the test with the page's URL and text.
//
// The browser is $CHROMIUM, else chromium or chromium-browser on PATH. Without one a test
// skips, except when CI=true, where it fails: CI installs Chromium (.ci/run) and must never
// skip these tests silently.
//
// The sandbox: Chromium refuses to start as root with its sandbox on ("Running as root
// without --no-sandbox is not supported"), and CI runs as root; so a browser started by root
// gets --no-sandbox, and one started by any other user keeps its sandbox. The pages it loads
// are the test's own.
//
// HTTPS: chromedp cannot give Chromium a CA to trust. TrustCertificate gives it
// --ignore-certificate-errors-spki-list with the SHA-256 of one certificate's public key
// (that of an httptest TLS server), so that certificate errors are ignored for that key
// alone, and any other certificate is refused as usual. IgnoreCertificateErrors
// (--ignore-certificate-errors, every certificate accepted) is there for a test that cannot
// name its certificate; it is acceptable in tests only.
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flagops/flagops/internal/atomicfile"
)

// Executable returns the path of the Chromium to run: $CHROMIUM, else chromium or
// chromium-browser on PATH. Without one it skips the test, or fails it when CI=true.
func Executable(t testing.TB) string {
	t.Helper()
	path, err := executable()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %v: .ci/run installs Debian's chromium; browser tests never skip in CI", err)
	}
	t.Skipf("%v: install chromium (apt-get install chromium) or set CHROMIUM", err)
	return ""
}

func executable() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("CHROMIUM=%s: %w", p, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("CHROMIUM=%s is not an executable file", p)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium or chromium-browser on PATH, and CHROMIUM is not set")
}

type config struct {
	width, height int
	timeout       time.Duration
	flags         []chromedp.ExecAllocatorOption
}

// An Option configures New.
type Option func(*config)

// WindowSize sets the page's viewport in CSS pixels (default 1280x800), at a device scale
// of 1: the window's innerWidth and innerHeight, and the size of Screenshot's image. The
// window gets that size too, but a Chromium window is at least 500 px wide, even headless,
// so the tab overrides its device metrics (Emulation.setDeviceMetricsOverride, not a mobile
// device: no touch, and the page's meta viewport is not applied).
func WindowSize(width, height int) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// Timeout sets the time each step (Do, Run, Screenshot) and the browser's start may take
// (default 60 s).
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// TrustCertificate makes the browser accept a server certificate with cert's public key
// (httptest.Server.Certificate()), despite errors such as an unknown issuer, and no other.
func TrustCertificate(cert *x509.Certificate) Option {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	spki := base64.StdEncoding.EncodeToString(sum[:])
	return func(c *config) {
		c.flags = append(c.flags, chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	}
}

// IgnoreCertificateErrors makes the browser accept every certificate. Prefer
// TrustCertificate.
func IgnoreCertificateErrors() Option {
	return func(c *config) { c.flags = append(c.flags, chromedp.IgnoreCertErrors) }
}

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	t             testing.TB
	ctx           context.Context
	timeout       time.Duration
	width, height int
	log           string // the file of the browser's output
	pid           int    // the browser's, and its process group's
}

// New starts a headless Chromium for t, with a fresh profile in t.TempDir(), and opens a
// blank tab. When t ends, the browser is closed and every process it started killed.
func New(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	c := config{width: 1280, height: 800, timeout: 60 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	exe := Executable(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	log, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatalf("failed to create the browser's log: %v", err)
	}
	t.Cleanup(func() { _ = log.Close() }) // after the browser's cleanup, below
	var cmd atomic.Pointer[exec.Cmd]
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(c.width, c.height),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0),
		chromedp.CombinedOutput(log),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			c.SysProcAttr = procAttr()
			cmd.Store(c)
		}),
	)
	allocOpts = append(allocOpts, c.flags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, ctx: ctx, timeout: c.timeout, width: c.width, height: c.height, log: log.Name()}
	t.Cleanup(func() {
		// Close gracefully (Chromium then ends its own processes), then kill the rest of
		// the group and wait until it is gone, so that nothing writes in the profile
		// while the test's temporary directory is removed.
		closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(closeCtx)
		cancel()
		cancelTab()
		cancelAlloc()
		// The cancels wait for the browser's process to end, which it started: its Process
		// is set.
		if cmd := cmd.Load(); cmd != nil && cmd.Process != nil {
			if err := killGroup(cmd.Process.Pid, c.timeout); err != nil {
				t.Error(err)
			}
		}
	})

	if err := b.open(); err != nil {
		cancelTab()
		t.Fatalf("failed to start %s: %v\n%s", exe, err, b.output())
	}
	b.pid = cmd.Load().Process.Pid
	return b
}

// open runs the first action in b's tab, which starts the browser (for New) or opens the
// tab (for NewTab), and sets the viewport. That run lives as long as the tab: it gets no
// timeout of its own (chromedp would close the tab, or the browser, at that deadline), so the
// wait is bounded here.
func (b *Browser) open() error {
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(b.ctx, chromedp.EmulateViewport(int64(b.width), int64(b.height))) }()
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case err := <-started:
		return err
	case <-timer.C:
		return fmt.Errorf("no answer within %v", b.timeout)
	}
}

// NewTab opens another tab in b's browser, with b's viewport and timeout, for the test t
// (b's own, or one of its subtests): it shares b's profile, so its cookies. The tab is
// closed when t ends.
func (b *Browser) NewTab(t testing.TB) *Browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tab := &Browser{t: t, ctx: ctx, timeout: b.timeout, width: b.width, height: b.height, log: b.log, pid: b.pid}
	t.Cleanup(func() {
		closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
		defer cancelClose()
		_ = chromedp.Cancel(closeCtx)
		cancel()
	})
	if err := tab.open(); err != nil {
		cancel()
		t.Fatalf("failed to open a tab: %v\n%s", err, b.output())
	}
	return tab
}

// Context returns the tab's chromedp context, for chromedp.Run with a context of one's own
// (derive it with context.WithTimeout: the tab's context has no deadline).
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs steps in the tab, in order, within the timeout; on an error it fails the test with
// the page's URL and text.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	Run(b, chromedp.Steps(steps...))
}

// Run runs one action in the tab within b's timeout and returns its value; on an error it
// fails the test with the page's URL and text.
func Run[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v\n%s", err, b.page())
	}
	return v
}

// page describes the page for a failure: its URL and text, or why they could not be read.
func (b *Browser) page() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	type state struct {
		URL  string `json:"url"`
		Text string `json:"text"`
	}
	s, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({url: location.href, text: document.body ? document.body.innerText : ""})`))
	if err != nil {
		return fmt.Sprintf("(the page could not be read: %v)\n%s", err, b.output())
	}
	return fmt.Sprintf("page %s, its text:\n%s", s.URL, s.Text)
}

// output returns the browser's output so far, for a failure.
func (b *Browser) output() string {
	out, err := os.ReadFile(b.log)
	if err != nil {
		return fmt.Sprintf("(the browser's output could not be read: %v)", err)
	}
	return "browser output:\n" + string(out)
}

// Screenshot writes a PNG of the viewport to path (through a temporary file in its
// directory, renamed) and returns it.
func (b *Browser) Screenshot(path string) []byte {
	b.t.Helper()
	png := Run(b, chromedp.CaptureScreenshot())
	if err := atomicfile.Write(path, png, 0o644); err != nil {
		b.t.Fatalf("failed to write the screenshot: %v", err)
	}
	return png
}

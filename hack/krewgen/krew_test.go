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

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/flagops/flagops/internal/atomicfile"
)

// krewEnv is the whole environment of a krew run with its root in root: no upgrade check,
// and every HTTP request through a proxy on a closed loopback port, so that a download
// fails instead of reaching the network. PATH has root/bin first, as krew's setup
// instructions put it.
func krewEnv(root, home string) []string {
	return []string{
		"PATH=" + filepath.Join(root, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"KREW_ROOT=" + root,
		"KREW_NO_UPGRADE_CHECK=1",
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9",
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}
}

// TestKrewInstall installs the plugin with krew (make test builds the pinned krew into ./bin
// and names it in $KREW), offline: --manifest skips the plugin index and --archive the
// download, and krew still checks the archive against the manifest's sha256. The archive is
// this machine's platform's, built by krewgen as make krew-archives builds it.
func TestKrewInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin for a release archive: not in -short")
	}
	krew := os.Getenv("KREW")
	if krew == "" {
		t.Fatal("KREW is not set: run the tests with `make test`, which installs krew into ./bin and sets KREW")
	}
	p := platform{runtime.GOOS, runtime.GOARCH}
	if !slices.Contains(platforms, p) || p.OS == "windows" {
		t.Skipf("no release archive for %s/%s, or no ln for the completion caveat", p.OS, p.Arch)
	}
	const version = "v1.2.3"
	dist := t.TempDir()
	start := time.Now()
	if err := build(dist, version, []platform{p}); err != nil {
		t.Fatal(err)
	}
	t.Logf("build of the %s/%s archive: %v", p.OS, p.Arch, time.Since(start).Round(time.Millisecond))
	archivePath := filepath.Join(dist, archiveName(version, p))
	digest, err := digestOf(archivePath)
	if err != nil {
		t.Fatal(err)
	}

	// install writes the manifest of version with digest for this platform and runs krew
	// install with it and the archive in a new KREW_ROOT, which it returns.
	install := func(t *testing.T, digest string) (root, home, out string, err error) {
		t.Helper()
		m, err := manifest(version, map[string]string{archiveName(version, p): digest})
		if err != nil {
			t.Fatal(err)
		}
		mpath := filepath.Join(t.TempDir(), "flagops.yaml")
		if err := atomicfile.Write(mpath, m, 0o644); err != nil {
			t.Fatal(err)
		}
		root, home = t.TempDir(), t.TempDir()
		cmd := exec.Command(krew, "install", "--manifest="+mpath, "--archive="+archivePath)
		cmd.Env = krewEnv(root, home)
		b, err := cmd.CombinedOutput()
		return root, home, string(b), err
	}

	t.Run("installs the plugin and its completion program", func(t *testing.T) {
		root, home, out, err := install(t, digest)
		if err != nil {
			t.Fatalf("krew install: %v\n%s", err, out)
		}
		// run returns the standard output of a command (kubectl's completion writes debug
		// lines to the standard error).
		run := func(name string, args ...string) string {
			t.Helper()
			var stderr strings.Builder
			cmd := exec.Command(name, args...)
			cmd.Env, cmd.Stderr = krewEnv(root, home), &stderr
			b, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, b, stderr.String())
			}
			return string(b)
		}
		bin := filepath.Join(root, "bin")
		if got := run(filepath.Join(bin, "kubectl-flagops"), "version"); got != "kubectl-flagops "+version+"\n" {
			t.Errorf("kubectl-flagops version: %q", got)
		}

		// krew links only the manifest's bin (kubernetes-sigs/krew#812); the completion
		// program is installed beside it in the store, and the caveat links it.
		shim := filepath.Join(root, "store", "flagops", version, "kubectl_complete-flagops")
		if st, err := os.Stat(shim); err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("completion program in the store: %v, %v", st, err)
		}
		if lic, err := os.ReadFile(filepath.Join(root, "store", "flagops", version, licenseFile)); err != nil || !bytes.Contains(lic, []byte("Apache License")) {
			t.Errorf("the license in the store: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(bin, "kubectl_complete-flagops")); err == nil {
			t.Error("krew linked the completion program itself: the caveat is out of date")
		}
		if !strings.Contains(out, "krew puts only kubectl-flagops on PATH") {
			t.Errorf("krew did not print the caveat:\n%s", out)
		}
		run("sh", "-c", caveatCommand(t, version))
		if got := run(filepath.Join(bin, "kubectl_complete-flagops"), ""); !strings.Contains(got, "\nversion\t") && !strings.HasPrefix(got, "version\t") {
			t.Errorf("kubectl_complete-flagops '' does not offer the version command:\n%s", got)
		}
		// Through kubectl (make test builds one and names it in $KUBECTL), which finds
		// both executables on PATH.
		if kubectl := os.Getenv("KUBECTL"); kubectl != "" {
			if got := run(kubectl, "flagops", "version"); got != "kubectl-flagops "+version+"\n" {
				t.Errorf("kubectl flagops version: %q", got)
			}
			if got := run(kubectl, "__complete", "flagops", "vers"); !strings.HasPrefix(got, "version\t") {
				t.Errorf("kubectl __complete flagops vers:\n%s", got)
			}
		}
	})

	// A manifest whose digest is not the archive's installs nothing: the placeholder zeros
	// of a manifest written before the archives exist, and another file's digest.
	for _, tt := range []struct{ name, digest string }{
		{"refuses the placeholder digest", strings.Repeat("0", 64)},
		{"refuses another file's digest", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, // sha256 of nothing
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, _, out, err := install(t, tt.digest)
			if err == nil {
				t.Fatalf("krew installed an archive whose digest is not %s:\n%s", tt.digest, out)
			}
			if !strings.Contains(out, "checksum does not match, want: "+tt.digest+", got "+digest) {
				t.Errorf("krew failed, not on the digest:\n%s", out)
			}
			for _, path := range []string{filepath.Join(root, "bin", "kubectl-flagops"), filepath.Join(root, "store", "flagops")} {
				if _, err := os.Lstat(path); err == nil {
					t.Errorf("%s exists after a refused install", path)
				}
			}
		})
	}
}

// caveatCommand returns the command line of the manifest's caveats that links the
// completion program.
func caveatCommand(t *testing.T, version string) string {
	t.Helper()
	m, err := manifest(version, nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Spec struct{ Caveats string } }
	if err := yaml.Unmarshal(m, &doc); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(doc.Spec.Caveats) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "ln ") {
			return line
		}
	}
	t.Fatalf("no ln command in the caveats:\n%s", doc.Spec.Caveats)
	return ""
}

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
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestManifestIsCurrent checks that hack/krew/flagops.yaml is what krewgen writes for the
// chart's version, as make verify does.
func TestManifestIsCurrent(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join("..", "..", "charts", "flagops", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Version string }
	if err := yaml.Unmarshal(chart, &c); err != nil {
		t.Fatal(err)
	}
	want, err := manifest("v"+c.Version, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "krew", "flagops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("hack/krew/flagops.yaml is stale: run make krew-manifest")
	}
}

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	digests := map[string]string{}
	for _, p := range platforms {
		a, err := archive([]string{exe(p, "kubectl-flagops")}, map[string][]byte{exe(p, "kubectl-flagops"): []byte(p.OS + p.Arch)})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, archiveName("v1.2.3", p)), a, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(a)
		digests[archiveName("v1.2.3", p)] = hex.EncodeToString(sum[:])
	}
	got, err := digestsOf(dir, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest("v1.2.3", got)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		APIVersion, Kind string
		Metadata         struct{ Name string }
		Spec             struct {
			Version, Homepage, ShortDescription, Description, Caveats string
			Platforms                                                 []struct {
				Selector         struct{ MatchLabels map[string]string }
				URI, SHA256, Bin string
				Files            []struct{ From, To string }
			}
		}
	}
	if err := yaml.UnmarshalStrict(m, &doc); err != nil {
		t.Fatalf("%v\n%s", err, m)
	}
	if doc.Kind != "Plugin" || doc.Metadata.Name != "flagops" || doc.Spec.Version != "v1.2.3" || len(doc.Spec.Platforms) != len(platforms) {
		t.Fatalf("manifest:\n%s", m)
	}
	for i, p := range doc.Spec.Platforms {
		name := archiveName("v1.2.3", platforms[i])
		if p.SHA256 != digests[name] || !strings.HasSuffix(p.URI, "/releases/download/v1.2.3/"+name) || len(p.Files) != 3 || p.Files[2].From != licenseFile ||
			p.Selector.MatchLabels["os"] != platforms[i].OS || p.Bin != exe(platforms[i], "kubectl-flagops") {
			t.Errorf("platform %d: %+v", i, p)
		}
	}
	if strings.Contains(string(m), "placeholders") {
		t.Error("a manifest with every digest says it has placeholders")
	}
	if _, err := digestsOf(t.TempDir(), "v1.2.3"); err == nil {
		t.Error("missing archives are not reported")
	}
}

// TestManifestDigestsAreStrings checks that every sha256 is a YAML string, also when its
// hex digits happen to be decimal ones, as the placeholder zeros are: unquoted, YAML reads
// them as the number 0, which krew refuses as a malformed manifest before it looks at any
// archive.
func TestManifestDigestsAreStrings(t *testing.T) {
	digits := strings.Repeat("1234567890", 7)[:64]
	for _, tt := range []struct {
		name    string
		digests map[string]string
		want    string
	}{
		{"placeholders", nil, strings.Repeat("0", 64)},
		{"decimal digits only", map[string]string{}, digits},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.digests != nil {
				for _, p := range platforms {
					tt.digests[archiveName("v1.2.3", p)] = tt.want
				}
			}
			m, err := manifest("v1.2.3", tt.digests)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Spec struct{ Platforms []map[string]any }
			}
			if err := yaml.Unmarshal(m, &doc); err != nil {
				t.Fatal(err)
			}
			for i, p := range doc.Spec.Platforms {
				if got, ok := p["sha256"].(string); !ok || got != tt.want {
					t.Errorf("platform %d: sha256 is %T %v, want the string %s", i, p["sha256"], p["sha256"], tt.want)
				}
			}
		})
	}
}

// TestArchiveIsReproducible checks that the same files give the same bytes, which unpack to
// the files.
func TestArchiveIsReproducible(t *testing.T) {
	files := map[string][]byte{"kubectl-flagops": []byte("bin"), "kubectl_complete-flagops": []byte("shim")}
	names := []string{"kubectl-flagops", "kubectl_complete-flagops"}
	a, err := archive(names, files)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := archive(names, files)
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same files differ")
	}
	gz, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for _, n := range names {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		if h.Name != n || h.Mode != 0o755 || !bytes.Equal(got, files[n]) {
			t.Errorf("entry %s: mode %o, %q", h.Name, h.Mode, got)
		}
	}
}

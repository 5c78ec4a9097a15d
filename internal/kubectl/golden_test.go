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

package kubectl

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with the current output")

// runWith runs the plugin with args against lister at fixtureNow and returns its output
// and exit code.
func runWith(lister Lister, args ...string) (stdout, stderr string, code int) {
	return runWithWriter(lister, refusingWriter{}, args...)
}

// runWithWriter is runWith with the writer of the write commands.
func runWithWriter(lister Lister, writer Writer, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	g := &globals{
		configFlags: newConfigFlags(),
		IOStreams:   genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		version:     "v0.0.0-test",
		now:         func() time.Time { return fixtureNow },
		newLister:   func(genericclioptions.RESTClientGetter) (Lister, error) { return lister, nil },
		newWriter:   func(genericclioptions.RESTClientGetter) (Writer, error) { return writer, nil },
		newEvents: func(genericclioptions.RESTClientGetter) (EventLister, error) {
			if el, ok := lister.(EventLister); ok {
				return el, nil
			}
			return nil, errors.New("the test's lister has no events")
		},
	}
	code = execute(newRootCommand(g, "kubectl flagops"), args, &errOut)
	return out.String(), errOut.String(), code
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("output differs from %s (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"get.golden", []string{"get", "-n", "shop"}},
		{"get-keys.golden", []string{"get", "-n", "shop", "theme", "search.v3"}},
		{"get-all-namespaces.golden", []string{"get", "-A"}},
		{"get-name.golden", []string{"get", "-n", "shop", "-o", "name"}},
		{"get-one.yaml.golden", []string{"get", "-n", "billing", "invoices.pdf", "-o", "yaml"}},
		{"get-jsonpath.golden", []string{"get", "-n", "shop", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.type}{\"\\n\"}{end}"}},
		{"effective-alice.golden", []string{"effective", "-n", "shop", "--user", "alice", "--role", "user"}},
		{"effective-alice-tablet.golden", []string{"effective", "-n", "shop", "--user", "alice", "--role", "user", "--device", "tab-1", "--device-class", "tablet"}},
		{"effective-charger.golden", []string{"effective", "-n", "shop", "--user", "alice", "--device", "ch-7", "--device-class", "charger", "--org", "acme", "--attr", "plan=pro"}},
		{"effective-alice.json.golden", []string{"effective", "-n", "shop", "--user", "alice", "--role", "user", "-o", "json"}},
		{"effective-bob.yaml.golden", []string{"effective", "-n", "shop", "--user", "bob", "--attr", "plan=pro", "-o", "yaml"}},
		{"explain-theme.golden", []string{"explain", "theme", "-n", "shop", "--user", "alice", "--role", "user"}},
		{"explain-banner.yaml.golden", []string{"explain", "banner", "-n", "shop", "--user", "bob", "-o", "yaml"}},
		{"overrides.golden", []string{"overrides", "-n", "shop"}},
		{"overrides-flag.golden", []string{"overrides", "-n", "shop", "--flag", "beta.dashboard"}},
		{"overrides-user.golden", []string{"overrides", "-n", "shop", "--user", "alice"}},
		{"overrides-expiring.golden", []string{"overrides", "-A", "--expiring-within", "1d"}},
		{"overrides-device.json.golden", []string{"overrides", "-n", "shop", "--device", "tab-1", "-o", "json"}},
		{"version.golden", []string{"version"}},
	}
	lister := &fakeLister{objs: fixture(), namespaces: []string{"shop", "billing"}}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			stdout, stderr, code := runWith(lister, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			checkGolden(t, tt.golden, stdout)
		})
	}
}

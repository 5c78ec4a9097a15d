package localdir

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// writeFile writes name in dir, creating or replacing it atomically: the content goes to a
// temporary file (a dot file, which the loader ignores) renamed over name, so that the
// loader never reads it half written.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	_, err = tmp.WriteString(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// copySamples copies the manifests of config/samples (not kustomization.yaml) into dir.
func copySamples(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob("../../config/samples/flagops_*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read sample: %v", err)
		}
		writeFile(t, dir, filepath.Base(f), string(b))
	}
	return files
}

func newLoader(t *testing.T, dir string, opts Options) (*Loader, *evaluator.Store) {
	t.Helper()
	store := evaluator.NewStore()
	l, err := New(dir, store, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, store
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// syncBuffer is a bytes.Buffer safe for a logger writing while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const baseFlags = `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: billing.enabled
spec:
  type: Boolean
  enabled: false
  allowList:
    users: ["staff-ada"]
---
apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: billing.limits
spec:
  type: Object
  enabled: true
  schema:
    type: object
    required: [max]
    properties:
      max: {type: integer, minimum: 1}
  value: {max: 5}
`

func stringFlag(name, value string) string {
	return `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: ` + name + `
spec:
  type: String
  enabled: true
  value: ` + value + `
`
}

func userOverride(name, user, key, value string) string {
	return `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata:
  name: ` + name + `
spec:
  userId: ` + user + `
  flags:
  - key: ` + key + `
    value: ` + value + `
`
}

func testNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

package evaluator

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKubernetesDependencies keeps the evaluator and its serving packages pure libraries:
// they must not pull in Kubernetes, controller-runtime or the flagops API types, so that the
// sidecar, a CLI and the local mode can reuse them. (evaluator/adapt is the one package under
// evaluator/ that converts the API types, and is not listed.)
func TestNoKubernetesDependencies(t *testing.T) {
	goBin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		goBin = filepath.Join(root, "bin", "go")
	}
	if _, err := exec.LookPath(goBin); err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	forbidden := []string{"k8s.io/", "sigs.k8s.io/controller-runtime", "github.com/flagops/flagops/api"}
	for _, pkg := range []string{
		"github.com/flagops/flagops/evaluator",
		"github.com/flagops/flagops/evaluator/server",
	} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go list -deps: %v\n%s", err, stderr)
			}
			found := false
			for _, d := range strings.Fields(string(out)) {
				if d == pkg {
					found = true
				}
				for _, f := range forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("forbidden dependency %s", d)
					}
				}
			}
			if !found {
				t.Fatalf("go list did not list %s itself:\n%s", pkg, out)
			}
		})
	}
}

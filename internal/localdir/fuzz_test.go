package localdir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadDocument feeds arbitrary files through decoding and validation. It must never
// panic, and every error must name the file.
func FuzzLoadDocument(f *testing.F) {
	files, _ := filepath.Glob("../../config/samples/flagops_*.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(baseFlags))
	f.Add([]byte("apiVersion: flagops.dev/v1alpha1\nkind: FeatureFlag\nmetadata: {name: a}\nspec: {type: Boolean, rollout: {percentage: 101}}\n"))
	f.Add([]byte(`{"apiVersion":"flagops.dev/v1alpha1","kind":"UserFlagOverride","metadata":{"name":"o"},"spec":{"userId":"u","flags":[{"key":"k","value":{"a":[1,null]}}]}}`))
	f.Add([]byte("---\n- 1\n---\n: :\n"))
	const file = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, errs := decodeFile(file, data)
		var objs []*object
		for _, d := range docs {
			o, fe := d.validate(context.Background(), DefaultNamespace)
			errs = append(errs, fe...)
			if o != nil {
				if o.name == "" || o.namespace == "" {
					t.Fatalf("validated object without name or namespace: %+v", o)
				}
				objs = append(objs, o)
			}
		}
		errs = append(errs, crossCheck(objs, nil, testNow())...)
		for i := range errs {
			if msg := errs[i].Error(); !strings.HasPrefix(msg, file+": ") {
				t.Fatalf("error %q does not name the file", msg)
			}
			if errs[i].Err == nil || errors.Unwrap(&errs[i]) == nil {
				t.Fatalf("error without cause: %+v", errs[i])
			}
		}
	})
}

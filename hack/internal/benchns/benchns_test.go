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

package benchns

import (
	"reflect"
	"testing"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/localdir"
)

// TestWriteDirServesAsStore: the manifests WriteDir writes load (as flagops serve --dir
// loads them) into the same values Store holds, and WriteFlip changes only FlipKey.
func TestWriteDirServesAsStore(t *testing.T) {
	want, err := Store()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	got := evaluator.NewStore()
	l, err := localdir.New(dir, got, localdir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Load(); err != nil {
		t.Fatalf("loading the manifests: %v", err)
	}
	if n := len(want.Namespace(Namespace).FlagSpecs()); n != 100 {
		t.Fatalf("Store holds %d flags, want 100", n)
	}
	contexts := []evaluator.Context{
		{UserID: "u0"},
		{UserID: "u1", OrgID: "org-beta"},
		{UserID: "u2", Attributes: map[string]any{"plan": "pro"}},
		{TargetingKey: "device-9"},
	}
	for _, c := range contexts {
		w, g := want.Namespace(Namespace).EvaluateAll(c), got.Namespace(Namespace).EvaluateAll(c)
		if len(w) != len(g) {
			t.Fatalf("context %+v: %d results loaded from the manifests, want %d", c, len(g), len(w))
		}
		for i := range w {
			if !reflect.DeepEqual(w[i], g[i]) {
				t.Errorf("context %+v: loaded from the manifests %+v, want (Store) %+v", c, g[i], w[i])
			}
		}
	}

	if err := WriteFlip(dir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Load(); err != nil {
		t.Fatalf("loading after WriteFlip: %v", err)
	}
	for _, r := range got.Namespace(Namespace).EvaluateAll(contexts[0]) {
		before := want.Namespace(Namespace).Evaluate(contexts[0], r.Key)
		if changed := !reflect.DeepEqual(before, r); changed != (r.Key == FlipKey) {
			t.Errorf("after WriteFlip(true), %s changed: %v (only %s should)", r.Key, changed, FlipKey)
		}
	}
	if r := got.Namespace(Namespace).Evaluate(contexts[0], FlipKey); r.Value != true {
		t.Errorf("after WriteFlip(true), %s = %v, want true", FlipKey, r.Value)
	}
}

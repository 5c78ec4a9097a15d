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

package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		file    string
		old     string // the file's content before, if any
		perm    os.FileMode
		wantErr string
	}{
		{name: "new file", file: filepath.Join(dir, "a.txt"), perm: 0o644},
		{name: "replaces a file", file: filepath.Join(dir, "b.txt"), old: "old content", perm: 0o600},
		{name: "missing directory", file: filepath.Join(dir, "nope", "c.txt"), perm: 0o644,
			wantErr: "failed to write " + filepath.Join(dir, "nope", "c.txt")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.old != "" {
				if err := os.WriteFile(tt.file, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(tt.file, []byte("new"), tt.perm)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(tt.file)
			if err != nil || string(got) != "new" {
				t.Errorf("content %q, %v", got, err)
			}
			st, err := os.Stat(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.perm)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

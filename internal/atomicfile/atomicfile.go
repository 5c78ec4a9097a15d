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

// Package atomicfile writes a file so that a reader sees its old content or its new one,
// never a part: through a temporary file in the same directory, renamed over it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to name with the permissions perm, through a temporary dot file beside
// it, which is removed if anything fails.
func Write(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	// After the rename there is nothing left to remove.
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close() // the write error is the one to report
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := f.Chmod(perm); err != nil {
		_ = f.Close() // the chmod error is the one to report
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	return nil
}

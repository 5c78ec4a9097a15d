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

package machine

import (
	"os"
	"testing"
)

// TestCPU: this process's CPU time grows with work, and a process that does not exist
// is an error.
func TestCPU(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	after := before
	for x := 0; after == before; x++ { // busy until the kernel's 10 ms tick counts it
		for i := range 1 << 20 {
			x ^= i
		}
		if after, err = CPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after < before {
		t.Errorf("CPU went from %s to %s", before, after)
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1) succeeded, want an error")
	}
}

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

package browsertest

import (
	"syscall"
	"testing"
)

// TestCleanupKillsTheBrowser checks that no process of the browser runs after its test.
func TestCleanupKillsTheBrowser(t *testing.T) {
	var pid int
	t.Run("browser", func(t *testing.T) {
		pid = New(t).pid
		if !groupRuns(pid) {
			t.Fatalf("no process of the browser's group %d runs", pid)
		}
	})
	if groupRuns(pid) {
		t.Errorf("a process of the browser's group %d runs after its test", pid)
	}
	if !groupRuns(syscall.Getpgrp()) {
		t.Errorf("the test's own process group %d does not run", syscall.Getpgrp())
	}
}

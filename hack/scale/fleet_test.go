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
	"os"
	"testing"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}}
	for _, tc := range tests {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its argument")
	}
}

func TestGauge(t *testing.T) {
	text := `# HELP apiserver_longrunning_requests ...
apiserver_longrunning_requests{component="apiserver",group="flagops.dev",resource="featureflags",scope="cluster",subresource="",verb="WATCH",version="v1alpha1"} 3
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="exec",verb="CONNECT",version="v1"} 7
apiserver_longrunning_requests{component="apiserver",group="",resource="secrets",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
`
	if got := gauge(text, "apiserver_longrunning_requests", `verb="WATCH"`); got != 5 {
		t.Errorf("WATCH = %d, want 5", got)
	}
}

func TestProcStat(t *testing.T) {
	cpu, err := procCPUSeconds(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPUSeconds = %v, %v", cpu, err)
	}
	ppid, err := parentPID(os.Getpid())
	if err != nil || ppid != os.Getppid() {
		t.Fatalf("parentPID = %d, %v; want %d", ppid, err, os.Getppid())
	}
	if _, err := apiserverPID(); err == nil {
		t.Error("apiserverPID found a kube-apiserver this test did not start")
	}
}

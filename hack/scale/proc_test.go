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
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCounters(t *testing.T) {
	text := `# HELP rest_client_requests_total Number of HTTP requests
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 12
rest_client_requests_total{code="404",host="127.0.0.1:1",method="GET"} 3
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 7
apiserver_request_total{code="201",resource="events",subresource="",verb="POST"} 2
apiserver_request_total{code="200",resource="featureflags",subresource="status",verb="PATCH"} 4
rest_client_requests_total_other{method="GET"} 100
`
	tests := []struct {
		name   string
		metric string
		labels []string
		want   map[string]int64
	}{
		{"by method", "rest_client_requests_total", []string{"method"}, map[string]int64{"GET": 15, "POST": 7}},
		{"no label", "rest_client_requests_total", nil, map[string]int64{"": 22}},
		{"several labels", "apiserver_request_total", []string{"verb", "resource", "subresource"},
			map[string]int64{"POST events": 2, "PATCH featureflags status": 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := counters(text, tt.metric, tt.labels...); !maps.Equal(got, tt.want) {
				t.Errorf("counters = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\tflagops\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rss, hwm, err := readStatus(path)
	if err != nil || rss != 102400 || hwm != 204800 {
		t.Errorf("readStatus = %d, %d, %v; want 102400, 204800, nil", rss, hwm, err)
	}
}

func TestReadCPU(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
		{name: "plain", stat: "4242 (flagops) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 100\n", want: 12900 * time.Millisecond},
		{name: "spaces and parentheses in the name", stat: "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 250 50 0 0\n", want: 3 * time.Second},
		{name: "too short", stat: "7 (x) R 1 7\n", wantErr: true},
		{name: "not a number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 50 0 0\n", wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("stat%d", i))
			if err := os.WriteFile(path, []byte(tt.stat), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readCPU(path)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("readCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

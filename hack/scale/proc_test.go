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
	"maps"
	"os"
	"path/filepath"
	"testing"
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

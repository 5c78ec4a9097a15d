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

package audit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkHTTPDelivery measures how fast an HTTP sink delivers a full spool to a receiver
// on loopback that reads each request and answers 200: b.N records of testRecord (about
// 370 bytes each) are written straight into the spool's segment files, and the timer runs
// from opening the sink until its spool is empty. Every request is followed by the cursor
// update (write, fsync, rename, directory fsync) that makes delivery at least once, so the
// figure depends on the disk's fsync latency as much as on the network.
//
//	go test ./internal/audit/ -run '^$' -bench BenchmarkHTTPDelivery -benchtime 20000x
func BenchmarkHTTPDelivery(b *testing.B) {
	for _, mode := range []struct {
		name  string
		batch bool
	}{{"structured", false}, {"batch", true}} {
		b.Run(mode.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			opts := Options{SpoolDir: b.TempDir(), EventBatch: mode.batch, CloseTimeout: time.Minute}
			u, err := url.Parse(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			dir := filepath.Join(opts.SpoolDir, spoolDirName(redactURL(u)))
			if err := os.Mkdir(dir, 0o700); err != nil {
				b.Fatal(err)
			}
			// Segments of about DefaultSegmentBytes, as the sink itself would write them.
			var seg []byte
			id := uint64(1)
			flush := func() {
				if err := os.WriteFile(filepath.Join(dir, segmentName(id)), seg, 0o600); err != nil {
					b.Fatal(err)
				}
				seg, id = seg[:0], id+1
			}
			for i := range b.N {
				p, err := testRecord(i).encode()
				if err != nil {
					b.Fatal(err)
				}
				seg = appendFrame(seg, p)
				if int64(len(seg)) >= DefaultSegmentBytes {
					flush()
				}
			}
			if len(seg) > 0 {
				flush()
			}
			b.ResetTimer()
			start := time.Now()
			s, err := NewHTTP(srv.URL, opts)
			if err != nil {
				b.Fatal(err)
			}
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for s.Pending() > 0 {
				<-tick.C
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

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
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
)

// logBuffer collects log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.lines = append(b.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func testSpoolConfig(dir string) spoolConfig {
	return spoolConfig{
		dir:                dir,
		maxBytes:           1 << 30,
		maxRecords:         1 << 20,
		segmentBytes:       1 << 20,
		deadLetterMaxBytes: 1 << 20,
		maxFrame:           maxFrameBytes,
		clock:              newFakeClock(),
		log:                logr.Discard(),
		onDepth:            func(int) {},
	}
}

func openTestSpool(t *testing.T, cfg spoolConfig) *spool {
	t.Helper()
	s, err := openSpool(cfg)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

func payload(t *testing.T, i int) []byte {
	t.Helper()
	p, err := testRecord(i).encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appendN(t *testing.T, s *spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.append(payload(t, i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// drainSpool peeks and acknowledges until the spool is empty, returning the payloads (and
// a marker for each corrupt frame).
func drainSpool(t *testing.T, s *spool, batchSize int) []string {
	t.Helper()
	var out []string
	for {
		b, err := s.peek(batchSize, 1<<20)
		if err != nil {
			t.Fatalf("peek: %v", err)
		}
		if b.empty() {
			return out
		}
		if b.corrupt != nil {
			out = append(out, "corrupt")
		}
		for _, p := range b.payloads {
			out = append(out, string(p))
		}
		if err := s.ack(b); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func payloads(t *testing.T, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, string(payload(t, i)))
	}
	return out
}

func assertPayloads(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d is %.60s…, want %.60s…", i, got[i], want[i])
		}
	}
}

func TestSpoolFIFOAcrossSegmentsAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	cfg.segmentBytes = 2 << 10
	s := openTestSpool(t, cfg)
	appendN(t, s, 0, 30)
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	// Deliver part of the first segment, so that the cursor decides where a reopen starts.
	b, err := s.peek(2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ack(b); err != nil {
		t.Fatal(err)
	}
	done := len(b.payloads)
	if s.headOff >= s.segs[0].size {
		t.Fatal("the first batch consumed a whole segment")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTestSpool(t, cfg)
	if n := s2.pending(); n != 30-done {
		t.Fatalf("%d pending after reopen, want %d", n, 30-done)
	}
	appendN(t, s2, 30, 40)
	got := drainSpool(t, s2, 7)
	assertPayloads(t, got, payloads(t, done, 40))
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Errorf("%d segments after draining, want only the active one", n)
	}
	if s2.pending() != 0 || s2.bytes != 0 {
		t.Errorf("pending %d records, %d bytes after draining", s2.pending(), s2.bytes)
	}
}

// TestSpoolReopenAfterFullDrain: when every segment was delivered and removed, the cursor
// names the next segment number, so records spooled after a restart are not skipped, even
// by a segment that a later restart numbers from the cursor.
func TestSpoolReopenAfterFullDrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	for round := range 3 {
		s := openTestSpool(t, cfg)
		if n := s.pending(); n != 0 {
			t.Fatalf("round %d: %d pending at open", round, n)
		}
		appendN(t, s, round*5, round*5+5)
		assertPayloads(t, drainSpool(t, s, 100), payloads(t, round*5, round*5+5))
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
	// An idle restart: the delivered last segment is removed when the spool opens.
	s := openTestSpool(t, cfg)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if segs := segmentFiles(t, dir); len(segs) != 0 {
		t.Fatalf("delivered segments kept: %v", segs)
	}
	// Records spooled, then a restart before their delivery: they come back.
	s = openTestSpool(t, cfg)
	appendN(t, s, 100, 103)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, cfg)
	assertPayloads(t, drainSpool(t, s, 100), payloads(t, 100, 103))
}

func TestSpoolCursorRecovery(t *testing.T) {
	tests := []struct {
		name        string
		cursor      func(frameEnd int64) string // the cursor file's content; "" removes it
		wantPending int
		wantLog     string
	}{
		{name: "valid", cursor: func(e int64) string { return fmt.Sprintf(`{"version":1,"segment":1,"offset":%d}`, e) }, wantPending: 2},
		{name: "missing", cursor: func(int64) string { return "" }, wantPending: 3},
		{name: "inside a frame", cursor: func(e int64) string { return fmt.Sprintf(`{"version":1,"segment":1,"offset":%d}`, e+5) }, wantPending: 2, wantLog: "not at the end of a record"},
		{name: "garbage", cursor: func(int64) string { return "{not json" }, wantPending: 3, wantLog: "unreadable audit spool cursor"},
		{name: "unknown version", cursor: func(int64) string { return `{"version":2,"segment":1,"offset":0}` }, wantPending: 3, wantLog: "unsupported version"},
		{name: "ahead of every segment", cursor: func(int64) string { return `{"version":1,"segment":9,"offset":0}` }, wantPending: 3, wantLog: "ahead of every segment"},
		{name: "beyond the end", cursor: func(int64) string { return `{"version":1,"segment":1,"offset":999999}` }, wantPending: 0, wantLog: "not at the end of a record"},
		{name: "next segment", cursor: func(int64) string { return `{"version":1,"segment":2,"offset":0}` }, wantPending: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			cfg := testSpoolConfig(dir)
			s := openTestSpool(t, cfg)
			appendN(t, s, 0, 3)
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			frameEnd := int64(len(appendFrame(nil, payload(t, 0))))
			cursorPath := filepath.Join(dir, cursorFileName)
			if c := tc.cursor(frameEnd); c == "" {
				_ = os.Remove(cursorPath)
			} else if err := os.WriteFile(cursorPath, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			cfg.log = logs.logger()
			s = openTestSpool(t, cfg)
			if n := s.pending(); n != tc.wantPending {
				t.Errorf("%d pending, want %d", n, tc.wantPending)
			}
			if got := drainSpool(t, s, 100); len(got) != tc.wantPending {
				t.Errorf("drained %d records, want %d", len(got), tc.wantPending)
			} else if tc.wantPending > 0 {
				assertPayloads(t, got, payloads(t, 3-tc.wantPending, 3))
			}
			if tc.wantLog != "" && !logs.contains(tc.wantLog) {
				t.Errorf("no log line with %q in %v", tc.wantLog, logs.lines)
			}
		})
	}
}

func TestSpoolRemovesLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	cfg.segmentBytes = 1 // one record per segment
	s := openTestSpool(t, cfg)
	appendN(t, s, 0, 3)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// A crash after the cursor moved to segment 3 but before segments 1 and 2 were removed,
	// and a cursor.tmp left by a crash while writing the cursor.
	if err := os.WriteFile(filepath.Join(dir, cursorFileName), encodeCursor(cursor{Segment: 3}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cursorTempFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("operator notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, cfg)
	if n := s.pending(); n != 1 {
		t.Fatalf("%d pending, want 1", n)
	}
	segs := segmentFiles(t, dir)
	if len(segs) != 1 || filepath.Base(segs[0]) != segmentName(3) {
		t.Errorf("segments %v, want only %s", segs, segmentName(3))
	}
	if _, err := os.Stat(filepath.Join(dir, cursorTempFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cursor.tmp kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("an unrelated file was touched: %v", err)
	}
	assertPayloads(t, drainSpool(t, s, 10), payloads(t, 2, 3))
}

// TestSpoolStaleCursorNamesARemovedSegment: the cursor is not rewritten when a delivered
// segment with a successor is removed; recovery starts at the successor.
func TestSpoolStaleCursorNamesARemovedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	cfg.segmentBytes = 1 // one record per segment
	s := openTestSpool(t, cfg)
	appendN(t, s, 0, 4)
	for range 2 {
		b, err := s.peek(10, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ack(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, cursorFileName))
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCursor(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Segment != 2 || c.Offset == 0 {
		t.Fatalf("cursor %+v, want the end of segment 2", c)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(2))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("delivered segment 2 kept: %v", err)
	}
	s = openTestSpool(t, cfg)
	assertPayloads(t, drainSpool(t, s, 10), payloads(t, 2, 4))
}

func TestSpoolAppendRecoversFromWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := openTestSpool(t, testSpoolConfig(dir))
	appendN(t, s, 0, 2)
	// Break the append handle: the next append fails and must leave no trace.
	s.mu.Lock()
	_ = s.active.Close()
	s.mu.Unlock()
	if err := s.append(payload(t, 2)); err == nil {
		t.Fatal("append succeeded on a closed segment")
	}
	if n := s.pending(); n != 2 {
		t.Fatalf("%d pending after a failed append, want 2", n)
	}
	appendN(t, s, 3, 5)
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Errorf("%d segments, want a new one after the failure", n)
	}
	assertPayloads(t, drainSpool(t, s, 100), append(payloads(t, 0, 2), payloads(t, 3, 5)...))
}

func TestSpoolLimits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	cfg.maxRecords = 2
	depth := -1
	cfg.onDepth = func(n int) { depth = n }
	s := openTestSpool(t, cfg)
	appendN(t, s, 0, 2)
	if depth != 2 {
		t.Errorf("depth %d, want 2", depth)
	}
	if err := s.append(payload(t, 2)); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("append to a full spool = %v", err)
	}
	b, err := s.peek(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ack(b); err != nil {
		t.Fatal(err)
	}
	if depth != 1 {
		t.Errorf("depth %d after an ack, want 1", depth)
	}
	appendN(t, s, 2, 3)
	assertPayloads(t, drainSpool(t, s, 100), payloads(t, 1, 3))

	small := testSpoolConfig(filepath.Join(t.TempDir(), "small"))
	small.maxFrame = 64
	s2 := openTestSpool(t, small)
	if err := s2.append(payload(t, 0)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("append of a large record = %v", err)
	}
}

func TestSpoolPeekBounds(t *testing.T) {
	s := openTestSpool(t, testSpoolConfig(filepath.Join(t.TempDir(), "spool")))
	appendN(t, s, 0, 5)
	size := len(payload(t, 0)) + 1
	b, err := s.peek(100, 2*size)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.payloads) != 2 {
		t.Errorf("batch of %d records, want 2 by size", len(b.payloads))
	}
	b, err = s.peek(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.payloads) != 1 {
		t.Errorf("batch of %d records, want at least one", len(b.payloads))
	}
	stale := b
	if err := s.ack(b); err != nil {
		t.Fatal(err)
	}
	if err := s.ack(stale); err == nil {
		t.Error("a batch was acknowledged twice")
	}
}

func TestSpoolRejectsASecondOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	openTestSpool(t, testSpoolConfig(dir))
	if _, err := openSpool(testSpoolConfig(dir)); !errors.Is(err, errSpoolLocked) {
		t.Fatalf("second openSpool = %v, want errSpoolLocked", err)
	}
	if _, err := openSpool(testSpoolConfig(filepath.Join(t.TempDir(), "missing", "spool"))); err == nil {
		t.Fatal("openSpool succeeded without a parent directory")
	}
}

func TestSpoolAppendAfterClose(t *testing.T) {
	s := openTestSpool(t, testSpoolConfig(filepath.Join(t.TempDir(), "spool")))
	s.closeWrites()
	if err := s.append(payload(t, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after closeWrites = %v", err)
	}
}

func TestDeadLetterRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := testSpoolConfig(dir)
	cfg.deadLetterMaxBytes = 400
	s := openTestSpool(t, cfg)
	entry := deadLetterEntry{Reason: strings.Repeat("r", 150), Status: 400}
	for range 5 {
		if err := s.deadLetter([]deadLetterEntry{entry}); err != nil {
			t.Fatal(err)
		}
	}
	current := readDeadLetters(t, filepath.Join(dir, deadLetterFileName))
	rotated := readDeadLetters(t, filepath.Join(dir, deadLetterFileName+".1"))
	if len(current) == 0 || len(rotated) == 0 || len(current)+len(rotated) > 5 {
		t.Fatalf("%d current and %d rotated entries", len(current), len(rotated))
	}
	fi, err := os.Stat(filepath.Join(dir, deadLetterFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > cfg.deadLetterMaxBytes {
		t.Errorf("dead-letter file of %d bytes, limit %d", fi.Size(), cfg.deadLetterMaxBytes)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dead-letter file mode %v", fi.Mode().Perm())
	}
	if current[0].Time != testEpoch.Format(TimeLayout) {
		t.Errorf("dead letter time %q", current[0].Time)
	}

	// A sink that reopens the spool continues the existing file.
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, cfg)
	if err := s.deadLetter([]deadLetterEntry{{Reason: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := readDeadLetters(t, filepath.Join(dir, deadLetterFileName)); len(got) != len(current)+1 {
		t.Errorf("%d entries after reopening, want %d", len(got), len(current)+1)
	}
}

// TestHTTPCorruptFrameIsDeadLettered: a frame damaged on disk is moved to the dead-letter
// file and the records around it are delivered.
func TestHTTPCorruptFrameIsDeadLettered(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	opts := httpOptions(t, newFakeClock())
	opts.Registerer = prometheus.NewRegistry()
	name := strings.TrimSuffix(rc.srv.URL, "/")
	dir := filepath.Join(opts.SpoolDir, spoolDirName(name))
	s := openTestSpool(t, testSpoolConfig(dir))
	appendN(t, s, 0, 3)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.Index(data, []byte("\n")) + 1
	i := second + frameHeaderLen + 10
	data[i] ^= 0x01 // flip a bit in the second record
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	sink := newHTTPSink(t, rc.srv.URL, opts)
	if sink.SpoolDir() != dir {
		t.Fatalf("sink spool %s, want %s", sink.SpoolDir(), dir)
	}
	eventually(t, "the spool to drain", func() bool { return sink.Pending() == 0 })
	want := testRecords(3)
	assertSameIDs(t, rc.records(), []Record{want[0], want[2]})
	dead := readDeadLetters(t, filepath.Join(dir, deadLetterFileName))
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "checksum mismatch") || dead[0].Segment != segmentName(1) ||
		dead[0].Offset != int64(second) || dead[0].Raw == "" {
		t.Fatalf("dead letters %+v", dead)
	}
	if got := counter(t, sink.m, sink.Name(), ResultCorrupt); got != 1 {
		t.Errorf("corrupt = %v, want 1", got)
	}
}

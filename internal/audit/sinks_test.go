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
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestStreamSinkWritesLines(t *testing.T) {
	var buf bytes.Buffer
	s, err := NewStream("stdout", &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := testRecords(3)
	for _, r := range want {
		if err := s.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if s.Name() != "stdout" {
		t.Errorf("Name() = %q", s.Name())
	}
	assertSameIDs(t, decodeLines(t, buf.Bytes()), want)
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), want[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

// chunkWriter fails if a line arrives in more than one Write call, or fails on demand.
type chunkWriter struct {
	mu    sync.Mutex
	lines [][]byte
	fail  error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	w.lines = append(w.lines, bytes.Clone(p))
	return len(p), nil
}

func TestStreamSinkConcurrentWritesAreWholeLines(t *testing.T) {
	w := &chunkWriter{}
	s, err := NewStream("stdout", w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	records := testRecords(64)
	var wg sync.WaitGroup
	for _, r := range records {
		wg.Go(func() {
			if err := s.Write(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(w.lines) != len(records) {
		t.Fatalf("%d writes, want %d", len(w.lines), len(records))
	}
	var got []string
	for _, line := range w.lines {
		rs := decodeLines(t, line)
		if len(rs) != 1 {
			t.Fatalf("write %q holds %d records", line, len(rs))
		}
		got = append(got, rs[0].ID)
	}
	slices.Sort(got)
	want := ids(records)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatal("the records written are not the records given")
	}
}

func TestStreamSinkErrors(t *testing.T) {
	w := &chunkWriter{fail: errors.New("broken pipe")}
	s, err := NewStream("stdout", w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), testRecord(0))
	if err == nil || !strings.Contains(err.Error(), "broken pipe") || !strings.Contains(err.Error(), `audit sink "stdout"`) {
		t.Errorf("Write = %v, want the writer's error with the sink's name", err)
	}
	bad := testRecord(0)
	bad.ID = ""
	if err := s.Write(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Write(invalid) = %v, want ErrInvalidRecord", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, testRecord(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(canceled) = %v, want context.Canceled", err)
	}
}

func TestFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	records := testRecords(5)

	s, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "file:"+path {
		t.Errorf("Name() = %q", s.Name())
	}
	for _, r := range records[:3] {
		if err := s.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := s.Write(context.Background(), records[3]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}

	// A new sink appends to the same file.
	s2, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, s2)
	for _, r := range records[3:] {
		if err := s2.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSameIDs(t, decodeLines(t, data), records)
	want, err := records[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := bytes.Cut(data, []byte("\n")); !bytes.Equal(first, want) {
		t.Errorf("first line %s, want %s", first, want)
	}
}

func TestFileSinkConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, s)
	records := testRecords(40)
	var wg sync.WaitGroup
	for _, r := range records {
		wg.Go(func() {
			if err := s.Write(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(decodeLines(t, data))
	slices.Sort(got)
	want := ids(records)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("file holds %d records, want each of %d once", len(got), len(want))
	}
}

func TestFileSinkReopensAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	s, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, s)
	records := testRecords(3)
	if err := s.Write(context.Background(), records[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records[2]); err != nil {
		t.Fatal(err)
	}
	rotated, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	assertSameIDs(t, decodeLines(t, rotated), records[:1])
	current, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSameIDs(t, decodeLines(t, current), records[2:])
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("recreated file mode %v, want 0600", perm)
	}
}

func TestFileSinkErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
		is               error
	}{
		{name: "missing directory", path: filepath.Join(dir, "nope", "audit.log"), want: "does not exist", is: fs.ErrNotExist},
		{name: "parent is a file", path: filepath.Join(notDir, "audit.log"), want: "is not a directory"},
		{name: "path is a directory", path: dir, want: "open audit file"},
		{name: "empty path", path: "", want: "empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewFile(tc.path, Options{})
			if err == nil {
				closeOrFail(t, s)
				t.Fatal("NewFile succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestFileSinkWriteFailures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	s, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := testRecord(0)
	bad.Action = "flag.renamed"
	if err := s.Write(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Write(invalid) = %v, want ErrInvalidRecord", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, testRecord(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(canceled) = %v, want context.Canceled", err)
	}
	// A directory where the file was: the sink cannot reopen it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testRecord(1)); err == nil {
		t.Error("Write succeeded with a directory at the path")
	}
	// A closed descriptor makes the write itself fail.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testRecord(2)); err != nil {
		t.Fatalf("Write after the path was freed: %v", err)
	}
	s.mu.Lock()
	_ = s.f.Close()
	s.mu.Unlock()
	if err := s.Write(context.Background(), testRecord(3)); err == nil {
		t.Error("Write succeeded on a closed file")
	}
	// The sink's own Close finds the descriptor closed under it, and says so.
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Close = %v, want os.ErrClosed", err)
	}
}

func TestMemorySink(t *testing.T) {
	m := NewMemory()
	if m.Name() != "memory" {
		t.Errorf("Name() = %q", m.Name())
	}
	records := testRecords(3)
	for _, r := range records {
		if err := m.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	got := m.Records()
	assertSameIDs(t, got, records)
	if m.Len() != 3 {
		t.Errorf("Len() = %d", m.Len())
	}
	// Records returns copies.
	got[0].Actor.Groups[0] = "mutated"
	if m.Records()[0].Actor.Groups[0] == "mutated" {
		t.Error("Records shares memory with the sink")
	}
	bad := testRecord(9)
	bad.Object.UID = ""
	if err := m.Write(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Write(invalid) = %v", err)
	}
	boom := errors.New("boom")
	m.SetWriteError(boom)
	if err := m.Write(context.Background(), testRecord(4)); !errors.Is(err, boom) {
		t.Errorf("Write with an injected error = %v", err)
	}
	m.SetWriteError(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Write(ctx, testRecord(4)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(canceled) = %v", err)
	}
	m.Reset()
	if m.Len() != 0 {
		t.Error("Reset kept records")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(context.Background(), testRecord(5)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
}

func TestMemorySinkConcurrent(t *testing.T) {
	m := NewMemory()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := m.Write(context.Background(), testRecord(i)); err != nil {
				t.Error(err)
			}
			_ = m.Records()
		})
	}
	wg.Wait()
	if m.Len() != 50 {
		t.Fatalf("Len() = %d, want 50", m.Len())
	}
}

func TestMulti(t *testing.T) {
	a, b, c := NewMemory(), NewMemory(), NewMemory()
	boom := errors.New("disk on fire")
	b.SetWriteError(boom)
	m := Multi(a, b, c)
	if m.Name() != "multi(memory, memory, memory)" {
		t.Errorf("Name() = %q", m.Name())
	}
	err := m.Write(context.Background(), testRecord(0))
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the failing sink's error", err)
	}
	if a.Len() != 1 || c.Len() != 1 {
		t.Errorf("a failing sink kept the record from the others: %d, %d", a.Len(), c.Len())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	err = m.Write(context.Background(), testRecord(1))
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := Multi().Write(context.Background(), testRecord(0)); err == nil {
		t.Error("Multi() accepted a record it writes nowhere")
	}
}

// closeErrSink fails Close.
type closeErrSink struct{ *Memory }

func (closeErrSink) Close() error { return errors.New("close failed") }

func TestMultiCloseJoinsErrors(t *testing.T) {
	err := Multi(closeErrSink{NewMemory()}, NewMemory(), closeErrSink{NewMemory()}).Close()
	if err == nil || strings.Count(err.Error(), "close failed") != 2 {
		t.Fatalf("Close = %v, want both errors", err)
	}
}

func TestDedup(t *testing.T) {
	inner := NewMemory()
	d := Dedup(inner, 3)
	if d.Name() != "memory" {
		t.Errorf("Name() = %q", d.Name())
	}
	r := testRecords(5)
	write := func(i int) {
		t.Helper()
		if err := d.Write(context.Background(), r[i]); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	write(0) // dropped
	write(1)
	write(2)
	write(1) // dropped
	write(3) // evicts 0
	write(0) // written again: outside the window
	assertSameIDs(t, inner.Records(), []Record{r[0], r[1], r[2], r[3], r[0]})

	// A failed write is not remembered, so the retry goes through.
	inner.SetWriteError(errors.New("down"))
	if err := d.Write(context.Background(), r[4]); err == nil {
		t.Fatal("Write succeeded with a failing sink")
	}
	inner.SetWriteError(nil)
	write(4)
	if got := inner.Len(); got != 6 {
		t.Fatalf("%d records, want 6", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if Dedup(inner, 0) != Sink(inner) {
		t.Error("Dedup with n=0 wrapped the sink")
	}
}

// gateSink blocks writes until released, to hold a write in flight.
type gateSink struct {
	*Memory
	entered chan string
	release chan struct{}
}

func (g *gateSink) Write(ctx context.Context, r Record) error {
	g.entered <- r.ID
	<-g.release
	return g.Memory.Write(ctx, r)
}

func TestDedupConcurrentSameID(t *testing.T) {
	g := &gateSink{Memory: NewMemory(), entered: make(chan string, 8), release: make(chan struct{})}
	d := Dedup(g, 8)
	r := testRecord(0)
	errs := make(chan error, 2)
	go func() { errs <- d.Write(context.Background(), r) }()
	receive(t, "the first write to reach the sink", g.entered)
	// The second write of the same ID waits for the first instead of reaching the sink.
	go func() { errs <- d.Write(context.Background(), r) }()
	// A write with a canceled context gives up waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Write(ctx, r); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled waiter = %v, want context.Canceled", err)
	}
	close(g.release)
	for range 2 {
		if err := receive(t, "a write to return", errs); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Len(); n != 1 {
		t.Fatalf("sink has %d records, want 1", n)
	}
	select {
	case id := <-g.entered:
		t.Fatalf("a duplicate write of %s reached the sink", id)
	default:
	}
}

func TestErrorsNameTheSink(t *testing.T) {
	m := NewMemory()
	_ = m.Close()
	err := m.Write(context.Background(), testRecord(0))
	if want := fmt.Sprintf("audit sink %q", "memory"); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q does not start with %q", err, want)
	}
}

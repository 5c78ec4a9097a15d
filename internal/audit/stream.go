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
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// StreamSink writes one JSON line per record to an io.Writer, one Write call per line,
// serialised. The stdout sink is a StreamSink over os.Stdout.
type StreamSink struct {
	name string
	m    *metrics

	mu     sync.Mutex
	w      io.Writer
	closed bool
}

// NewStream returns a sink named name that writes to w. Close does not close w.
func NewStream(name string, w io.Writer, opts Options) (*StreamSink, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	m.init(name, ResultWritten, ResultFailed)
	return &StreamSink{name: name, w: w, m: m}, nil
}

// Name returns the name given to NewStream.
func (s *StreamSink) Name() string { return s.name }

// Write writes r as one line.
func (s *StreamSink) Write(ctx context.Context, r Record) error {
	return s.m.outcome(s.name, s.write(ctx, r))
}

func (s *StreamSink) write(ctx context.Context, r Record) error {
	line, err := encodeLine(ctx, r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("write record %q: %w", r.ID, err)
	}
	return nil
}

// encodeLine encodes r as one JSON line, unless ctx is done.
func encodeLine(ctx context.Context, r Record) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	line, err := r.encode()
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// Close makes later writes fail. It does not close the writer.
func (s *StreamSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// FileSink appends one JSON line per record to a file and fsyncs it after each record.
// The file is created with mode 0600. If the file is renamed or removed (log rotation),
// the next Write creates a new one at the path.
type FileSink struct {
	name string
	path string
	m    *metrics

	mu     sync.Mutex
	f      *os.File
	closed bool
}

// NewFile opens (creating if needed) the file at path for appending. The parent directory
// must exist.
func NewFile(path string, opts Options) (*FileSink, error) {
	if path == "" {
		return nil, errors.New("file sink: empty path")
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("parent directory %q does not exist: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("parent directory %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("parent %q of %q is not a directory", dir, path)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &FileSink{name: "file:" + path, path: path, m: m}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	s.f = f
	m.init(s.name, ResultWritten, ResultFailed)
	return s, nil
}

// openAppend opens path for appending, creating it with mode 0600 and making its
// directory entry durable when it is new.
func openAppend(path string) (*os.File, error) {
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit file: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("stat audit file %q: %w", path, err)
		}
		return nil, fmt.Errorf("audit file %q is not a regular file", path)
	}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return f, nil
}

// Name returns "file:" and the path.
func (s *FileSink) Name() string { return s.name }

// Write appends r as one line and fsyncs the file.
func (s *FileSink) Write(ctx context.Context, r Record) error {
	return s.m.outcome(s.name, s.write(ctx, r))
}

func (s *FileSink) write(ctx context.Context, r Record) error {
	line, err := encodeLine(ctx, r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.reopenIfMoved(); err != nil {
		return err
	}
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat audit file: %w", err)
	}
	if _, err := s.f.Write(line); err != nil {
		// Cut a partial line off, so that the next record starts on a line of its own.
		_ = s.f.Truncate(fi.Size())
		return fmt.Errorf("write record %q: %w", r.ID, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync record %q: %w", r.ID, err)
	}
	return nil
}

// reopenIfMoved reopens the path when the open file is no longer the file at the path.
func (s *FileSink) reopenIfMoved() error {
	pathInfo, err := os.Stat(s.path)
	if err == nil {
		openInfo, err := s.f.Stat()
		if err != nil {
			return fmt.Errorf("stat audit file: %w", err)
		}
		if os.SameFile(pathInfo, openInfo) {
			return nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat audit file: %w", err)
	}
	f, err := openAppend(s.path)
	if err != nil {
		return err
	}
	// Every record in the old file was fsynced, so an error closing it loses nothing.
	_ = s.f.Close()
	s.f = f
	return nil
}

// Close closes the file. Later writes fail.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.f.Close(); err != nil {
		return sinkError(s.name, fmt.Errorf("close: %w", err))
	}
	return nil
}

// syncDir fsyncs a directory, making its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for fsync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %q: %w", dir, err)
	}
	return nil
}

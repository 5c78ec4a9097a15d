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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		spec, want string
	}{
		{"ftp://x", `--audit-sink "ftp://x": unsupported scheme "ftp"; use stdout, file:PATH or http(s)://URL`},
		{"", `--audit-sink "": empty value; use stdout, file:PATH or http(s)://URL`},
		{"   ", `--audit-sink "   ": empty value`},
		{"stderr", `--audit-sink "stderr": unknown sink; use stdout, file:PATH or http(s)://URL`},
		{"/var/log/audit.log", `--audit-sink "/var/log/audit.log": unknown sink; for a file use "file:/var/log/audit.log"`},
		{"file:", `--audit-sink "file:": empty path; use file:PATH`},
		{"file://", `--audit-sink "file://": empty path`},
		{"file://remote/x.log", `--audit-sink "file://remote/x.log": file URL names host "remote"`},
		{"file://%zz/x", `--audit-sink "file://%zz/x": invalid file URL`},
		{"http://", `--audit-sink "http://": URL has no host`},
		{"https://[::1", `--audit-sink "https://[::1": invalid URL`},
		{"kafka:topic", `--audit-sink "kafka:topic": unsupported scheme "kafka"`},
		{":8080", `--audit-sink ":8080": unknown sink`},
		{"file:" + filepath.Join(dir, "missing", "a.log"), `parent directory`},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := Parse(tc.spec, Options{SpoolDir: dir})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Parse(%q) succeeded", tc.spec)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tc.spec, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), FlagName+" ") {
				t.Errorf("error %q does not name the flag", err)
			}
		})
	}
}

func TestParseSinks(t *testing.T) {
	dir := t.TempDir()
	rc := newReceiver(t, always(http.StatusOK))
	var stdout bytes.Buffer
	opts := Options{Stdout: &stdout, SpoolDir: dir, Clock: newFakeClock()}
	tests := []struct {
		spec, name string
		check      func(t *testing.T, s Sink)
	}{
		{spec: "stdout", name: "stdout", check: func(t *testing.T, _ Sink) {
			if stdout.Len() == 0 {
				t.Error("nothing on stdout")
			}
		}},
		{spec: " file:" + filepath.Join(dir, "a.log"), name: "file:" + filepath.Join(dir, "a.log"), check: func(t *testing.T, _ Sink) {
			if data, err := os.ReadFile(filepath.Join(dir, "a.log")); err != nil || len(data) == 0 {
				t.Errorf("file: %q, %v", data, err)
			}
		}},
		{spec: "file://" + filepath.Join(dir, "b.log"), name: "file:" + filepath.Join(dir, "b.log")},
		{spec: "file://localhost" + filepath.Join(dir, "c.log"), name: "file:" + filepath.Join(dir, "c.log")},
		{spec: rc.srv.URL + "/in", name: rc.srv.URL + "/in", check: func(t *testing.T, s Sink) {
			if _, ok := s.(*HTTPSink); !ok {
				t.Errorf("%T, want *HTTPSink", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := Parse(tc.spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer closeOrFail(t, s)
			if s.Name() != tc.name {
				t.Errorf("Name() = %q, want %q", s.Name(), tc.name)
			}
			if err := s.Write(context.Background(), testRecord(0)); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestParseAll(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	reg := prometheus.NewRegistry()
	opts := Options{Stdout: &stdout, SpoolDir: dir, Registerer: reg}
	path := filepath.Join(dir, "audit.log")

	s, err := ParseAll([]string{"stdout", "file:" + path}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := "multi(stdout, file:" + path + ")"; s.Name() != want {
		t.Errorf("Name() = %q, want %q", s.Name(), want)
	}
	r := testRecord(0)
	for range 3 { // a retried record is written once
		if err := s.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertSameIDs(t, decodeLines(t, stdout.Bytes()), []Record{r})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSameIDs(t, decodeLines(t, data), []Record{r})
	if got := counter(t, mustMetrics(t, reg), "stdout", ResultDuplicate); got != 2 {
		t.Errorf("duplicates = %v, want 2", got)
	}

	// No values: stdout.
	stdout.Reset()
	s, err = ParseAll(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "stdout" {
		t.Errorf("default sink %q, want stdout", s.Name())
	}
	if err := s.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() == 0 {
		t.Error("the default sink wrote nothing")
	}

	// Dedup disabled.
	stdout.Reset()
	opts.DedupWindow = -1
	s, err = ParseAll([]string{"stdout"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(decodeLines(t, stdout.Bytes())); n != 2 {
		t.Errorf("%d lines without dedup, want 2", n)
	}
}

func TestParseAllErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tests := []struct {
		name  string
		specs []string
		want  string
	}{
		{name: "same stdout twice", specs: []string{"stdout", "stdout"}, want: `--audit-sink "stdout": same destination as --audit-sink "stdout"`},
		{name: "same file twice", specs: []string{"file:" + path, "file://" + path}, want: "same destination"},
		{name: "same endpoint with other credentials", specs: []string{"https://a:b@audit.example.com/in", "https://audit.example.com/in?x=1"}, want: "same destination"},
		{name: "bad value", specs: []string{"stdout", "ftp://x"}, want: `unsupported scheme "ftp"`},
		{name: "open fails after others opened", specs: []string{"http://127.0.0.1:1/in", "file:" + filepath.Join(dir, "no", "x.log")}, want: "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseAll(tc.specs, Options{SpoolDir: dir})
			if err == nil {
				_ = s.Close()
				t.Fatal("ParseAll succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseAll = %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// The HTTP sink opened before the failure was closed: its spool is free again.
	s, err := NewHTTP("http://127.0.0.1:1/in", Options{SpoolDir: dir})
	if err != nil {
		t.Fatalf("the spool of the sink opened before the failure is still held: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseAllConflictingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Someone else registered a different metric under our name.
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricRecordsTotal, Help: "other"}))
	_, err := ParseAll([]string{"stdout"}, Options{Registerer: reg})
	if err == nil || !strings.Contains(err.Error(), "register audit metrics") {
		t.Fatalf("ParseAll = %v, want a registration error", err)
	}
	for _, open := range []func() error{
		func() error { _, err := NewStream("x", &bytes.Buffer{}, Options{Registerer: reg}); return err },
		func() error { _, err := NewFile(filepath.Join(t.TempDir(), "a"), Options{Registerer: reg}); return err },
		func() error {
			_, err := NewHTTP("http://x", Options{Registerer: reg, SpoolDir: t.TempDir()})
			return err
		},
	} {
		if err := open(); err == nil {
			t.Error("a sink was created without its metrics")
		}
	}
	// The depth gauge conflicts too.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: MetricSpoolDepth, Help: "other"}))
	if _, err := newMetrics(reg2); err == nil {
		t.Error("newMetrics accepted a conflicting depth metric")
	}
}

func mustMetrics(t *testing.T, reg prometheus.Registerer) *metrics {
	t.Helper()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseSpecDestinations(t *testing.T) {
	a, err := parseSpec("https://u:p@h.example/x?q=1")
	if err != nil {
		t.Fatal(err)
	}
	if a.dest != "https://h.example/x" {
		t.Errorf("dest %q", a.dest)
	}
	rel, err := parseSpec("file:audit.log")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if rel.dest != "file:"+filepath.Join(wd, "audit.log") || rel.path != "audit.log" {
		t.Errorf("relative file: dest %q, path %q", rel.dest, rel.path)
	}
	if _, err := parseSpec("HTTPS://h.example/x"); err != nil {
		t.Errorf("upper-case scheme: %v", err)
	}
	target := errors.New("x")
	if errors.Is(specError("s", target), target) != true {
		t.Error("specError does not wrap")
	}
}

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
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// FlagName is the command-line flag whose values Parse reads; errors name it.
const FlagName = "--audit-sink"

const sinkHint = "use stdout, file:PATH or http(s)://URL"

type sinkKind int

const (
	kindStdout sinkKind = iota
	kindFile
	kindHTTP
)

// sinkSpec is a parsed --audit-sink value.
type sinkSpec struct {
	raw  string
	kind sinkKind
	path string // kindFile
	url  string // kindHTTP
	// dest identifies the destination, to refuse two values that write to the same place.
	dest string
}

func specError(raw string, err error) error {
	return fmt.Errorf("%s %q: %w", FlagName, raw, err)
}

// parseSpec parses one --audit-sink value without opening anything.
func parseSpec(raw string) (sinkSpec, error) {
	s := strings.TrimSpace(raw)
	sp := sinkSpec{raw: raw}
	switch {
	case s == "":
		return sp, specError(raw, errors.New("empty value; "+sinkHint))
	case s == "stdout":
		sp.kind, sp.dest = kindStdout, "stdout"
		return sp, nil
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		if strings.HasPrefix(p, "//") {
			u, err := url.Parse(s)
			if err != nil {
				return sp, specError(raw, fmt.Errorf("invalid file URL: %w", err))
			}
			if u.Host != "" && u.Host != "localhost" {
				return sp, specError(raw, fmt.Errorf("file URL names host %q; use file:PATH, e.g. file:/var/log/flagops/audit.log", u.Host))
			}
			p = u.Path
		}
		if p == "" {
			return sp, specError(raw, errors.New("empty path; use file:PATH, e.g. file:/var/log/flagops/audit.log"))
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return sp, specError(raw, fmt.Errorf("resolve path: %w", err))
		}
		sp.kind, sp.path, sp.dest = kindFile, p, "file:"+abs
		return sp, nil
	}
	scheme, _, hasScheme := strings.Cut(s, ":")
	if !hasScheme || scheme == "" {
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
			return sp, specError(raw, fmt.Errorf("unknown sink; for a file use %q", "file:"+s))
		}
		return sp, specError(raw, errors.New("unknown sink; "+sinkHint))
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		u, err := parseHTTPURL(s)
		if err != nil {
			return sp, specError(raw, err)
		}
		sp.kind, sp.url, sp.dest = kindHTTP, s, redactURL(u)
		return sp, nil
	default:
		return sp, specError(raw, fmt.Errorf("unsupported scheme %q; %s", scheme, sinkHint))
	}
}

func (sp sinkSpec) open(opts Options) (Sink, error) {
	var (
		s   Sink
		err error
	)
	switch sp.kind {
	case kindStdout:
		opts = opts.withDefaults()
		s, err = NewStream("stdout", opts.Stdout, opts)
	case kindFile:
		s, err = NewFile(sp.path, opts)
	default:
		s, err = NewHTTP(sp.url, opts)
	}
	if err != nil {
		return nil, specError(sp.raw, err)
	}
	return s, nil
}

// Parse creates the sink that one --audit-sink value names:
//
//	stdout              one JSON line per record on Options.Stdout
//	file:PATH           one JSON line per record appended to PATH (file:///PATH also works)
//	http://URL, https://URL
//	                    batches POSTed to URL through a spool in Options.SpoolDir
//
// Errors name the value.
func Parse(spec string, opts Options) (Sink, error) {
	sp, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	return sp.open(opts)
}

// ParseAll creates the sinks of every --audit-sink value, stdout if there are none, and
// returns them as one sink (Multi if more than one). Each is wrapped in Dedup with
// Options.DedupWindow. Two values that name the same destination are an error. If any
// value fails, the sinks already created are closed.
func ParseAll(specs []string, opts Options) (Sink, error) {
	if len(specs) == 0 {
		specs = []string{"stdout"}
	}
	opts = opts.withDefaults()
	parsed := make([]sinkSpec, 0, len(specs))
	byDest := map[string]string{}
	for _, raw := range specs {
		sp, err := parseSpec(raw)
		if err != nil {
			return nil, err
		}
		if prev, dup := byDest[sp.dest]; dup {
			return nil, specError(raw, fmt.Errorf("same destination as %s %q", FlagName, prev))
		}
		byDest[sp.dest] = raw
		parsed = append(parsed, sp)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	sinks := make([]Sink, 0, len(parsed))
	for _, sp := range parsed {
		s, err := sp.open(opts)
		if err != nil {
			for _, open := range sinks {
				err = errors.Join(err, open.Close())
			}
			return nil, err
		}
		sinks = append(sinks, newDedup(s, opts.DedupWindow, m))
	}
	if len(sinks) == 1 {
		return sinks[0], nil
	}
	return Multi(sinks...), nil
}

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

// Package sse reads text/event-stream responses for the hack/ harnesses' stream clients.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// Event is one dispatched block of a text/event-stream.
type Event struct {
	Name  string
	ID    string
	HasID bool
	Data  []byte
	Retry time.Duration
}

// Read reads a text/event-stream and calls f with each block, until the stream ends
// (io.EOF) or f fails.
func Read(r io.Reader, f func(Event) error) error {
	br := bufio.NewReaderSize(r, 4096)
	var ev Event
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, part...)
			continue
		}
		if err != nil {
			return err
		}
		if line != nil {
			part = append(line, part...)
			line = nil
		}
		part = bytes.TrimRight(part, "\r\n")
		if len(part) == 0 {
			if err := f(ev); err != nil {
				return err
			}
			ev = Event{}
			continue
		}
		field, value, _ := bytes.Cut(part, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "id":
			ev.ID, ev.HasID = string(value), true
		case "data":
			if ev.Data != nil {
				ev.Data = append(ev.Data, '\n')
			}
			ev.Data = append(ev.Data, value...)
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

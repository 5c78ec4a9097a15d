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

package sse

import (
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	long := strings.Repeat("x", 10000) // longer than the reader's buffer
	stream := "retry: 3000\n\n" +
		"id: a1\n\n" +
		"id: b2\r\nevent: snapshot\r\ndata: {\"v\":\"" + long + "\"}\r\n\r\n" +
		": heartbeat\n\n" +
		"event: x\ndata: one\ndata: two\n\n" +
		"id: c3\nevent: trailing" // no blank line: never dispatched
	var got []Event
	err := Read(strings.NewReader(stream), func(ev Event) error {
		got = append(got, ev)
		return nil
	})
	if err == nil {
		t.Fatal("Read returned nil at the end of the stream, want io.EOF")
	}
	want := []Event{
		{Retry: 3 * time.Second},
		{ID: "a1", HasID: true},
		{Name: "snapshot", ID: "b2", HasID: true, Data: []byte(`{"v":"` + long + `"}`)},
		{},
		{Name: "x", Data: []byte("one\ntwo")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.ID != w.ID || g.HasID != w.HasID || string(g.Data) != string(w.Data) || g.Retry != w.Retry {
			t.Errorf("event %d = {%q %q %v %d bytes %s}, want {%q %q %v %d bytes %s}", i,
				g.Name, g.ID, g.HasID, len(g.Data), g.Retry, w.Name, w.ID, w.HasID, len(w.Data), w.Retry)
		}
	}
}

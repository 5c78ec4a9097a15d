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
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spoolSeeds are the seed inputs of the spool fuzz tests: good, torn, damaged and odd
// frames, and cursor files.
func spoolSeeds(f *testing.F) [][]byte {
	rec, err := testRecord(0).encode()
	if err != nil {
		f.Fatal(err)
	}
	good := appendFrame(nil, rec)
	flipped := bytes.Clone(good)
	flipped[frameHeaderLen+5] ^= 0x20
	upper := []byte(strings.ToUpper(string(good[:8])) + string(good[8:]))
	return [][]byte{
		good,
		append(bytes.Clone(good), good...),
		good[:len(good)-1],
		flipped,
		upper,
		append(bytes.Clone(flipped), good...),
		[]byte(""),
		[]byte("\n"),
		[]byte("\n\n"),
		[]byte("00000000 {}\n"),
		[]byte("zzzzzzzz {}\n"),
		[]byte("0123456789\n"),
		appendFrame(nil, []byte(`[1,2]`)),
		appendFrame(nil, []byte(`{"id":`)),
		appendFrame(nil, []byte(`{"id":"x","time":"2026-01-01T00:00:00Z"}`)),
		[]byte(strings.Repeat("a", 300) + "\n" + string(good)),
		encodeCursor(cursor{Segment: 3, Offset: 42}),
		[]byte(`{"version":1,"segment":3,"offset":42} x`),
		[]byte(`{"version":1,"segment":0,"offset":0}`),
	}
}

// FuzzSpoolDecode feeds arbitrary bytes to the spool's decoders: the frame scanner and the
// cursor decoder. Neither may panic; the scanner's frames must tile the complete part of
// the input exactly, every frame it accepts must re-encode to the same bytes, and a decoded
// cursor must round-trip.
func FuzzSpoolDecode(f *testing.F) {
	for _, seed := range spoolSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, maxFrame := range []int{64, maxFrameBytes} {
			frames, committed := scanFrames(data, maxFrame)
			if committed < 0 || committed > int64(len(data)) {
				t.Fatalf("committed %d of %d bytes", committed, len(data))
			}
			if committed > 0 && data[committed-1] != '\n' {
				t.Fatalf("committed part does not end with a line feed")
			}
			if bytes.IndexByte(data[committed:], '\n') >= 0 {
				t.Fatalf("a complete line after the committed part")
			}
			var pos int64
			for _, fm := range frames {
				if fm.off != pos || fm.end <= fm.off || fm.end > committed {
					t.Fatalf("frame %d-%d does not follow %d", fm.off, fm.end, pos)
				}
				pos = fm.end
				if fm.err == nil {
					if !bytes.Equal(appendFrame(nil, fm.payload), data[fm.off:fm.end]) {
						t.Fatalf("accepted frame does not re-encode to its bytes")
					}
					if !json.Valid(fm.payload) {
						t.Fatalf("accepted frame is not JSON")
					}
					var r Record
					_ = json.Unmarshal(fm.payload, &r) // must not panic
				} else if len(fm.raw) > maxRawBytes || fm.payload != nil {
					t.Fatalf("corrupt frame keeps %d raw bytes and a payload", len(fm.raw))
				}
			}
			if pos != committed {
				t.Fatalf("frames cover %d of %d committed bytes", pos, committed)
			}
		}
		if c, err := decodeCursor(data); err == nil {
			back, err := decodeCursor(encodeCursor(c))
			if err != nil || back != c {
				t.Fatalf("cursor %+v does not round-trip: %+v, %v", c, back, err)
			}
		}
	})
}

// FuzzSpoolOpen opens a spool whose only segment holds arbitrary bytes: it must open, count
// the same frames as the scanner, and read them all back, corrupt ones singly.
func FuzzSpoolOpen(f *testing.F) {
	for _, seed := range spoolSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, _ := scanFrames(data, maxFrameBytes)
		dir := filepath.Join(t.TempDir(), "spool")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(testSpoolConfig(dir))
		if err != nil {
			t.Fatalf("openSpool: %v", err)
		}
		defer func() {
			if err := s.close(); err != nil {
				t.Errorf("close the spool: %v", err)
			}
		}()
		if s.pending() != len(frames) {
			t.Fatalf("spool counts %d records, scanner %d", s.pending(), len(frames))
		}
		// Read it back in batches, moving the position in memory only (acknowledging would
		// fsync the cursor after every batch and slow the fuzzer down for nothing).
		read := 0
		for {
			b, err := s.peek(3, 1<<20)
			if err != nil {
				t.Fatalf("peek: %v", err)
			}
			if b.empty() {
				break
			}
			if b.corrupt != nil && (b.corrupt.err == nil || len(b.payloads) > 0) {
				t.Fatalf("corrupt frame without a reason, or with payloads")
			}
			read += b.count()
			s.mu.Lock()
			s.headOff = b.end
			s.mu.Unlock()
		}
		if read != len(frames) {
			t.Fatalf("read %d records back, want %d", read, len(frames))
		}
	})
}

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
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A spool segment is a sequence of frames, one per line:
//
//	<crc> SP <record JSON> LF
//
// where <crc> is the CRC-32C (Castagnoli) of the record JSON as 8 lower-case hex digits.
// The record JSON is compact and so never contains a line feed.

const (
	frameHeaderLen = 9 // 8 hex digits and a space
	// frameOverhead is the header and the trailing line feed.
	frameOverhead = frameHeaderLen + 1
	// maxFrameBytes bounds one frame, line feed included.
	maxFrameBytes = MaxRecordBytes + frameOverhead
	// maxRawBytes bounds the bytes of a corrupt frame kept for the dead-letter file.
	maxRawBytes = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the frame of payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(payload, castagnoli))
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, ' ')
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// decodeFrame checks one frame, given without its line feed, and returns its payload.
func decodeFrame(line []byte) ([]byte, error) {
	if len(line) < frameHeaderLen+2 {
		return nil, fmt.Errorf("frame of %d bytes is too short", len(line))
	}
	for _, c := range line[:frameHeaderLen-1] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("frame checksum %q is not 8 lower-case hex digits", line[:frameHeaderLen-1])
		}
	}
	if line[frameHeaderLen-1] != ' ' {
		return nil, errors.New("frame checksum is not followed by a space")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:frameHeaderLen-1]); err != nil {
		return nil, fmt.Errorf("frame checksum: %w", err)
	}
	payload := line[frameHeaderLen:]
	if got, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("frame checksum mismatch: stored %08x, computed %08x", want, got)
	}
	if payload[0] != '{' || !json.Valid(payload) {
		return nil, errors.New("frame payload is not a JSON object")
	}
	return payload, nil
}

// frame is one line read from a segment.
type frame struct {
	// off and end are the byte range of the frame in its segment, line feed included.
	off, end int64
	// payload is the record JSON of a good frame.
	payload []byte
	// err says why the frame is corrupt; raw holds (a prefix of) its bytes.
	err error
	raw []byte
}

// frameReader reads the frames of a segment. A final line without a line feed is a torn
// write that never completed: it is not returned, and next reports io.EOF before it.
type frameReader struct {
	r   *bufio.Reader
	off int64
	max int
}

func newFrameReader(r io.Reader, off int64, maxFrame int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), off: off, max: maxFrame}
}

// next returns the next complete frame, good or corrupt, or io.EOF, or a read error.
func (fr *frameReader) next() (frame, error) {
	var line []byte
	n := 0 // bytes of the line consumed, line feed included
	tooLong := false
	for {
		chunk, err := fr.r.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if n > fr.max {
				tooLong = true
				keep := min(len(chunk), max(0, maxRawBytes-len(line)))
				line = append(line, chunk[:keep]...)
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			f := frame{off: fr.off, end: fr.off + int64(n)}
			fr.off = f.end
			if tooLong {
				f.err = fmt.Errorf("frame of %d bytes exceeds the %d-byte limit", n, fr.max)
				f.raw = line
				return f, nil
			}
			line = line[:len(line)-1]
			payload, derr := decodeFrame(line)
			if derr != nil {
				f.err = derr
				f.raw = line
				return f, nil
			}
			f.payload = payload
			return f, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return frame{}, io.EOF
		default:
			return frame{}, fmt.Errorf("read spool segment: %w", err)
		}
	}
}

// scanFrames splits data into frames. It returns the frames and the length of the complete
// part of data, which excludes a torn final line.
func scanFrames(data []byte, maxFrame int) ([]frame, int64) {
	fr := newFrameReader(bytes.NewReader(data), 0, maxFrame)
	var frames []frame
	for {
		f, err := fr.next()
		if err != nil {
			return frames, fr.off
		}
		frames = append(frames, f)
	}
}

// cursor is the position of the first record not yet delivered: a segment and a byte
// offset in it. It is stored in the spool's "cursor" file as JSON.
type cursor struct {
	Version int    `json:"version"`
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

const cursorVersion = 1

func encodeCursor(c cursor) []byte {
	c.Version = cursorVersion
	b, _ := json.Marshal(c) // cannot fail: only integers
	return append(b, '\n')
}

func decodeCursor(data []byte) (cursor, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c cursor
	if err := dec.Decode(&c); err != nil {
		return cursor{}, fmt.Errorf("decode spool cursor: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return cursor{}, errors.New("decode spool cursor: trailing data")
	}
	if c.Version != cursorVersion {
		return cursor{}, fmt.Errorf("decode spool cursor: unsupported version %d", c.Version)
	}
	if c.Segment == 0 || c.Offset < 0 {
		return cursor{}, fmt.Errorf("decode spool cursor: invalid position %d:%d", c.Segment, c.Offset)
	}
	return c, nil
}

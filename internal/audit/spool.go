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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-logr/logr"
)

// Files of a spool directory.
const (
	segmentSuffix      = ".seg"
	segmentNameDigits  = 20
	cursorFileName     = "cursor"
	cursorTempFileName = "cursor.tmp"
	lockFileName       = "LOCK"
	deadLetterFileName = "dead-letter.ndjson"
	endpointFileName   = "endpoint"
)

var errSpoolLocked = errors.New("spool directory is in use by another audit sink")

type spoolConfig struct {
	dir                string
	maxBytes           int64
	maxRecords         int
	segmentBytes       int64
	deadLetterMaxBytes int64
	maxFrame           int
	clock              Clock
	log                logr.Logger
	// onDepth is called, with the lock held, whenever the number of pending records changes.
	onDepth func(records int)
}

type segment struct {
	id uint64
	// size is the committed length: the end of the last complete frame.
	size int64
}

// spool is a durable FIFO queue of records on disk: numbered segment files of frames, and
// a cursor file holding the position of the first record not yet delivered. One writer
// (Write, any goroutine) appends; one reader (the sender goroutine) peeks, acknowledges
// and dead-letters.
type spool struct {
	cfg    spoolConfig
	lock   *os.File
	notify chan struct{} // receives a value after an append

	mu      sync.Mutex
	closed  bool      // appends are refused
	segs    []segment // ascending; segs[0] is the head
	headOff int64     // offset in segs[0] of the first pending frame
	active  *os.File  // append handle of the last segment, or nil
	nextID  uint64    // id of the next segment to create
	records int       // pending frames
	bytes   int64     // pending bytes
	dlSize  int64     // size of the dead-letter file, -1 until known
}

// batch is a run of consecutive frames of the head segment, returned by peek.
type batch struct {
	seg        uint64
	start, end int64
	payloads   [][]byte
	// ends[i] is the offset just past the frame of payloads[i].
	ends []int64
	// corrupt is set, alone, when the first pending frame cannot be read back.
	corrupt *frame
}

func (b batch) empty() bool { return len(b.payloads) == 0 && b.corrupt == nil }

// sub returns the batch of payloads i to j-1 (0 <= i < j <= len(b.payloads)).
func (b batch) sub(i, j int) batch {
	start := b.start
	if i > 0 {
		start = b.ends[i-1]
	}
	return batch{seg: b.seg, start: start, end: b.ends[j-1], payloads: b.payloads[i:j], ends: b.ends[i:j]}
}

func (b batch) count() int {
	if b.corrupt != nil {
		return 1
	}
	return len(b.payloads)
}

func segmentName(id uint64) string {
	return fmt.Sprintf("%0*d%s", segmentNameDigits, id, segmentSuffix)
}

func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentNameDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}

func (s *spool) path(name string) string { return filepath.Join(s.cfg.dir, name) }

// openSpool opens the spool in cfg.dir, creating the directory (not its parent) if needed,
// locking it, and recovering its state: segments before the cursor are removed, torn
// final lines are ignored, and the pending records are counted.
func openSpool(cfg spoolConfig) (*spool, error) {
	if err := os.Mkdir(cfg.dir, 0o700); err == nil {
		if err := syncDir(filepath.Dir(cfg.dir)); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	s := &spool{cfg: cfg, notify: make(chan struct{}, 1), dlSize: -1}
	lock, err := os.OpenFile(s.path(lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spool lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("spool %q: %w", cfg.dir, err)
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("spool %q: %w", cfg.dir, err)
	}
	return s, nil
}

func (s *spool) recover() error {
	entries, err := os.ReadDir(s.cfg.dir)
	if err != nil {
		return fmt.Errorf("list spool: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		if id, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if err := os.Remove(s.path(cursorTempFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale cursor: %w", err)
	}

	cur, haveCursor, err := s.readCursor()
	if err != nil {
		return err
	}
	if haveCursor && len(ids) > 0 && cur.Segment > ids[len(ids)-1]+1 {
		s.cfg.log.Info("Audit spool cursor is ahead of every segment; resending the whole spool, some records may be delivered twice",
			"dir", s.cfg.dir, "cursorSegment", cur.Segment, "lastSegment", ids[len(ids)-1])
		haveCursor = false
	}
	s.nextID = 1
	if len(ids) > 0 {
		s.nextID = ids[len(ids)-1] + 1
	}
	if haveCursor {
		s.nextID = max(s.nextID, cur.Segment)
		// Segments before the cursor were delivered; they survive only a crash between
		// moving the cursor and removing them.
		for len(ids) > 0 && ids[0] < cur.Segment {
			if err := os.Remove(s.path(segmentName(ids[0]))); err != nil {
				return fmt.Errorf("remove delivered segment: %w", err)
			}
			ids = ids[1:]
		}
		if len(ids) > 0 && ids[0] == cur.Segment {
			s.headOff = cur.Offset
		}
	}
	for i, id := range ids {
		seg, err := s.scanSegment(id, i == 0)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
	}
	if err := s.advanceLocked(); err != nil {
		return err
	}
	s.cfg.onDepth(s.records)
	return nil
}

// readCursor reads the cursor file. A missing file is no cursor; an unreadable one is
// logged and ignored, so the spool is resent from its oldest record rather than skipped.
func (s *spool) readCursor() (cursor, bool, error) {
	data, err := os.ReadFile(s.path(cursorFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return cursor{}, false, nil
	}
	if err != nil {
		return cursor{}, false, fmt.Errorf("read spool cursor: %w", err)
	}
	cur, err := decodeCursor(data)
	if err != nil {
		s.cfg.log.Info("Ignoring an unreadable audit spool cursor; resending the whole spool, some records may be delivered twice",
			"dir", s.cfg.dir, "error", err.Error())
		return cursor{}, false, nil
	}
	return cur, true, nil
}

// scanSegment reads a segment to find its committed size and count its pending frames.
// For the head segment, frames that end at or before headOff were delivered; headOff is
// moved back to a frame boundary if it is not on one.
func (s *spool) scanSegment(id uint64, head bool) (segment, error) {
	f, err := os.Open(s.path(segmentName(id)))
	if err != nil {
		return segment{}, fmt.Errorf("open spool segment: %w", err)
	}
	defer closeReadOnly(f)
	fr := newFrameReader(f, 0, s.cfg.maxFrame)
	var boundary int64
	corrupt := 0
	for {
		fm, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return segment{}, fmt.Errorf("segment %s: %w", segmentName(id), err)
		}
		if head && fm.end <= s.headOff {
			boundary = fm.end
			continue
		}
		if fm.err != nil {
			corrupt++
		}
		s.records++
		s.bytes += fm.end - fm.off
	}
	if head && boundary != s.headOff {
		s.cfg.log.Info("Audit spool cursor is not at the end of a record; resuming at the previous record, which may be delivered twice",
			"dir", s.cfg.dir, "segment", segmentName(id), "cursor", s.headOff, "resumeAt", boundary)
		s.headOff = boundary
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > fr.off {
		s.cfg.log.Info("Ignoring the incomplete last line of an audit spool segment, left by an interrupted write that was never acknowledged",
			"dir", s.cfg.dir, "segment", segmentName(id), "bytes", fi.Size()-fr.off)
	}
	if corrupt > 0 {
		s.cfg.log.Info("Audit spool segment has corrupt records; they will be moved to the dead-letter file",
			"dir", s.cfg.dir, "segment", segmentName(id), "records", corrupt)
	}
	return segment{id: id, size: fr.off}, nil
}

// append makes payload durable at the tail of the spool.
func (s *spool) append(payload []byte) error {
	frame := appendFrame(make([]byte, 0, len(payload)+frameOverhead), payload)
	if len(frame) > s.cfg.maxFrame {
		return fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrRecordTooLarge, len(payload), s.cfg.maxFrame-frameOverhead)
	}
	n := int64(len(frame))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.records+1 > s.cfg.maxRecords || s.bytes+n > s.cfg.maxBytes {
		return fmt.Errorf("%w: %d records (%d bytes) wait for delivery, the limits are %d records and %d bytes",
			ErrSpoolFull, s.records, s.bytes, s.cfg.maxRecords, s.cfg.maxBytes)
	}
	if s.active == nil || (s.tail().size > 0 && s.tail().size+n > s.cfg.segmentBytes) {
		if err := s.rollLocked(); err != nil {
			return err
		}
	}
	tail := s.tail()
	if _, err := s.active.Write(frame); err != nil {
		s.abandonActiveLocked(tail.size)
		return fmt.Errorf("append to spool segment: %w", err)
	}
	if err := s.active.Sync(); err != nil {
		s.abandonActiveLocked(tail.size)
		return fmt.Errorf("fsync spool segment: %w", err)
	}
	tail.size += n
	s.records++
	s.bytes += n
	s.cfg.onDepth(s.records)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *spool) tail() *segment { return &s.segs[len(s.segs)-1] }

// rollLocked starts a new segment and makes it the append target.
func (s *spool) rollLocked() error {
	if s.active != nil {
		// Every frame in it was fsynced; a close error loses nothing.
		_ = s.active.Close()
		s.active = nil
	}
	id := s.nextID
	p := s.path(segmentName(id))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	s.nextID++
	if err := syncDir(s.cfg.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(p)
		return err
	}
	s.segs = append(s.segs, segment{id: id})
	s.active = f
	return nil
}

// abandonActiveLocked stops appending to the active segment after a failed write, cutting
// off what the write may have left, so that the next append starts a clean segment.
func (s *spool) abandonActiveLocked(size int64) {
	_ = s.active.Truncate(size)
	_ = s.active.Close()
	s.active = nil
}

// advanceLocked removes delivered head segments that are no longer appended to.
//
// The cursor may keep naming a removed segment while a later one exists: recovery then
// starts at the first segment after it, from offset 0, which is right. Only before removing
// the last segment must the cursor move on, to the next segment number: otherwise a new
// segment created with the removed one's number after a restart would be read from the old
// offset. Not writing the cursor otherwise saves fsyncs, and keeps delivery (which frees
// space) going when the disk is too full to write it.
func (s *spool) advanceLocked() error {
	for len(s.segs) > 0 && s.headOff >= s.segs[0].size {
		if s.active != nil && len(s.segs) == 1 {
			return nil
		}
		if len(s.segs) == 1 {
			if err := s.writeCursor(cursor{Segment: s.nextID}); err != nil {
				return err
			}
		}
		if err := os.Remove(s.path(segmentName(s.segs[0].id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove delivered segment: %w", err)
		}
		s.segs = s.segs[1:]
		s.headOff = 0
	}
	return nil
}

// writeCursor replaces the cursor file atomically and durably.
func (s *spool) writeCursor(c cursor) error {
	tmp := s.path(cursorTempFileName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write spool cursor: %w", err)
	}
	_, err = f.Write(encodeCursor(c))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(cursorFileName))
	}
	if err != nil {
		return fmt.Errorf("write spool cursor: %w", err)
	}
	return syncDir(s.cfg.dir)
}

// peek returns up to maxRecords pending frames (and about maxBytes of payload, but at least
// one frame) from the head segment, without removing them. A corrupt first frame is
// returned alone in batch.corrupt; a corrupt later frame ends the batch before it.
func (s *spool) peek(maxRecords, maxBytes int) (batch, error) {
	s.mu.Lock()
	err := s.advanceLocked()
	var seg segment
	var start int64
	if len(s.segs) > 0 {
		seg, start = s.segs[0], s.headOff
	}
	s.mu.Unlock()
	if err != nil {
		return batch{}, err
	}
	if seg.id == 0 || start >= seg.size {
		return batch{}, nil
	}
	f, err := os.Open(s.path(segmentName(seg.id)))
	if err != nil {
		return batch{}, fmt.Errorf("open spool segment: %w", err)
	}
	defer closeReadOnly(f)
	fr := newFrameReader(io.NewSectionReader(f, start, seg.size-start), start, s.cfg.maxFrame)
	b := batch{seg: seg.id, start: start, end: start}
	size := 0
	for len(b.payloads) < maxRecords {
		fm, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return batch{}, fmt.Errorf("segment %s: %w", segmentName(seg.id), err)
		}
		if fm.err != nil {
			if len(b.payloads) == 0 {
				b.corrupt = &fm
				b.end = fm.end
			}
			break
		}
		if len(b.payloads) > 0 && size+len(fm.payload)+1 > maxBytes {
			break
		}
		b.payloads = append(b.payloads, fm.payload)
		b.ends = append(b.ends, fm.end)
		size += len(fm.payload) + 1
		b.end = fm.end
	}
	return b, nil
}

// ack marks the frames of b as done (delivered or dead-lettered) and persists the cursor.
// The in-memory position moves even if persisting fails, so that this process does not
// send b again; the error is returned for logging, and after a restart b may be resent.
func (s *spool) ack(b batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0].id != b.seg || s.headOff != b.start {
		return fmt.Errorf("acknowledge spool batch %d:%d-%d: not at the head of the spool", b.seg, b.start, b.end)
	}
	s.headOff = b.end
	s.records -= b.count()
	s.bytes -= b.end - b.start
	s.cfg.onDepth(s.records)
	if err := s.writeCursor(cursor{Segment: b.seg, Offset: b.end}); err != nil {
		return err
	}
	return s.advanceLocked()
}

// deadLetterEntry is one line of the dead-letter file.
type deadLetterEntry struct {
	Time   string `json:"time"`
	Reason string `json:"reason"`
	// Status is the HTTP status of a rejected record.
	Status int `json:"status,omitempty"`
	// Record is a rejected record, as it was spooled.
	Record json.RawMessage `json:"record,omitempty"`
	// Raw is (a prefix of) the bytes of a frame that could not be read back.
	Raw     string `json:"raw,omitempty"`
	Segment string `json:"segment,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
}

// deadLetter appends entries to the dead-letter file and fsyncs it, first rotating the file
// to dead-letter.ndjson.1 when it has reached the configured size.
func (s *spool) deadLetter(entries []deadLetterEntry) error {
	var buf []byte
	now := s.cfg.clock.Now().UTC().Format(TimeLayout)
	for _, e := range entries {
		e.Time = now
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode dead letter: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	p := s.path(deadLetterFileName)
	if s.dlSize < 0 {
		s.dlSize = 0
		if fi, err := os.Stat(p); err == nil {
			s.dlSize = fi.Size()
		}
	}
	if s.dlSize > 0 && s.dlSize+int64(len(buf)) > s.cfg.deadLetterMaxBytes {
		if err := os.Rename(p, p+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate dead-letter file: %w", err)
		}
		s.dlSize = 0
	}
	f, err := openAppend(p)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.dlSize = -1
		return fmt.Errorf("write dead-letter file: %w", err)
	}
	s.dlSize += int64(len(buf))
	return nil
}

// pending returns the number of records waiting for delivery.
func (s *spool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// closeWrites makes later appends fail with ErrClosed; the reader may go on.
func (s *spool) closeWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// close closes the files and releases the directory lock. The reader must have stopped.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	if s.active != nil {
		if err := s.active.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close spool segment: %w", err))
		}
		s.active = nil
	}
	if s.lock != nil {
		if err := s.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release spool lock: %w", err))
		}
		s.lock = nil
	}
	return errors.Join(errs...)
}

// closeReadOnly closes a file that was opened only to read. Its error is ignored: closing such
// a file cannot lose data, and what was read has been checked frame by frame.
func closeReadOnly(f *os.File) { _ = f.Close() }

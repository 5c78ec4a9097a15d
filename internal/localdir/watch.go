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

package localdir

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch loads the directory, then reloads it whenever a manifest in it is created, written,
// renamed or removed, once a burst of changes has been quiet for Options.Debounce.
//
// Watch applies a state of the directory only when two reads, at least Options.Debounce
// apart, found exactly the same files with the same bytes. A read that differs from the
// one before it is held back, and the directory is read again one debounce later. So a
// save caught half way (an editor that truncates a file and then writes it, writes it in
// parts, or removes it and creates it again) is never published: the next read finds the
// finished file and replaces the held-back one. Only a state that stays for a debounce
// is served, for example a file that is really emptied. Applying a change therefore takes
// about two debounces.
//
// Every settled outcome is logged: the errors of a rejected directory (one record per
// problem, with the file), which leave the last good state in place, and the changes of
// an applied one. Watch blocks until ctx is done, then returns nil; it returns an error
// when the directory cannot be watched.
func (l *Loader) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("localdir: watch: %w", err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Add(l.dir); err != nil {
		return fmt.Errorf("localdir: watch %s: %w", l.dir, err)
	}

	timer := time.NewTimer(l.opts.Debounce)
	timer.Stop()
	defer timer.Stop()
	// held is the last read that was not yet confirmed by the read after it.
	var held *dirRead
	check := func() {
		r := l.readOnce()
		if held != nil && r.sum == held.sum {
			l.settle(r)
			return
		}
		held = r
		if r.dirErr == nil {
			l.opts.Logger.Debug("flag directory changed; reading it again to be sure it settled", "dir", l.dir)
		}
		timer.Reset(l.opts.Debounce)
	}
	// Read after the watch is in place, so that no change goes unseen.
	check()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("localdir: watcher closed")
			}
			if relevant(ev) {
				timer.Reset(l.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("localdir: watcher closed")
			}
			l.opts.Logger.Warn("watching the flag directory", "dir", l.dir, "error", err)
			// Events may have been lost: read again to be sure.
			timer.Reset(l.opts.Debounce)
		case <-timer.C:
			check()
		}
	}
}

// dirRead is one read of the directory.
type dirRead struct {
	// sum identifies what the read found (see digest); equal sums, equal files.
	sum [sha256.Size]byte
	// objs are the valid objects; err, when not nil, lists the problems (a *LoadError).
	objs []*object
	err  error
	// dirErr is the error reading the directory itself.
	dirErr error
}

// readOnce reads and validates the directory, applying nothing.
func (l *Loader) readOnce() *dirRead {
	files, err := l.readFiles()
	if err != nil {
		return &dirRead{dirErr: err, sum: sha256.Sum256([]byte(err.Error()))}
	}
	objs, err := l.parse(context.Background(), files)
	return &dirRead{sum: digest(files), objs: objs, err: err}
}

// relevant reports whether an event may change what the directory serves.
func relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	return isManifest(filepath.Base(ev.Name))
}

// settle applies a read that the read before it confirmed, and logs the outcome.
func (l *Loader) settle(r *dirRead) {
	log := l.opts.Logger
	if r.dirErr != nil {
		log.Error("flag directory not loaded; keeping the last good state", "dir", l.dir, "error", r.dirErr)
		return
	}
	err := r.err
	var res Result
	if err == nil {
		l.mu.Lock()
		res, err = l.apply(r.objs)
		l.mu.Unlock()
	}
	if err != nil {
		var le *LoadError
		if !errors.As(err, &le) {
			log.Error("flag directory not loaded; keeping the last good state", "dir", l.dir, "error", err)
			return
		}
		for i := range le.Errors {
			fe := &le.Errors[i]
			log.Error("flag file rejected; keeping the last good state",
				"file", fe.File, "document", fe.Doc, "object", fe.Object, "field", fe.Field, "error", fe.Err)
		}
		return
	}
	if len(res.Upserted) == 0 && len(res.Deleted) == 0 {
		log.Debug("flag directory unchanged", "dir", l.dir, "revision", res.Revision)
		return
	}
	log.Info("flag directory applied", "dir", l.dir, "revision", res.Revision,
		"objects", len(res.Objects), "upserted", refs(res.Upserted), "deleted", refs(res.Deleted))
}

func refs(rs []ObjectRef) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

package localdir

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/flagops/flagops/evaluator"
)

// startWatch runs l.Watch until the test ends, and then checks that it returns nil.
func startWatch(t *testing.T, l *Loader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v, want nil after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "layout.yaml", stringFlag("checkout.layout", "sidebar"))
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, store := newLoader(t, dir, Options{Logger: logger, Debounce: 20 * time.Millisecond})

	startWatch(t, l)
	layout := func() any { return store.Evaluate(DefaultNamespace, evaluator.Context{}, "checkout.layout").Value }
	eventually(t, "the initial load", func() bool { return layout() == "sidebar" })

	// An edit.
	writeFile(t, dir, "layout.yaml", stringFlag("checkout.layout", "single-page"))
	eventually(t, "the edit", func() bool { return layout() == "single-page" })

	// An editor-style save: a temporary file renamed over the original.
	tmp := writeFile(t, dir, ".layout.yaml.tmp", stringFlag("checkout.layout", "tabs"))
	if err := os.Rename(tmp, filepath.Join(dir, "layout.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the renamed file", func() bool { return layout() == "tabs" })

	// A new file.
	writeFile(t, dir, "other.yaml", stringFlag("checkout.other", "x"))
	other := func() evaluator.Result {
		return store.Evaluate(DefaultNamespace, evaluator.Context{}, "checkout.other")
	}
	eventually(t, "the new file", func() bool { return other().Value == "x" })

	// A broken file: logged with its name, and the last good state stays.
	rev := store.Snapshot().Revision()
	broken := writeFile(t, dir, "broken.yaml", "apiVersion: flagops.dev/v1alpha1\nkind: FeatureFlag\nmetadata: {name: a.b}\nspec: {type: Boolean, rollout: {percentage: 101}}\n")
	eventually(t, "the broken file to be logged", func() bool {
		return strings.Contains(logs.String(), "file="+broken) && strings.Contains(logs.String(), "field=spec.rollout.percentage")
	})
	if got := store.Snapshot().Revision(); got != rev || layout() != "tabs" {
		t.Errorf("after a broken file: revision %d (want %d), layout %v (want tabs)", got, rev, layout())
	}

	// Removing the broken file and another one: the removal applies.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "other.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removal", func() bool { return other().ErrorCode == evaluator.ErrorFlagNotFound })
	if layout() != "tabs" {
		t.Errorf("layout %v after removing other files, want tabs", layout())
	}
	if !strings.Contains(logs.String(), "flag directory applied") {
		t.Errorf("applied changes were not logged:\n%s", logs.String())
	}
}

func TestWatchErrors(t *testing.T) {
	dir := t.TempDir()
	l, _ := newLoader(t, dir, Options{})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Watch(context.Background()); err == nil {
		t.Error("Watch of a removed directory returned nil")
	}
}

func TestReloadLogsDirectoryError(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	l, _ := newLoader(t, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	l.settle(l.readOnce())
	if !strings.Contains(logs.String(), "flag directory not loaded") || !strings.Contains(logs.String(), dir) {
		t.Errorf("log %q does not report the unreadable directory", logs.String())
	}
}

func TestRelevant(t *testing.T) {
	tests := []struct {
		ev   fsnotify.Event
		want bool
	}{
		{fsnotify.Event{Name: "/d/a.yaml", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: "/d/a.json", Op: fsnotify.Remove}, true},
		{fsnotify.Event{Name: "/d/a.yml", Op: fsnotify.Rename}, true},
		{fsnotify.Event{Name: "/d/a.yaml", Op: fsnotify.Chmod}, false},
		{fsnotify.Event{Name: "/d/.a.yaml.swp", Op: fsnotify.Create}, false},
		{fsnotify.Event{Name: "/d/a.yaml~", Op: fsnotify.Create}, false},
	}
	for _, tc := range tests {
		if got := relevant(tc.ev); got != tc.want {
			t.Errorf("relevant(%v) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}

// appliedLog records the "deleted" attribute of every "flag directory applied" record, the
// log line Watch writes for each change it publishes.
type appliedLog struct {
	mu      sync.Mutex
	deleted []string
}

func (h *appliedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *appliedLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *appliedLog) WithGroup(string) slog.Handler            { return h }
func (h *appliedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "flag directory applied" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "deleted" {
			if s := a.Value.Resolve().String(); s != "[]" {
				h.mu.Lock()
				h.deleted = append(h.deleted, s)
				h.mu.Unlock()
			}
		}
		return true
	})
	return nil
}

func (h *appliedLog) removals() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.deleted...)
}

// TestWatchNeverPublishesTransientState makes Watch read the directory while a save is
// half done, then completes the save, and checks that the half-done state (a file that
// is empty, partly written, or missing for a moment) is never published: no flag is ever
// removed, and the finished save is served. A file that is really emptied is published.
//
// The interleaving is deterministic: Options.Now, which the loader calls once for every
// read of the directory, after reading the files, blocks the first read after the half
// done step until the test has finished the save.
func TestWatchNeverPublishesTransientState(t *testing.T) {
	const file = "flags.yaml"
	flags := func(v string) string {
		return stringFlag("checkout.a", v) + "---\n" + stringFlag("checkout.b", v)
	}
	before, after := flags("one"), flags("two")
	firstDoc := stringFlag("checkout.a", "two") + "---\n"

	truncate := func(t *testing.T, dir string) {
		if err := os.Truncate(filepath.Join(dir, file), 0); err != nil {
			t.Fatal(err)
		}
	}
	// inPlace writes the file where it is (open with O_TRUNC, then write), as editors
	// that save in place do.
	inPlace := func(content string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		// half leaves the save half done; the loader reads the directory in that state.
		half func(*testing.T, string)
		// finish completes the save; nil when the half-done state is the final one.
		finish func(*testing.T, string)
		// want is the value of each flag once the directory settles; nil is not found.
		want        map[string]any
		wantRemoved bool
	}{
		{
			name:   "truncate, then write",
			half:   truncate,
			finish: inPlace(after),
			want:   map[string]any{"checkout.a": "two", "checkout.b": "two"},
		},
		{
			name: "write in two parts",
			half: inPlace(firstDoc),
			finish: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(stringFlag("checkout.b", "two")); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]any{"checkout.a": "two", "checkout.b": "two"},
		},
		{
			name: "delete, then create again",
			half: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, file)); err != nil {
					t.Fatal(err)
				}
			},
			finish: inPlace(after),
			want:   map[string]any{"checkout.a": "two", "checkout.b": "two"},
		},
		{
			name: "atomic save: the original moved to a backup, a temporary file renamed over it",
			half: func(t *testing.T, dir string) {
				if err := os.Rename(filepath.Join(dir, file), filepath.Join(dir, file+"~")); err != nil {
					t.Fatal(err)
				}
			},
			finish: func(t *testing.T, dir string) { writeFile(t, dir, file, after) },
			want:   map[string]any{"checkout.a": "two", "checkout.b": "two"},
		},
		{
			name:        "a file really emptied is published",
			half:        truncate,
			want:        map[string]any{"checkout.a": nil, "checkout.b": nil},
			wantRemoved: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, file, before)

			// reads receives a release channel from the first read after armed is set.
			reads := make(chan chan struct{})
			var armed atomic.Bool
			now := func() time.Time {
				if armed.CompareAndSwap(true, false) {
					release := make(chan struct{})
					reads <- release
					<-release
				}
				return testNow()
			}
			log := &appliedLog{}
			l, store := newLoader(t, dir, Options{Logger: slog.New(log), Debounce: 20 * time.Millisecond, Now: now})
			startWatch(t, l)
			value := func(key string) any {
				r := store.Evaluate(DefaultNamespace, evaluator.Context{}, key)
				if r.ErrorCode == evaluator.ErrorFlagNotFound {
					return nil
				}
				return r.Value
			}
			settled := func(want map[string]any) func() bool {
				return func() bool {
					for k, v := range want {
						if value(k) != v {
							return false
						}
					}
					return true
				}
			}
			// Once the first state is served, the loader is idle until the next change.
			eventually(t, "the first load", settled(map[string]any{"checkout.a": "one", "checkout.b": "one"}))

			armed.Store(true)
			tt.half(t, dir)
			select {
			case release := <-reads:
				if tt.finish != nil {
					tt.finish(t, dir)
				}
				close(release)
			case <-time.After(15 * time.Second):
				t.Fatal("the loader did not read the half-saved directory")
			}
			eventually(t, "the saved state", settled(tt.want))

			if tt.wantRemoved {
				// The loader logs what it applied after the store has it.
				eventually(t, "the removal logged", func() bool { return len(log.removals()) > 0 })
			}
			got := log.removals()
			if tt.wantRemoved {
				if len(got) != 1 || !strings.Contains(got[0], "checkout.a") || !strings.Contains(got[0], "checkout.b") {
					t.Errorf("removals published: %q; want one, of both flags", got)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("a half-done save was published: removed %q", got)
			}
		})
	}
}

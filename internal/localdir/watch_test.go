package localdir

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/flagops/flagops/evaluator"
)

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "layout.yaml", stringFlag("checkout.layout", "sidebar"))
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, store := newLoader(t, dir, Options{Logger: logger, Debounce: 20 * time.Millisecond})

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
	l.reload()
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

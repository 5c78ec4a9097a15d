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

package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

func TestMirrorWrite(t *testing.T) {
	secret := func(crt, key string) *corev1.Secret {
		return &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte(crt), "tls.key": []byte(key)}}
	}
	read := func(t *testing.T, dir, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("an empty Secret writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		m := &mirror{dir: dir, log: logr.Discard()}
		if err := m.write(secret("", "")); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files written from an empty Secret: %v", entries)
		}
	})

	t.Run("writes, rewrites on a change only, and leaves no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		m := &mirror{dir: dir, log: logr.Discard()}
		if err := m.write(secret("cert-1", "key-1")); err != nil {
			t.Fatal(err)
		}
		if read(t, dir, "tls.crt") != "cert-1" || read(t, dir, "tls.key") != "key-1" {
			t.Fatal("the first certificate was not written")
		}
		before, err := os.Stat(filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.write(secret("cert-2", "key-1")); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) {
			t.Error("an unchanged key was rewritten")
		}
		if read(t, dir, "tls.crt") != "cert-2" {
			t.Error("the renewed certificate was not written")
		}
		if info, _ := os.Stat(filepath.Join(dir, "tls.key")); info.Mode().Perm() != 0o600 {
			t.Errorf("tls.key mode %v, want 0600", info.Mode().Perm())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Errorf("files left: %v", entries)
		}
	})

	t.Run("a directory it cannot write is an error naming the file", func(t *testing.T) {
		m := &mirror{dir: filepath.Join(t.TempDir(), "missing"), log: logr.Discard()}
		if err := m.write(secret("c", "k")); err == nil || !strings.Contains(err.Error(), "tls.key") {
			t.Fatalf("write into a missing directory: %v", err)
		}
	})
}

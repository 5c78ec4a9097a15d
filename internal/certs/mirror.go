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
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The files of the serving certificate in the certificate directory.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// mirror writes the serving certificate and key of one Secret into a directory (an
// emptyDir) whenever the Secret changes, reading the Secret from the API server every
// mirrorInterval. A mounted Secret would do the same, but the kubelet refreshes Secret
// volumes only on its sync period, about a minute: a new replica would wait that long
// before serving, and a renewed certificate would reach the pods that much later.
type mirror struct {
	reader   client.Reader
	key      client.ObjectKey
	dir      string
	interval time.Duration
	log      logr.Logger
}

// mirrorInterval is how often each replica reads the Secret: one GET of one object.
const mirrorInterval = 2 * time.Second

// addMirror adds a mirror of the Secret key into dir to mgr.
func addMirror(mgr manager.Manager, key client.ObjectKey, dir string) error {
	return mgr.Add(&mirror{reader: mgr.GetAPIReader(), key: key, dir: dir, interval: mirrorInterval})
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves.
func (m *mirror) NeedLeaderElection() bool { return false }

// Start follows the Secret until ctx is done.
func (m *mirror) Start(ctx context.Context) error {
	m.log = logf.FromContext(ctx).WithName("webhook-certs")
	for {
		var s corev1.Secret
		err := m.reader.Get(ctx, m.key, &s)
		if err == nil {
			err = m.write(&s)
		}
		if err != nil && ctx.Err() == nil {
			m.log.Error(err, "Unable to mirror the webhook serving certificate", "secret", m.key, "dir", m.dir)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.interval):
		}
	}
}

// write writes the Secret's certificate and key when they are there and differ from the
// files: the key first, then the certificate, each through a temporary file and a rename,
// so that the webhook server, which reloads when the certificate file changes, never reads
// a partial file.
func (m *mirror) write(s *corev1.Secret) error {
	crt, key := s.Data[certFile], s.Data[keyFile]
	if len(crt) == 0 || len(key) == 0 {
		return nil // not filled in yet
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{keyFile, key}, {certFile, crt}} {
		path := filepath.Join(m.dir, f.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		tmp, err := os.CreateTemp(m.dir, "."+f.name+".*")
		if err != nil {
			return fmt.Errorf("failed to write %s: %w", f.name, err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o600)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), path)
		}
		if werr != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("failed to write %s: %w", f.name, werr)
		}
		m.log.Info("Wrote the webhook serving certificate", "file", path, "resourceVersion", s.ResourceVersion)
	}
	return nil
}

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
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The files of the serving certificate in the certificate directory, and the CA's entry in
// the Secret.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
	caFile   = "ca.crt"
)

// mirror follows one Secret, reading it and the two webhook configurations from the API
// server every mirrorInterval, and writes what differs, in this order:
//
//  1. the CA into the caBundle of every webhook of the two configurations, after which each
//     caBundle holds that CA and the earlier ones that have not expired (see caBundle);
//  2. the certificate and key into a directory (an emptyDir).
//
// So the API server trusts the new CA before any replica serves a certificate it signed, and
// still trusts the old CA while replicas serve certificates it signed: a renewed CA leaves
// no moment in which the caBundle does not trust the certificate served.
//
// A mounted Secret would give the directory the certificate too, but the kubelet refreshes
// Secret volumes only on its sync period, about a minute: a new replica would wait that long
// before serving, and a renewed certificate would reach the pods that much later.
type mirror struct {
	reader               client.Reader
	writer               client.Writer
	key                  client.ObjectKey
	mutating, validating string
	dir                  string
	interval             time.Duration
	log                  logr.Logger
}

// mirrorInterval is how often each replica reads the Secret and the two configurations:
// three GETs.
const mirrorInterval = 2 * time.Second

// addMirror adds a mirror of the Secret key into the two configurations and dir to mgr.
func addMirror(mgr manager.Manager, key client.ObjectKey, mutating, validating, dir string) error {
	return mgr.Add(&mirror{
		reader: mgr.GetAPIReader(), writer: mgr.GetClient(), key: key,
		mutating: mutating, validating: validating, dir: dir, interval: mirrorInterval,
	})
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves.
func (m *mirror) NeedLeaderElection() bool { return false }

// Start follows the Secret until ctx is done.
func (m *mirror) Start(ctx context.Context) error {
	m.log = logf.FromContext(ctx).WithName("webhook-certs")
	for {
		if err := m.sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Error(err, "Unable to mirror the webhook certificates", "secret", m.key, "dir", m.dir)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.interval):
		}
	}
}

// sync reads the Secret, writes its CA into the caBundles and then, only if that succeeded,
// its certificate into the directory.
func (m *mirror) sync(ctx context.Context) error {
	var s corev1.Secret
	if err := m.reader.Get(ctx, m.key, &s); err != nil {
		return fmt.Errorf("failed to read the Secret: %w", err)
	}
	ca := s.Data[caFile]
	if len(ca) == 0 || len(s.Data[certFile]) == 0 || len(s.Data[keyFile]) == 0 {
		return nil // not filled in yet
	}
	if err := m.inject(ctx, ca); err != nil {
		return err
	}
	return m.write(&s)
}

// inject sets the caBundle of every webhook of the two configurations for the CA ca, and
// updates those that change. A configuration that does not exist has nothing to trust.
func (m *mirror) inject(ctx context.Context, ca []byte) error {
	now := time.Now()
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, c := range []struct {
		name    string
		obj     client.Object
		bundles func() []*[]byte
	}{
		{m.mutating, mwc, func() (b []*[]byte) {
			for i := range mwc.Webhooks {
				b = append(b, &mwc.Webhooks[i].ClientConfig.CABundle)
			}
			return b
		}},
		{m.validating, vwc, func() (b []*[]byte) {
			for i := range vwc.Webhooks {
				b = append(b, &vwc.Webhooks[i].ClientConfig.CABundle)
			}
			return b
		}},
	} {
		if err := m.reader.Get(ctx, client.ObjectKey{Name: c.name}, c.obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("failed to read the webhook configuration %s: %w", c.name, err)
		}
		changed := false
		for _, b := range c.bundles() {
			next, err := caBundle(*b, ca, now)
			if err != nil {
				return fmt.Errorf("the Secret's %s: %w", caFile, err)
			}
			if !bytes.Equal(next, *b) {
				*b, changed = next, true
			}
		}
		if !changed {
			continue
		}
		if err := m.writer.Update(ctx, c.obj, client.FieldOwner(fieldOwner)); err != nil {
			return fmt.Errorf("failed to write the CA into the webhook configuration %s: %w", c.name, err)
		}
		m.log.Info("Wrote the webhook CA into the caBundles", "configuration", c.name)
	}
	return nil
}

// caBundle returns the caBundle of a webhook whose caBundle is current, for the CA ca: ca,
// then each earlier CA of current that the manager made (named flagops-webhook-ca) and that
// has not expired at now, once. A CA stays trusted as long as a certificate it signed can
// be valid, and no longer.
func caBundle(current, ca []byte, now time.Time) ([]byte, error) {
	b, _ := pem.Decode(ca)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})
	seen := map[string]bool{string(b.Bytes): true}
	for rest := current; ; {
		b, rest = pem.Decode(rest)
		if b == nil {
			return bundle, nil
		}
		if b.Type != "CERTIFICATE" || seen[string(b.Bytes)] {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || !c.IsCA || c.Subject.CommonName != caName || now.After(c.NotAfter) {
			continue
		}
		seen[string(b.Bytes)] = true
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
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

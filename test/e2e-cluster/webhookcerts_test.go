//go:build e2e

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

package e2ecluster

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// servedWebhookCert dials the webhook Service from this host, as the API server does,
// trusting only the CA in the MutatingWebhookConfiguration, and returns the SHA-256
// fingerprint of the certificate presented.
func servedWebhookCert(g Gomega) string {
	var mwc admissionv1.MutatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: "flagops-mutating-webhook-configuration"}, &mwc)).To(Succeed())
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(mwc.Webhooks[0].ClientConfig.CABundle)).To(BeTrue(), "no CA in the caBundle")
	var svc corev1.Service
	g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: "flagops-webhook-service"}, &svc)).To(Succeed())
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(svc.Spec.ClusterIP, "443"),
		&tls.Config{RootCAs: pool, ServerName: "flagops-webhook-service.flagops-system.svc", MinVersion: tls.VersionTLS12})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	return fmt.Sprintf("%x", sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw))
}

// webhookCertSpec waits until the webhook Service presents a certificate other than first
// (the overlay has the manager renew it about once a minute), writing a flag through the
// webhooks every second meanwhile: every write must succeed.
func webhookCertSpec(first func() string) func() {
	return func() {
		ns := newNamespace("e2e-certs-")
		start, writes := time.Now(), 0
		Eventually(func(g Gomega) string {
			writes++
			if err := k8s.Create(ctx, boolFlag(ns, fmt.Sprintf("certs.flag-%d", writes))); err != nil {
				StopTrying(fmt.Sprintf("write %d through the webhooks failed while the certificate was renewed", writes)).Wrap(err).Now()
			}
			return servedWebhookCert(g)
		}).WithTimeout(8 * time.Minute).WithPolling(time.Second).ShouldNot(Equal(first()))
		AddReportEntry("webhook certificate renewed and served", fmt.Sprintf("%s after this spec began, %d writes through the webhooks meanwhile, all admitted",
			time.Since(start).Round(time.Second), writes))
	}
}

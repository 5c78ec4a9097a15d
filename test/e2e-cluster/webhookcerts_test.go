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

// servedCert identifies the webhook serving certificate presented and the CA that signed it.
type servedCert struct {
	// Cert is the SHA-256 fingerprint of the certificate.
	Cert string
	// CA is the certificate's authority key identifier: the CA's key.
	CA string
}

// servedWebhookCert dials the webhook Service from this host, as the API server does,
// trusting only the CAs in the MutatingWebhookConfiguration, and returns what it presents.
func servedWebhookCert(g Gomega) servedCert {
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
	leaf := conn.ConnectionState().PeerCertificates[0]
	g.Expect(leaf.AuthorityKeyId).NotTo(BeEmpty())
	return servedCert{Cert: fmt.Sprintf("%x", sha256.Sum256(leaf.Raw)), CA: fmt.Sprintf("%x", leaf.AuthorityKeyId)}
}

// webhookCertSpec waits until the webhook Service presents a certificate other than the one
// it presents when the spec begins, signed by another CA (the overlay has the manager renew
// both about once a minute), writing a flag through the webhooks every second meanwhile:
// every write must succeed, so the API server trusted every certificate served while the CA
// changed.
func webhookCertSpec() {
	ns := newNamespace("e2e-certs-")
	var first servedCert
	Eventually(func(g Gomega) { first = servedWebhookCert(g) }).Should(Succeed())
	start, writes := time.Now(), 0
	var certAt time.Duration
	Eventually(func(g Gomega) {
		writes++
		if err := k8s.Create(ctx, boolFlag(ns, fmt.Sprintf("certs.flag-%d", writes))); err != nil {
			StopTrying(fmt.Sprintf("write %d through the webhooks failed while the certificate was renewed", writes)).Wrap(err).Now()
		}
		served := servedWebhookCert(g)
		if certAt == 0 && served.Cert != first.Cert {
			certAt = time.Since(start)
		}
		g.Expect(served.Cert).NotTo(Equal(first.Cert))
		g.Expect(served.CA).NotTo(Equal(first.CA), "a certificate from a renewed CA")
	}).WithTimeout(8 * time.Minute).WithPolling(time.Second).Should(Succeed())
	AddReportEntry("webhook CA and certificate renewed and served", fmt.Sprintf(
		"new certificate %s and new CA %s after this spec began, %d writes through the webhooks meanwhile, all admitted",
		certAt.Round(time.Second), time.Since(start).Round(time.Second), writes))
}

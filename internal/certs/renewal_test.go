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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// servedCertificate dials the webhook server and returns the certificate it presents,
// unverified: the caller verifies it against the caBundles it read around the dial.
func servedCertificate(addr string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName:         DefaultService + "." + namespace + ".svc",
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified by trusts, against each caBundle
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// trusts verifies leaf as the API server does when it calls the webhook Service: for the
// Service's DNS name, now, against the certificates of caBundle.
func trusts(caBundle string, leaf *x509.Certificate) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caBundle)) {
		return errors.New("no certificate in the caBundle")
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:     pool,
		DNSName:   DefaultService + "." + namespace + ".svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

var _ = Describe("a renewal of the webhook CA", Ordered, func() {
	// A CA and a serving certificate both valid for 20 s, renewed when less than 14 s is
	// left, checked every 500 ms: the rotator renews the CA, and the certificate with it,
	// every 6 s or so.
	o := defaultOptions(20*time.Second, 20*time.Second, 14*time.Second, 500*time.Millisecond)
	o.Secret = "ca-renewal-cert"
	o.MutatingConfig = "ca-renewal-mutating"
	o.ValidatingConfig = "ca-renewal-validating"
	var addr string

	BeforeAll(func() {
		_, addr = startManager(o)
	})

	It("never leaves a caBundle that does not trust the certificate served", func() {
		firstCA := string(secretDataOf(Default, o)["ca.crt"])
		var (
			checks, failed int
			failingSince   time.Time
			windows        []time.Duration
			firstFailure   error
			issuers        = map[string]bool{}
			mostCAs        int
		)
		// Every 100 ms: read the caBundles, dial, read them again. The API server used one of
		// the two caBundles of each webhook at the moment of the dial (the manager changes
		// them at most once every 2 s), so the check fails only if neither trusts the
		// certificate served. Until the certificates of three CA renewals have been served.
		Eventually(func(g Gomega) {
			before := caBundlesOf(g, o)
			leaf, err := servedCertificate(addr)
			g.Expect(err).NotTo(HaveOccurred())
			after := caBundlesOf(g, o)
			checks++
			for _, b := range after {
				mostCAs = max(mostCAs, strings.Count(b, "-----BEGIN CERTIFICATE-----"))
			}
			var failure error
			for i := range before {
				if err := trusts(before[i], leaf); err != nil {
					if err2 := trusts(after[i], leaf); err2 != nil {
						failure = fmt.Errorf("webhook %d: %w", i, err2)
					}
				}
			}
			now := time.Now()
			switch {
			case failure != nil:
				failed++
				if firstFailure == nil {
					firstFailure = failure
				}
				if failingSince.IsZero() {
					failingSince = now
				}
			case !failingSince.IsZero():
				windows = append(windows, now.Sub(failingSince))
				failingSince = time.Time{}
			}
			issuers[string(leaf.AuthorityKeyId)] = true
			g.Expect(len(issuers)).To(BeNumerically(">=", 4), "CAs of the certificates served so far")
		}).WithTimeout(4 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
		if !failingSince.IsZero() {
			windows = append(windows, time.Since(failingSince))
		}
		var longest time.Duration
		for _, w := range windows {
			longest = max(longest, w)
		}
		AddReportEntry("CA renewals", fmt.Sprintf(
			"%d renewals served, %d checks, %d failed, in %d windows, the longest %s (from the first failed check to the next passing one); at most %d CAs in a caBundle",
			len(issuers)-1, checks, failed, len(windows), longest.Round(time.Millisecond), mostCAs))
		Expect(failed).To(BeZero(), "%d of %d checks failed, in %d windows %v; the first: %v", failed, checks, len(windows), windows, firstFailure)

		By("dropping the first CA from the caBundles once it has expired")
		Eventually(func(g Gomega) {
			for _, b := range caBundlesOf(g, o) {
				g.Expect(b).NotTo(ContainSubstring(firstCA))
			}
		}).Should(Succeed())
	})
})

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
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flagops/flagops/test/testenv"
)

func TestCerts(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(2 * time.Minute)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Webhook certificates suite")
}

const namespace = "flagops-system"

var (
	ctx     context.Context
	testEnv *envtest.Environment
	cfg     *rest.Config
	scheme  = runtime.NewScheme()
	k8s     client.Client
)

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)
	testEnv = testenv.New(filepath.Join("..", ".."))
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
})

// served dials the webhook server, trusting only ca, for the Service's DNS name, and
// returns the SHA-256 fingerprint of the certificate it presents (the rotator gives every
// serving certificate the same serial number).
func served(addr string, ca []byte) (string, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", errors.New("no CA certificate in ca.crt")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		RootCAs:    pool,
		ServerName: DefaultService + "." + namespace + ".svc",
		MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	return fmt.Sprintf("%x", sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)), nil
}

// webhookConfigurations are the two configurations of o that the manager fills in: one
// webhook each, for the Service, on a namespace label nothing has, so that the API server
// never calls them.
func webhookConfigurations(o Options) []client.Object {
	clientConfig := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
		Namespace: namespace, Name: DefaultService, Path: ptr.To("/probe"),
	}}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"certs-test": "never"}}
	none := ptr.To(admissionregistrationv1.SideEffectClassNone)
	return []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: o.MutatingConfig},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name: "probe.flagops.dev", ClientConfig: clientConfig, Rules: rules, NamespaceSelector: never,
				SideEffects: none, AdmissionReviewVersions: []string{"v1"},
			}},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: o.ValidatingConfig},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "probe.flagops.dev", ClientConfig: clientConfig, Rules: rules, NamespaceSelector: never,
				SideEffects: none, AdmissionReviewVersions: []string{"v1"},
			}},
		},
	}
}

// defaultOptions are the names of config/default, with the given validity periods.
func defaultOptions(caValidity, certValidity, renewBefore, checkInterval time.Duration) Options {
	return Options{
		Mode: ModeSelf, Secret: DefaultSecret, Service: DefaultService,
		MutatingConfig: DefaultMutatingConfig, ValidatingConfig: DefaultValidatingConfig,
		CAValidity: caValidity, CertValidity: certValidity, RenewBefore: renewBefore, CheckInterval: checkInterval,
	}
}

// caBundlesOf returns the caBundle of each webhook of the two configurations of o.
func caBundlesOf(g Gomega, o Options) []string {
	var m admissionregistrationv1.MutatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: o.MutatingConfig}, &m)).To(Succeed())
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: o.ValidatingConfig}, &v)).To(Succeed())
	return []string{string(m.Webhooks[0].ClientConfig.CABundle), string(v.Webhooks[0].ClientConfig.CABundle)}
}

// caBundles returns the caBundle of each webhook of the configurations of config/default.
func caBundles(g Gomega) []string {
	return caBundlesOf(g, Options{MutatingConfig: DefaultMutatingConfig, ValidatingConfig: DefaultValidatingConfig})
}

func secretDataOf(g Gomega, o Options) map[string][]byte {
	var s corev1.Secret
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: o.Secret}, &s)).To(Succeed())
	return s.Data
}

func secretData(g Gomega) map[string][]byte {
	return secretDataOf(g, Options{Secret: DefaultSecret})
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

// startManager creates o's empty Secret (config/default ships it empty, for the pod to
// mount) and webhook configurations, and starts a manager that provisions them, with one
// webhook, /probe, that allows everything. It returns the certificate directory and the
// webhook server's address once the manager reports the certificates ready; the manager
// stops, and is waited for, after the current container.
func startManager(o Options) (dir, addr string) {
	Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: o.Secret}})).To(Succeed())
	for _, obj := range webhookConfigurations(o) {
		Expect(k8s.Create(ctx, obj)).To(Succeed())
	}

	dir = GinkgoT().TempDir()
	host, port := freeAddr()
	addr = net.JoinHostPort(host, strconv.Itoa(port))
	ready := make(chan struct{})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          WaitFor(webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: dir}), ready),
	})
	Expect(err).NotTo(HaveOccurred())
	mgr.GetWebhookServer().Register("/probe", &admission.Webhook{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })})
	Expect(Setup(mgr, o, namespace, dir, ready)).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	// Stop the manager, and wait for it, before the certificate directory is removed (the
	// cleanups run last in, first out): its mirror may still be writing there.
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(time.Minute).Should(BeClosed(), "the manager did not stop")
	})
	Eventually(ready).Should(BeClosed())
	return dir, addr
}

var _ = Describe("the webhook certificates the manager provisions", Ordered, func() {
	var (
		dir  string
		addr string
	)

	BeforeAll(func() {
		// A serving certificate renewed every 5 s or so: valid for 20 s, renewed when less
		// than 15 s is left, checked every 500 ms.
		dir, addr = startManager(defaultOptions(time.Hour, 20*time.Second, 15*time.Second, 500*time.Millisecond))
	})

	It("fills the Secret with a CA and a certificate for the Service, and the CA into both configurations", func() {
		data := secretData(Default)
		Expect(data).To(HaveKey("ca.crt"))
		Expect(data).To(HaveKey("ca.key"))
		b, _ := pem.Decode(data["tls.crt"])
		Expect(b).NotTo(BeNil())
		c, err := x509.ParseCertificate(b.Bytes)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.DNSNames).To(ContainElements(
			"flagops-webhook-service.flagops-system.svc",
			"flagops-webhook-service.flagops-system.svc.cluster.local"))
		Eventually(caBundles).Should(HaveEach(string(data["ca.crt"])))
	})

	It("writes the Secret's certificate and key into the certificate directory", func() {
		data := secretData(Default)
		for _, f := range []string{"tls.crt", "tls.key"} {
			Eventually(func() ([]byte, error) { return os.ReadFile(filepath.Join(dir, f)) }).Should(Equal(data[f]), f)
		}
	})

	It("serves with the certificate, trusted by the CA in the configurations", func() {
		Eventually(func(g Gomega) {
			_, err := served(addr, []byte(caBundles(g)[0]))
			g.Expect(err).NotTo(HaveOccurred())
		}).Should(Succeed())
	})

	It("renews the certificate before it expires and serves the new one, under the same CA", func() {
		ca := secretData(Default)["ca.crt"]
		seen := map[string]bool{}
		// Two renewals served in turn, each trusted by the CA in the configurations.
		Eventually(func(g Gomega) {
			s, err := served(addr, []byte(caBundles(g)[0]))
			g.Expect(err).NotTo(HaveOccurred())
			seen[s] = true
			g.Expect(len(seen)).To(BeNumerically(">=", 3), "certificates served so far: %v", seen)
		}).Should(Succeed())
		Expect(secretData(Default)["ca.crt"]).To(Equal(ca), "the CA is not renewed with the certificate")
	})
})

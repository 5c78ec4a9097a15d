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

// Package e2ecluster tests flagops end to end in the local one-node cluster of
// hack/cluster/cluster.sh, installed the way users install it: the image from `make image`,
// config/default applied with kubectl (through the test-only overlay in overlay/, which
// replaces cert-manager with certificates the suite makes), the samples, a client pod,
// leader failover and uninstall. Run it with `make e2e` (docs/development.md); the build
// tag e2e keeps it out of `make test` and `go vet ./...`.
package e2ecluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

const (
	// image is what `make image` builds; the overlay deploys it with imagePullPolicy Never.
	image = "localhost/flagops:dev"
	// clientImage holds only the static client of ./client.
	clientImage = "localhost/flagops-e2e/client:1"
	system      = "flagops-system"
)

var (
	ctx      = context.Background()
	repoRoot string
	cluster  string // hack/cluster/cluster.sh

	cfg  *rest.Config
	kube kubernetes.Interface
	k8s  client.Client
)

func TestE2ECluster(t *testing.T) {
	RegisterFailHandler(Fail)
	// The machine is a busy 2-core VM: generous defaults for every Eventually.
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	RunSpecs(t, "End-to-end suite in the local cluster")
}

// run runs a command from the repository root and returns its standard output; it fails
// the spec with the command's output when the command fails.
func run(name string, args ...string) string {
	GinkgoHelper()
	out, err := tryRun(name, args...)
	Expect(err).NotTo(HaveOccurred(), "%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

func tryRun(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = GinkgoWriter
	err := cmd.Run()
	return out.String(), err
}

var _ = BeforeSuite(func() {
	var err error
	repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	cluster = filepath.Join(repoRoot, "hack", "cluster", "cluster.sh")

	// status exits non-zero when the cluster is down.
	if _, err := tryRun(cluster, "status"); err != nil {
		start := time.Now()
		run(cluster, "up")
		AddReportEntry("cluster up", time.Since(start).Round(time.Second).String())
	}
	// cluster.sh env prints export lines for KUBECONFIG and PATH (kubectl).
	for _, line := range strings.Split(run(cluster, "env"), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		Expect(os.Setenv(k, os.ExpandEnv(v))).To(Succeed())
	}

	_, err = tryRun("podman", "image", "exists", image)
	Expect(err).NotTo(HaveOccurred(), "no image %s: run make image first", image)
	buildClientImage()
	run(cluster, "import", image, clientImage)

	cfg, err = clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	Expect(err).NotTo(HaveOccurred())
	kube, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1.AddToScheme(scheme)).To(Succeed())
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// What a failed run left behind goes first.
	if err := k8s.Get(ctx, client.ObjectKey{Name: system}, &corev1.Namespace{}); err == nil {
		By("removing what an earlier run left")
		uninstall()
	}
})

var _ = AfterSuite(func() {
	if os.Getenv("E2E_DOWN") == "1" && cluster != "" {
		run(cluster, "down")
	}
})

// buildClientImage builds ./client as a static binary and an image FROM scratch holding
// only it, with podman and no network.
func buildClientImage() {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	cmd := exec.Command("go", "build", "-tags", "e2e", "-trimpath", "-o", filepath.Join(dir, "client"), "./test/e2e-cluster/client")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	Expect(os.WriteFile(filepath.Join(dir, "Containerfile.tmp"),
		[]byte("FROM scratch\nCOPY client /client\nUSER 65532:65532\nENTRYPOINT [\"/client\"]\n"), 0o644)).To(Succeed())
	Expect(os.Rename(filepath.Join(dir, "Containerfile.tmp"), filepath.Join(dir, "Containerfile"))).To(Succeed())
	run("podman", "build", "-q", "--network", "none", "-t", clientImage, dir)
}

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
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeFile writes a file through a temporary name and a rename.
func writeFile(path, content string) {
	GinkgoHelper()
	Expect(os.WriteFile(path+".tmp", []byte(content), 0o644)).To(Succeed())
	Expect(os.Rename(path+".tmp", path)).To(Succeed())
}

// sidecarFixture makes what a sidecar spec reads: a namespace with the flag <name>.own and
// the Secret flagops-sidecar-keys, another with the flag <name>.other, and the client's
// arguments: evaluate each flag once on 127.0.0.1:8080, with a token for its namespace.
func sidecarFixture(name string) (ns, other string, args []string) {
	GinkgoHelper()
	ns = newNamespace("e2e-" + name + "-")
	other = newNamespace("e2e-" + name + "-other-")
	Expect(k8s.Create(ctx, boolFlag(ns, name+".own"))).To(Succeed())
	Expect(k8s.Create(ctx, boolFlag(other, name+".other"))).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flagops-sidecar-keys"},
		Data: map[string][]byte{"jwks.json": jwks()}})).To(Succeed())
	const local = "http://127.0.0.1:8080"
	args = []string{
		local + "/ofrep/v1/evaluate/flags/" + name + ".own", token(ns, map[string]string{"userId": "u1"}), `{"context":{}}`,
		fmt.Sprintf("%s/namespaces/%s/ofrep/v1/evaluate/flags/%s.other", local, other, name), token(other, map[string]string{"userId": "u1"}), `{"context":{}}`,
	}
	return ns, other, args
}

// sidecarSpec deploys an application the way docs/sidecar.md says: its own kustomization,
// in a directory outside this repository, with the component config/sidecar and its
// Deployment annotated flagops.dev/sidecar: "true". The application container is the
// suite's client: it evaluates a flag of its namespace and one of another namespace on
// 127.0.0.1:8080 once, at its start, and exits on a connection error, so a first run that
// succeeds shows that the kubelet started it only after the sidecar was ready.
func sidecarSpec() {
	ns, _, args := sidecarFixture("sidecar")
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	app := GinkgoT().TempDir()
	component, err := filepath.Rel(app, filepath.Join(repoRoot, "config", "sidecar"))
	Expect(err).NotTo(HaveOccurred())
	writeFile(filepath.Join(app, "deployment.yaml"), `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-app
  annotations:
    flagops.dev/sidecar: "true"
spec:
  selector:
    matchLabels: {app: my-app}
  template:
    metadata:
      labels: {app: my-app}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: app
        image: `+clientImage+`
        imagePullPolicy: Never
        args: [`+strings.Join(quoted, ", ")+`]
        env:
        - {name: CLIENT_THEN_WAIT, value: "1"}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: ["ALL"]}
`)
	writeFile(filepath.Join(app, "kustomization.yaml"), `namespace: `+ns+`
resources:
- deployment.yaml
components:
- `+component+`
images:
- name: flagops
  newName: localhost/flagops
  newTag: dev
patches:
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: my-app
    spec:
      template:
        spec:
          initContainers:
          - name: flagops
            imagePullPolicy: Never
`)
	run("kubectl", "apply", "-k", app)

	var pod corev1.Pod
	Eventually(func(g Gomega) {
		var pods corev1.PodList
		g.Expect(k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "my-app"})).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(1))
		pod = pods.Items[0]
		g.Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
		g.Expect(pod.Status.ContainerStatuses[0].Ready).To(BeTrue(), "app container %+v", pod.Status.ContainerStatuses[0])
	}).Should(Succeed())
	Expect(pod.Spec.InitContainers).To(HaveLen(1))
	Expect(pod.Spec.InitContainers[0].Name).To(Equal("flagops"))
	Expect(pod.Status.ContainerStatuses[0].RestartCount).To(BeZero(), "the application started before the sidecar was ready")

	lines := clientLines(pod, 2)
	status, body, _ := strings.Cut(lines[0], " ")
	Expect(status).To(Equal("200"), "its own namespace's flag: %s", lines[0])
	Expect(body).To(ContainSubstring(`"key":"sidecar.own"`))
	status, _, _ = strings.Cut(lines[1], " ")
	Expect(status).NotTo(Equal("200"), "another namespace's flag through the sidecar: %s", lines[1])
	AddReportEntry("sidecar: another namespace's flag", lines[1])
}

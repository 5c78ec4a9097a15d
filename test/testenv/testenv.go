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

// Package testenv sets up the project's test control plane for envtest suites: a real
// kube-apiserver and etcd (built by hack/setup-envtest.sh), the generated CRDs and the
// admission policies from config/crd.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flagops/flagops/internal/atomicfile"
)

// New returns an envtest environment that installs the CRDs from config/crd/bases of the
// repository at root. It fails fast with a clear message when KUBEBUILDER_ASSETS is unset,
// since `go test` alone does not build the control plane: use `make test`.
func New(root string) *envtest.Environment {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		panic("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or export " +
			"KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh) first")
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
}

// ReadObjects decodes every YAML document in the given files into unstructured objects, in
// file order. Empty documents are skipped.
func ReadObjects(files ...string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", f, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for i := 0; ; i++ {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("failed to decode document %d of %s: %w", i, f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			objs = append(objs, u)
		}
	}
	return objs, nil
}

// YAMLFiles lists the *.yaml files of dir, sorted, leaving out kustomization.yaml.
func YAMLFiles(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", dir, err)
	}
	var files []string
	for _, m := range matches {
		if filepath.Base(m) != "kustomization.yaml" {
			files = append(files, m)
		}
	}
	sort.Strings(files)
	return files, nil
}

// InstallPolicies creates the admission policies from config/crd/policy.
func InstallPolicies(ctx context.Context, c client.Client, root string) error {
	files, err := YAMLFiles(filepath.Join(root, "config", "crd", "policy"))
	if err != nil {
		return err
	}
	objs, err := ReadObjects(files...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// WaitForPolicies blocks until the API server enforces the FeatureFlag value policy. Policies
// take effect asynchronously after creation, so a probe object that breaks the policy is
// created (and deleted again) until the API server rejects it.
func WaitForPolicies(ctx context.Context, c client.Client) {
	probe := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("flagops.dev/v1alpha1")
		u.SetKind("FeatureFlag")
		u.SetNamespace("default")
		u.SetName("flagops.policy-probe")
		u.Object["spec"] = map[string]any{"type": "Boolean", "value": "yes"}
		return u
	}
	gomega.Eventually(func(g gomega.Gomega) {
		err := c.Create(ctx, probe())
		if err == nil {
			_ = c.Delete(ctx, probe())
		}
		g.Expect(err).To(gomega.HaveOccurred(), "the admission policy is not enforced yet")
		g.Expect(strings.Contains(err.Error(), "ValidatingAdmissionPolicy")).To(gomega.BeTrue(), err.Error())
	}).Should(gomega.Succeed())
}

// WriteStampKey writes a new random audit stamp key to path, atomically.
func WriteStampKey(path string) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("failed to make an audit stamp key: %w", err)
	}
	if err := atomicfile.Write(path, []byte(hex.EncodeToString(key[:])+"\n"), 0o600); err != nil {
		return fmt.Errorf("failed to write the audit stamp key: %w", err)
	}
	return nil
}

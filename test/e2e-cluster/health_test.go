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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/argocdhealth"
)

// health is how Flux (kstatus) and Argo CD (the Lua check of config/argocd) read obj.
func health(g Gomega, obj *unstructured.Unstructured) (kstatus.Status, argocdhealth.Status) {
	res, err := kstatus.Compute(obj)
	g.Expect(err).NotTo(HaveOccurred())
	script, err := argocdhealth.ReadScript(repoRoot, obj.GetKind())
	g.Expect(err).NotTo(HaveOccurred())
	argo, err := argocdhealth.Check(script, obj.Object)
	g.Expect(err).NotTo(HaveOccurred())
	return res.Status, argo.Status
}

// healthSpec applies config/samples in a namespace and waits until kstatus and the Argo CD
// checks read every object Current and Healthy, as a Flux Kustomization with wait: true or
// an Argo CD sync would. The Failed and Degraded cases are in controllers/health_test.go
// (envtest).
func healthSpec() {
	ns := newNamespace("e2e-health-")
	run("kubectl", "apply", "--server-side", "--field-manager=e2e", "-n", ns, "-k", "config/samples")
	kinds := []string{"FeatureFlag", "UserFlagOverride", "DeviceFlagOverride"}
	Eventually(func(g Gomega) {
		seen := 0
		for _, kind := range kinds {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(v1.GroupVersion.WithKind(kind + "List"))
			g.Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			for i := range list.Items {
				k, a := health(g, &list.Items[i])
				g.Expect(k).To(Equal(kstatus.CurrentStatus), "%s %s", kind, list.Items[i].GetName())
				g.Expect(a).To(Equal(argocdhealth.Healthy), "%s %s", kind, list.Items[i].GetName())
				seen++
			}
		}
		g.Expect(seen).To(BeNumerically(">=", 7), "the samples' objects")
	}).Should(Succeed())

	AddReportEntry("health", fmt.Sprintf("config/samples Current and Healthy in %s", ns))
}

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
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deployments are the two Deployments of config/default, by their component label.
var deployments = map[string]string{"manager": managerName, "evaluator": "flagops-evaluator"}

// defaultsSpec checks the operational defaults of config/default: kube-score finds nothing
// that is neither fixed nor ignored with a reason, and each Deployment's
// PodDisruptionBudget selects its two ready pods and allows one disruption.
func defaultsSpec() {
	run("make", "kube-score")
	for _, name := range deployments {
		Eventually(func(g Gomega) {
			var pdb policyv1.PodDisruptionBudget
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: name}, &pdb)).To(Succeed())
			g.Expect(pdb.Status.ExpectedPods).To(BeEquivalentTo(2), "PodDisruptionBudget %s", name)
			g.Expect(pdb.Status.CurrentHealthy).To(BeEquivalentTo(2), "PodDisruptionBudget %s", name)
			g.Expect(pdb.Status.DisruptionsAllowed).To(BeEquivalentTo(1), "PodDisruptionBudget %s", name)
		}).Should(Succeed())
	}
}

// summary is the part of the kubelet's stats summary (/stats/summary) read here.
type summary struct {
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"podRef"`
		StartTime  time.Time `json:"startTime"`
		Containers []struct {
			Name string `json:"name"`
			CPU  struct {
				UsageCoreNanoSeconds uint64 `json:"usageCoreNanoSeconds"`
			} `json:"cpu"`
			Memory struct {
				WorkingSetBytes uint64 `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"containers"`
	} `json:"pods"`
}

// usageSpec reports what each flagops pod has used by the end of the suite, from the
// kubelet's stats summary: its memory working set and its CPU time, on average since the pod
// started. It checks that each working set is under the container's memory limit.
func usageSpec() {
	var nodes corev1.NodeList
	Expect(k8s.List(ctx, &nodes)).To(Succeed())
	Expect(nodes.Items).To(HaveLen(1))
	var s summary
	Eventually(func(g Gomega) {
		raw, err := kube.CoreV1().RESTClient().Get().
			AbsPath("/api/v1/nodes", nodes.Items[0].Name, "proxy", "stats", "summary").DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(json.Unmarshal(raw, &s)).To(Succeed())
	}).Should(Succeed())

	seen := map[string]int{}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != system {
			continue
		}
		var pod corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: system, Name: p.PodRef.Name}, &pod); err != nil {
			continue // gone since the summary was taken
		}
		component := pod.Labels["app.kubernetes.io/component"]
		limits := map[string]int64{}
		for _, c := range pod.Spec.Containers {
			limits[c.Name] = c.Resources.Limits.Memory().Value()
		}
		for _, c := range p.Containers {
			up := time.Since(p.StartTime).Seconds()
			AddReportEntry(fmt.Sprintf("usage %s %s", component, p.PodRef.Name),
				fmt.Sprintf("memory working set %.1f MiB; CPU %.1f s in %.0f s up (%.0f millicores on average)",
					float64(c.Memory.WorkingSetBytes)/(1<<20), float64(c.CPU.UsageCoreNanoSeconds)/1e9, up,
					float64(c.CPU.UsageCoreNanoSeconds)/1e6/up))
			Expect(limits).To(HaveKey(c.Name))
			Expect(c.Memory.WorkingSetBytes).To(BeNumerically("<", limits[c.Name]), "%s/%s", p.PodRef.Name, c.Name)
			seen[component]++
		}
	}
	Expect(seen).To(HaveKeyWithValue("manager", 2))
	Expect(seen).To(HaveKeyWithValue("evaluator", 2))
}

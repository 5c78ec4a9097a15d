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

package webhook

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

var _ = Describe("The samples", func() {
	It("are all admitted, flags first, and stamped with their creator", func() {
		ns := newNamespace()
		files, err := testenv.YAMLFiles(filepath.Join(repoRoot, "config", "samples"))
		Expect(err).NotTo(HaveOccurred())
		objs, err := testenv.ReadObjects(files...)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(objs)).To(BeNumerically(">=", 6))

		rank := map[string]int{"FeatureFlag": 0, "UserFlagOverride": 1, "DeviceFlagOverride": 2}
		var ordered []*unstructured.Unstructured
		for r := 0; r < 3; r++ {
			for _, o := range objs {
				k, ok := rank[o.GetKind()]
				Expect(ok).To(BeTrue(), "unexpected kind %s in the samples", o.GetKind())
				if k == r {
					ordered = append(ordered, o)
				}
			}
		}
		Expect(ordered).To(HaveLen(len(objs)))
		for _, o := range ordered {
			o.SetNamespace(ns)
			Expect(alice.Create(ctx, o)).To(Succeed(), "sample %s %s", o.GetKind(), o.GetName())
			Expect(o.GetAnnotations()).To(HaveKeyWithValue(v1.AnnotationChangedBy, "alice"))
		}
	})
})

var _ = Describe("The match conditions of config/default", func() {
	// A fail-closed webhook that the API server cannot reach, limited to labelled objects,
	// with the match conditions that config/default gives the validating webhooks.
	const label = "flagops.dev/test-unreachable-webhook"

	BeforeEach(func() {
		conditions := matchConditionsPatch()["vfeatureflag.flagops.dev"]
		Expect(conditions).NotTo(BeEmpty())
		wio := testEnv.WebhookInstallOptions
		unreachable := &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "flagops-test-unreachable"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "unreachable.flagops.dev",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{
					// Nothing listens on the webhook host at port 1.
					URL:      ptr.To("https://" + wio.LocalServingHost + ":1/unreachable"),
					CABundle: wio.LocalServingCAData,
				},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{"flagops.dev"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"featureflags"},
					},
				}},
				ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{label: "true"}},
				FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
				SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
				AdmissionReviewVersions: []string{"v1"},
				TimeoutSeconds:          ptr.To[int32](2),
				MatchConditions:         conditions,
			}},
		}
		Expect(k8sClient.Create(ctx, unreachable)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, unreachable))).To(Succeed()) })
	})

	It("let metadata-only updates through while a fail-closed webhook is unreachable", func() {
		ns := newNamespace()
		flag := boolFlag(ns, "beta.unreachable")
		Expect(alice.Create(ctx, flag)).To(Succeed())

		// The configuration takes effect asynchronously: wait until a spec change fails.
		Eventually(func(g Gomega) {
			fresh := &v1.FeatureFlag{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(flag), fresh)).To(Succeed())
			base := fresh.DeepCopy()
			fresh.Labels = map[string]string{label: "true"}
			fresh.Spec.Description = "changed"
			err := bob.Patch(ctx, fresh, client.MergeFrom(base), client.DryRunAll)
			g.Expect(err).To(MatchError(ContainSubstring(`failed calling webhook "unreachable.flagops.dev"`)))
		}).Should(Succeed())

		// Labelling the flag and changing other metadata does not call it.
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(flag), flag)).To(Succeed())
		base := flag.DeepCopy()
		flag.Labels = map[string]string{label: "true"}
		Expect(bob.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())
		base = flag.DeepCopy()
		flag.Annotations["note"] = "metadata only"
		Expect(bob.Patch(ctx, flag, client.MergeFrom(base))).To(Succeed())

		// A spec change does.
		base = flag.DeepCopy()
		flag.Spec.Enabled = false
		Expect(bob.Patch(ctx, flag, client.MergeFrom(base))).To(MatchError(ContainSubstring(`failed calling webhook "unreachable.flagops.dev"`)))
	})
})

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
	"context"
	"net/url"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// observePath serves a mutating webhook that only records what it is sent.
const observePath = "/test-observe-admission"

// admissionView is what a mutating webhook saw of one request.
type admissionView struct {
	op                 admissionv1.Operation
	name, user         string
	uid, oldUID        string
	generation, oldGen int64
}

// observer records every request and allows it unchanged.
type observer struct {
	mu   sync.Mutex
	seen []admissionView
}

var observed = &observer{}

func (o *observer) Handle(_ context.Context, req admission.Request) admission.Response {
	view := admissionView{op: req.Operation, name: req.Name, user: req.UserInfo.Username}
	if len(req.Object.Raw) > 0 {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(req.Object.Raw); err == nil {
			view.uid, view.generation = string(u.GetUID()), u.GetGeneration()
		}
	}
	if len(req.OldObject.Raw) > 0 {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(req.OldObject.Raw); err == nil {
			view.oldUID, view.oldGen = string(u.GetUID()), u.GetGeneration()
		}
	}
	o.mu.Lock()
	o.seen = append(o.seen, view)
	o.mu.Unlock()
	return admission.Allowed("observed")
}

func (o *observer) of(name string, op admissionv1.Operation) []admissionView {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []admissionView
	for _, v := range o.seen {
		if v.name == name && v.op == op {
			out = append(out, v)
		}
	}
	return out
}

var _ = Describe("What a mutating webhook sees", func() {
	It("has no UID and no generation at create, and the replaced object's at update", func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "wh-observe-", Labels: map[string]string{"flagops.dev/test-observe": "true"}}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(context.Background(), ns))).To(Succeed()) })

		// A copy of the changed-by webhook, sent to the observer, for this namespace only.
		installed := &admissionregistrationv1.MutatingWebhookConfiguration{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "flagops-mutating-webhook-configuration"}, installed)).To(Succeed())
		wh := *installed.Webhooks[0].DeepCopy()
		Expect(wh.ClientConfig.URL).NotTo(BeNil())
		u, err := url.Parse(*wh.ClientConfig.URL)
		Expect(err).NotTo(HaveOccurred())
		u.Path = observePath
		wh.ClientConfig.URL = ptrTo(u.String())
		wh.Name = "observe.flagops.dev"
		wh.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"flagops.dev/test-observe": "true"}}
		cfgObj := &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "flagops-test-observe"},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{wh},
		}
		Expect(k8sClient.Create(ctx, cfgObj)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(context.Background(), cfgObj))).To(Succeed()) })
		Eventually(func(g Gomega) {
			g.Expect(alice.Create(ctx, boolFlag(ns.Name, "observe.probe"), client.DryRunAll)).To(Succeed())
			g.Expect(observed.of("observe.probe", admissionv1.Create)).NotTo(BeEmpty())
		}).Should(Succeed())

		f := boolFlag(ns.Name, "beta.seen")
		Expect(alice.Create(ctx, f)).To(Succeed())
		created := observed.of("beta.seen", admissionv1.Create)
		Expect(created).NotTo(BeEmpty())
		Expect(created[0].uid).To(BeEmpty(), "the API server assigns the UID after admission")
		Expect(created[0].generation).To(BeZero(), "the API server assigns the generation after admission")

		base := f.DeepCopy()
		f.Spec.Description = "changed"
		Expect(bob.Patch(ctx, f, client.MergeFrom(base))).To(Succeed())
		Expect(f.Generation).To(BeEquivalentTo(2))
		// bob's request only: the controllers' finalizer patch is an update too. When that
		// patch lands first, the API server retries bob's patch on the new object and calls
		// the webhooks again, so bob's request may be seen more than once; each time with
		// the object being replaced.
		var byBob []admissionView
		for _, v := range observed.of("beta.seen", admissionv1.Update) {
			if v.user == "bob" {
				byBob = append(byBob, v)
			}
		}
		Expect(byBob).NotTo(BeEmpty())
		for _, v := range byBob {
			Expect(v.oldUID).To(Equal(string(f.UID)))
			Expect(v.oldGen).To(BeEquivalentTo(1), "the replaced object's generation; the write makes it 2")
		}
		Expect(f.Annotations).To(HaveKeyWithValue(v1.AnnotationChangedBy, "bob"))
	})
})

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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
)

// consoleClient returns a client that writes as the console does: the envtest
// administrator impersonating user (a member of system:masters) with the extras that carry
// the console's request.
func consoleClient(user string, extra map[string][]string) client.Client {
	GinkgoHelper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}, Extra: extra}
	cl, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl
}

// viaConsole returns a console client for erin's request with the given route.
func viaConsole(route string) (client.Client, *audit.Request) {
	GinkgoHelper()
	req := &audit.Request{Route: route, SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}
	return consoleClient("erin", map[string][]string{
		audit.ExtraRoute: {req.Route}, audit.ExtraSourceIP: {req.SourceIP}, audit.ExtraUserAgent: {req.UserAgent},
	}), req
}

// waitForRecords waits until the audit trail holds n records of obj, and returns them in
// the order written.
func waitForRecords(obj client.Object, n int) []audit.Record {
	GinkgoHelper()
	var recs []audit.Record
	Eventually(func() []audit.Record { recs = recordsOf(auditLog, string(obj.GetUID())); return recs }).Should(HaveLen(n))
	return recs
}

// noteRequest waits for the Event of rec and returns the request its note names.
func noteRequest(rec audit.Record) *auditevent.Request {
	GinkgoHelper()
	var req *auditevent.Request
	Eventually(func(g Gomega) {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(rec.Object.Namespace))).To(Succeed())
		found := false
		for _, e := range list.Items {
			if n, err := auditevent.Parse(e.Note); err == nil && n.RecordID == rec.ID {
				req, found = n.Request, true
			}
		}
		g.Expect(found).To(BeTrue(), "no Event of record %s", rec.ID)
	}).Should(Succeed())
	return req
}

// finalized waits until the controllers hold obj with their audit finalizer, and reads it.
func finalized(obj client.Object) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		g.Expect(obj.GetFinalizers()).To(ContainElement(v1.FinalizerAudit))
	}).Should(Succeed())
}

var _ = Describe("The console's request in the audit trail", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta.target"))).To(Succeed())
	})

	erin := audit.Actor{Username: "erin", Verified: true}

	DescribeTable("is recorded, with the impersonated user as the actor, at create, update and delete",
		func(build func(ns string) client.Object, change func(client.Object)) {
			obj := build(ns)
			create, createReq := viaConsole("POST /namespaces/{ns}/objects")
			Expect(create.Create(ctx, obj)).To(Succeed())
			Expect(obj.GetAnnotations()).To(HaveKey(v1.AnnotationChangedByRequest))
			finalized(obj)

			update, updateReq := viaConsole("PUT /namespaces/{ns}/objects/{name}")
			base := obj.DeepCopyObject().(client.Object)
			change(obj)
			Expect(update.Patch(ctx, obj, client.MergeFrom(base))).To(Succeed())

			remove, removeReq := viaConsole("DELETE /namespaces/{ns}/objects/{name}")
			Expect(remove.Delete(ctx, obj)).To(Succeed())

			recs := waitForRecords(obj, 3)
			for i, want := range []*audit.Request{createReq, updateReq, removeReq} {
				Expect(recs[i].Actor).To(Equal(erin), "record %d (%s)", i, recs[i].Action)
				Expect(recs[i].Request).To(Equal(want), "record %d (%s)", i, recs[i].Action)
				// The Event that kubectl flagops history reads names it too.
				Expect(noteRequest(recs[i])).To(Equal(&auditevent.Request{Route: want.Route, SourceIP: want.SourceIP, UserAgent: want.UserAgent}))
			}
			Expect(string(recs[2].Action)).To(HaveSuffix(".deleted"))
		},
		Entry("FeatureFlag", func(ns string) client.Object { return boolFlag(ns, "beta.console") },
			func(o client.Object) { o.(*v1.FeatureFlag).Spec.Description = "changed in the console" }),
		Entry("UserFlagOverride", func(ns string) client.Object { return userOverride(ns, "pilot", "user-1", on("beta.target")) },
			func(o client.Object) { o.(*v1.UserFlagOverride).Spec.Reason = "changed in the console" }),
		Entry("DeviceFlagOverride", func(ns string) client.Object { return deviceOverride(ns, "tablet", "device-1", on("beta.target")) },
			func(o client.Object) { o.(*v1.DeviceFlagOverride).Spec.Reason = "changed in the console" }),
	)

	It("is absent for a write without the extras, which also removes the console's earlier request", func() {
		f := boolFlag(ns, "beta.mixed")
		Expect(alice.Create(ctx, f)).To(Succeed())
		Expect(f.Annotations).NotTo(HaveKey(v1.AnnotationChangedByRequest))

		console, req := viaConsole("PUT /flags/{name}")
		setDescription := func(c client.Client, text string) {
			GinkgoHelper()
			base := f.DeepCopy()
			f.Spec.Description = text
			Expect(c.Patch(ctx, f, client.MergeFrom(base))).To(Succeed())
		}
		setDescription(console, "via the console")
		setDescription(bob, "via kubectl")
		Expect(f.Annotations).NotTo(HaveKey(v1.AnnotationChangedByRequest))

		recs := waitForRecords(f, 3)
		Expect(recs[0].Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}))
		Expect(recs[0].Request).To(BeNil())
		Expect(recs[1].Actor).To(Equal(erin))
		Expect(recs[1].Request).To(Equal(req))
		Expect(recs[2].Actor).To(Equal(audit.Actor{Username: "bob", Verified: true}))
		Expect(recs[2].Request).To(BeNil())
	})

	It("is never taken from annotations a client writes itself", func() {
		forged := `{"route":"POST /forged","sourceIP":"198.51.100.1","userAgent":"forger"}`
		o := userOverride(ns, "pilot", "user-1", on("beta.target"))
		o.Annotations = map[string]string{
			v1.AnnotationChangedByRequest: forged,
			v1.AnnotationChangedByStamp:   "v2.forged",
			v1.AnnotationDeletedByRequest: forged,
		}
		Expect(alice.Create(ctx, o)).To(Succeed())
		Expect(o.Annotations).NotTo(HaveKey(v1.AnnotationChangedByRequest), "the webhook removes it at create")
		finalized(o)

		// A metadata-only update cannot add one either: the webhook undoes it.
		base := o.DeepCopy()
		o.Annotations[v1.AnnotationChangedByRequest] = forged
		Expect(carol.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
		Expect(o.Annotations).NotTo(HaveKey(v1.AnnotationChangedByRequest))
		Expect(o.Annotations).To(HaveKeyWithValue(v1.AnnotationDeletedByRequest, forged), "only the deleted-by webhook owns it")

		// The deletion replaces deleted-by-request with none.
		Expect(dave.Delete(ctx, o)).To(Succeed())
		recs := waitForRecords(o, 2)
		Expect(recs[0].Actor).To(Equal(audit.Actor{Username: "alice", Verified: true}))
		Expect(recs[0].Request).To(BeNil())
		Expect(recs[1].Action).To(Equal(audit.ActionUserOverrideDeleted))
		Expect(recs[1].Actor).To(Equal(audit.Actor{Username: "dave", Verified: true}))
		Expect(recs[1].Request).To(BeNil())
	})

	It("drops bad values without failing the write", func() {
		console := consoleClient("erin", map[string][]string{
			audit.ExtraRoute:     {"PUT /a", "PUT /b"},
			audit.ExtraSourceIP:  {"proxy.example.com"},
			audit.ExtraUserAgent: {"flagops-console/0.1"},
		})
		f := boolFlag(ns, "beta.bad-extras")
		Expect(console.Create(ctx, f)).To(Succeed())
		recs := waitForRecords(f, 1)
		Expect(recs[0].Actor).To(Equal(erin))
		Expect(recs[0].Request).To(Equal(&audit.Request{UserAgent: "flagops-console/0.1"}))
	})
})

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

package controllers

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
)

// changeEvent is an audited change's Event and its parsed note.
type changeEvent struct {
	eventsv1.Event
	note auditevent.Note
}

// changeEventsOf lists the audited changes' Events about the object named name in ns.
func changeEventsOf(g Gomega, ns, name string) []changeEvent {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []changeEvent
	for _, e := range list.Items {
		if e.Regarding.Name != name || !auditevent.IsChangeReason(e.Reason) {
			continue
		}
		n, err := auditevent.Parse(e.Note)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(e.Note)).To(BeNumerically("<=", auditevent.NoteLimit))
		out = append(out, changeEvent{Event: e, note: n})
	}
	return out
}

// reasonsOf returns the reasons of events, oldest first.
func reasonsOf(evs []changeEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}

// theOnly waits until exactly one Event with reason is about name, checks that no other
// comes, and returns it.
func theOnly(ns, name, reason string) changeEvent {
	GinkgoHelper()
	var got []changeEvent
	withReason := func(g Gomega) []changeEvent {
		var out []changeEvent
		for _, e := range changeEventsOf(g, ns, name) {
			if e.Reason == reason {
				out = append(out, e)
			}
		}
		return out
	}
	Eventually(func(g Gomega) { got = withReason(g); g.Expect(got).To(HaveLen(1)) }).Should(Succeed())
	Consistently(func(g Gomega) { g.Expect(withReason(g)).To(HaveLen(1)) }).Should(Succeed())
	return got[0]
}

var _ = Describe("The Event of each audited change", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("is recorded once for a flag's create, spec update and delete, with the actor, keys, before and after, and not for a re-apply", func() {
		f := boolFlag(ns, "beta.events", false)
		signedCreate(KindFeatureFlag, f, "alice")
		Expect(k8sClient.Create(ctx, f)).To(Succeed())

		created := theOnly(ns, f.Name, v1.EventReasonFlagCreated)
		Expect(created.Type).To(Equal(corev1.EventTypeNormal))
		Expect(created.Action).To(Equal(string(audit.ActionFlagCreated)))
		Expect(created.ReportingController).To(Equal(EventSource))
		Expect(created.Regarding.UID).To(Equal(f.UID))
		Expect(created.note.SubjectKind).To(Equal(auditevent.SubjectFlag))
		Expect(created.note.Subject).To(Equal("beta.events"))
		Expect(created.note.Generation).To(BeEquivalentTo(1))
		Expect(created.note.Actor).To(Equal(auditevent.Actor{Username: "alice", Verified: true}))
		Expect(created.note.Keys).To(ContainElements("enabled", "type"))
		Expect(created.note.Before).To(HaveKeyWithValue("enabled", MatchJSON(`null`)))
		Expect(created.note.After).To(HaveKeyWithValue("enabled", MatchJSON(`false`)))
		Expect(created.note.After).To(HaveKeyWithValue("type", MatchJSON(`"Boolean"`)))
		Expect(created.note.RecordID).To(Equal(recordOf(auditSink, ns, audit.ActionFlagCreated).ID))
		By("the note is " + created.Note)
		settled(f)

		By("re-applying the same spec, and changing only a label")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f), f)).To(Succeed())
		gen := f.Generation
		Expect(k8sClient.Update(ctx, f)).To(Succeed())
		patchSpec(f, func(f *v1.FeatureFlag) { f.Labels = map[string]string{"team": "web"} })
		Expect(f.Generation).To(Equal(gen))
		Consistently(func(g Gomega) []string { return reasonsOf(changeEventsOf(g, ns, f.Name)) }).
			Should(Equal([]string{v1.EventReasonFlagCreated}))

		By("updating the spec")
		setEnabled(f, true, "tool-a")
		updated := theOnly(ns, f.Name, v1.EventReasonFlagUpdated)
		Expect(updated.Action).To(Equal(string(audit.ActionFlagUpdated)))
		Expect(updated.note.Generation).To(BeEquivalentTo(2))
		// The stamp was for the first spec: the field manager is a hint, the annotation a claim.
		Expect(updated.note.Actor).To(Equal(auditevent.Actor{Username: "tool-a", Claimed: "alice"}))
		Expect(updated.note.Keys).To(Equal([]string{"enabled"}))
		Expect(updated.note.Before).To(HaveKeyWithValue("enabled", MatchJSON(`false`)))
		Expect(updated.note.After).To(HaveKeyWithValue("enabled", MatchJSON(`true`)))
		By("the note is " + updated.Note)
		Expect(updated.Note).To(MatchRegexp(`^flag beta\.events gen 2 by tool-a \(unverified, claimed alice\): \{"enabled":false\} -> \{"enabled":true\} \[record [0-9a-f]{32}\]$`))
		settled(f)

		By("deleting it")
		Expect(k8sClient.Delete(ctx, f)).To(Succeed())
		deleted := theOnly(ns, f.Name, v1.EventReasonFlagDeleted)
		Expect(deleted.Action).To(Equal(string(audit.ActionFlagDeleted)))
		Expect(deleted.Regarding.UID).To(Equal(f.UID))
		Expect(deleted.note.Actor.Verified).To(BeFalse())
		Expect(deleted.note.Keys).To(ContainElements("enabled", "type"))
		Expect(deleted.note.Before).To(HaveKeyWithValue("enabled", MatchJSON(`true`)))
		Expect(deleted.note.After).To(HaveKeyWithValue("enabled", MatchJSON(`null`)))
		By("the note is " + deleted.Note)
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(f), &v1.FeatureFlag{}) }).Should(Satisfy(func(err error) bool {
			return client.IgnoreNotFound(err) == nil && err != nil
		}))
		Expect(reasonsOf(changeEventsOf(Default, ns, f.Name))).To(ConsistOf(v1.EventReasonFlagCreated, v1.EventReasonFlagUpdated, v1.EventReasonFlagDeleted))
	})

	It("is recorded once for a change of an override's entries, with the entry before and after", func() {
		Expect(k8sClient.Create(ctx, boolFlag(ns, "beta", false))).To(Succeed())
		u := userOverride(ns, "user-dave", "dave", entry("beta", true))
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		created := theOnly(ns, u.Name, v1.EventReasonOverrideCreated)
		Expect(created.Action).To(Equal(string(audit.ActionUserOverrideCreated)))
		Expect(created.note.SubjectKind).To(Equal(auditevent.SubjectUser))
		Expect(created.note.Subject).To(Equal("dave"))
		Expect(created.note.Actor).To(Equal(auditevent.Actor{Username: testActor}))
		Expect(created.note.After).To(HaveKeyWithValue("beta", MatchJSON(`{"enabled":true}`)))
		settled(u)

		patchSpec(u, func(u *v1.UserFlagOverride) {
			u.Spec.Flags = []v1.FlagOverrideEntry{entry("beta", false), {Key: "theme", Value: js("dusk")}}
		})
		updated := theOnly(ns, u.Name, v1.EventReasonOverrideUpdated)
		Expect(updated.note.Keys).To(Equal([]string{"beta", "theme"}))
		Expect(updated.note.Before).To(And(HaveKeyWithValue("beta", MatchJSON(`{"enabled":true}`)), HaveKeyWithValue("theme", MatchJSON(`null`))))
		Expect(updated.note.After).To(And(HaveKeyWithValue("beta", MatchJSON(`{"enabled":false}`)), HaveKeyWithValue("theme", MatchJSON(`{"value":"dusk"}`))))
		By("the note is " + updated.Note)
		settled(u)

		Expect(k8sClient.Delete(ctx, u)).To(Succeed())
		deleted := theOnly(ns, u.Name, v1.EventReasonOverrideDeleted)
		Expect(deleted.note.Subject).To(Equal("dave"))
		Expect(deleted.note.Before).To(HaveKeyWithValue("beta", MatchJSON(`{"enabled":false}`)))

		d := deviceOverride(ns, "device-tab", "tab-1", entry("beta", true))
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		dev := theOnly(ns, d.Name, v1.EventReasonOverrideCreated)
		Expect(dev.Action).To(Equal(string(audit.ActionDeviceOverrideCreated)))
		Expect(dev.note.SubjectKind).To(Equal(auditevent.SubjectDevice))
		Expect(dev.note.Subject).To(Equal("tab-1"))
	})

	It("shortens the note of a large change to the API server's limit and names the full record", func() {
		f := stringFlag(ns, "banner", "", strings.Repeat("a", 3000))
		Expect(k8sClient.Create(ctx, f)).To(Succeed())
		theOnly(ns, f.Name, v1.EventReasonFlagCreated)
		settled(f)
		patchSpec(f, func(f *v1.FeatureFlag) { f.Spec.Value = js(strings.Repeat("b", 3000)) })
		updated := theOnly(ns, f.Name, v1.EventReasonFlagUpdated)
		Expect(len(updated.Note)).To(BeNumerically("<=", auditevent.NoteLimit))
		Expect(updated.note.Truncated).To(BeTrue())
		Expect(updated.note.Keys).To(Equal([]string{"value"}))
		Expect(updated.note.Before).To(HaveKeyWithValue("value", MatchJSON(`"<3002 bytes>"`)))
		Expect(updated.note.After).To(HaveKeyWithValue("value", MatchJSON(`"<3002 bytes>"`)))
		rec := recordOf(auditSink, ns, audit.ActionFlagUpdated)
		Expect(updated.note.RecordID).To(Equal(rec.ID))
		Expect(updated.Note).To(HaveSuffix("[truncated; full record " + rec.ID + " in the audit sink]"))
		By("the note is " + updated.Note)
	})

	It("is recorded once for a record a stopped leader left pending, and not again if that leader recorded it, nor on a restart", func() {
		iso := "events-replay"
		// What a leader stores just before it sends the created record.
		pending := func(f *v1.FeatureFlag) audit.Record {
			GinkgoHelper()
			Expect(k8sClient.Create(ctx, f)).To(Succeed())
			rec := audit.NewRecord(time.Now(), audit.Change{Action: audit.ActionFlagCreated, Actor: audit.Actor{Username: "alice", Verified: true},
				Object: objectRef(KindFeatureFlag, f), After: flagValues(f)})
			ck := &checkpoint{namespace: ns, generation: 1, values: packedValues(flagValues(f)),
				pending: []audit.Record{rec}, auditedAt: time.Now()}
			obj, err := ck.encode(KindFeatureFlag, f)
			Expect(err).NotTo(HaveOccurred())
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			return rec
		}
		unsent := isolate(boolFlag(ns, "beta.unsent", true), iso)
		unsentRec := pending(unsent)
		// The stopped leader had recorded this one's Event.
		sent := isolate(boolFlag(ns, "beta.sent", true), iso)
		sentRec := pending(sent)
		Expect(k8sClient.Create(ctx, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "beta.sent.earlier"},
			Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: string(KindFeatureFlag), Namespace: ns, Name: sent.Name,
				UID: sent.UID, ResourceVersion: sent.ResourceVersion},
			EventTime: metav1.NewMicroTime(time.Now()), Type: corev1.EventTypeNormal, Reason: v1.EventReasonFlagCreated,
			Action: string(audit.ActionFlagCreated), Note: auditevent.Format(eventNote(sentRec)),
			ReportingController: EventSource, ReportingInstance: "flagops-manager-old",
		})).To(Succeed())

		sink := audit.NewMemory()
		m := startManager(ctx, managerConfig{isolation: iso, sink: sink})
		settled(unsent)
		settled(sent)
		Eventually(func() []audit.Record { return recordsIn(sink, ns) }).Should(HaveLen(2))
		got := theOnly(ns, unsent.Name, v1.EventReasonFlagCreated)
		Expect(got.note.RecordID).To(Equal(unsentRec.ID))
		Expect(got.note.Actor).To(Equal(auditevent.Actor{Username: "alice", Verified: true}))
		again := theOnly(ns, sent.Name, v1.EventReasonFlagCreated)
		Expect(again.Name).To(Equal("beta.sent.earlier"))

		By("restarting the manager")
		m.stop()
		startManager(ctx, managerConfig{isolation: iso, sink: sink})
		Consistently(func(g Gomega) int {
			return len(changeEventsOf(g, ns, unsent.Name)) + len(changeEventsOf(g, ns, sent.Name))
		}).WithTimeout(3 * time.Second).Should(Equal(2))
		Expect(recordsIn(sink, ns)).To(HaveLen(2))
	})
})

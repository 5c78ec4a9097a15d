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
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// auditRecord is what the specs read of an audit record (docs/audit.md, "Record format").
type auditRecord struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Object struct {
		UID        types.UID `json:"uid"`
		Generation int64     `json:"generation"`
	} `json:"object"`
	Coalesced *struct {
		FromGeneration int64 `json:"fromGeneration"`
		ToGeneration   int64 `json:"toGeneration"`
	} `json:"coalesced"`
}

// managerLogs follows the logs of every manager pod, including pods that start later, until
// stopped; the manager writes its audit records to stdout (the default sink of
// config/default), so the pods' logs are the audit trail.
type managerLogs struct {
	mu       sync.Mutex
	lines    []string
	followed map[string]bool
}

func followManagerLogs(ctx context.Context) *managerLogs {
	m := &managerLogs{followed: map[string]bool{}}
	go func() {
		defer GinkgoRecover()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			var pods []corev1.Pod
			func() {
				defer func() { _ = recover() }()
				pods = managerPods(Default)
			}()
			for _, p := range pods {
				if p.Status.Phase != corev1.PodRunning || m.followed[p.Name] {
					continue
				}
				m.followed[p.Name] = true
				go m.follow(ctx, p.Name)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *managerLogs) follow(ctx context.Context, pod string) {
	defer GinkgoRecover()
	stream, err := kube.CoreV1().Pods(system).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		GinkgoWriter.Printf("logs of %s: %v\n", pod, err)
		return
	}
	defer func() { _ = stream.Close() }()
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		m.mu.Lock()
		m.lines = append(m.lines, sc.Text())
		m.mu.Unlock()
	}
}

// records returns the audit records of the object uid seen so far.
func (m *managerLogs) records(uid types.UID) []auditRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []auditRecord
	for _, l := range m.lines {
		var r auditRecord
		if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &r) != nil || r.ID == "" || r.Object.UID != uid {
			continue
		}
		out = append(out, r)
	}
	return out
}

func failoverSpec() {
	ns := newNamespace("e2e-failover-")
	f := boolFlag(ns, "failover.counter")
	f.Spec.Type = v1.FlagTypeNumber
	f.Spec.Value = jsonValue(0)
	Expect(k8s.Create(ctx, f)).To(Succeed())
	uid := f.UID

	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	logs := followManagerLogs(logCtx)
	Eventually(func() []auditRecord { return logs.records(uid) }).ShouldNot(BeEmpty(), "the create is audited")

	// The writer: one change every 100 ms, each a new value, until told to stop; it reports
	// the generation of each write.
	stop := make(chan struct{})
	var mu sync.Mutex
	var written []int64
	retried := 0
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// A write may fail while the deleted pod still receives webhook calls (the
			// webhooks fail closed); the writer then repeats the same write, which changes
			// the generation once.
			g := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: f.Name}}
			Eventually(func() error {
				err := k8s.Patch(ctx, g, rawMerge(fmt.Sprintf(`{"spec":{"value":%d}}`, i)))
				if err != nil {
					mu.Lock()
					retried++
					mu.Unlock()
				}
				return err
			}).Should(Succeed())
			mu.Lock()
			written = append(written, g.Generation)
			mu.Unlock()
		}
	}()
	writes := func() int { mu.Lock(); defer mu.Unlock(); return len(written) }

	Eventually(writes).Should(BeNumerically(">=", 10))
	old := leader()
	Expect(old).NotTo(BeEmpty())
	oldPod, _, _ := strings.Cut(old, "_")
	deleted := time.Now()
	Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: system, Name: oldPod}})).To(Succeed())
	var next string
	Eventually(func() string { next = leader(); return next }, 30*time.Second, 100*time.Millisecond).
		ShouldNot(Or(BeEmpty(), Equal(old)), "a new leader within 30 s")
	took := time.Since(deleted)
	afterFailover := writes()
	Eventually(writes).Should(BeNumerically(">=", afterFailover+20))
	close(stop)
	<-done
	AddReportEntry("leader failover: pod deleted to new Lease holder", took.Round(100*time.Millisecond).String())

	mu.Lock()
	last := written[len(written)-1]
	n := len(written)
	mu.Unlock()
	Expect(last).To(BeEquivalentTo(1+n), "each write made a generation (create was 1)")
	var recs []auditRecord
	Eventually(func() int64 {
		recs = logs.records(uid)
		var maxGen int64
		for _, r := range recs {
			maxGen = max(maxGen, r.Object.Generation)
		}
		return maxGen
	}).Should(Equal(last), "the last write is audited")

	// Every generation from 1 to last is covered by exactly one record (a coalesced record
	// covers its range), and no record id repeats.
	covered := map[int64]int{}
	ids := map[string]int{}
	var coalesced []string
	for _, r := range recs {
		ids[r.ID]++
		from := r.Object.Generation
		if r.Coalesced != nil {
			from = r.Coalesced.FromGeneration
			coalesced = append(coalesced, fmt.Sprintf("%d-%d", from, r.Object.Generation))
		}
		for g := from; g <= r.Object.Generation; g++ {
			covered[g]++
		}
	}
	for g := int64(1); g <= last; g++ {
		Expect(covered[g]).To(Equal(1), "generation %d is covered by %d records (gap or duplicate); records %+v", g, covered[g], recs)
	}
	for id, c := range ids {
		Expect(c).To(Equal(1), "record %s delivered %d times", id, c)
	}
	AddReportEntry("failover audit trail", fmt.Sprintf("%d writes (%d failed and were repeated), %d records, coalesced generations %v, leader %s -> %s",
		n, retried, len(recs), coalesced, old, next))
}

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

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

const requestsNS = "scale-requests"

// requestCost is what one kind of request cost the API server and etcd, per request.
type requestCost struct {
	Request            string  `json:"request"`
	Seconds            float64 `json:"seconds"`
	APIServerCPUMillis float64 `json:"apiserverCPUMillisPerRequest"`
	EtcdCPUMillis      float64 `json:"etcdCPUMillisPerRequest"`
}

// requests measures, for each request the manager makes for a new override, what one such
// request costs the API server and etcd in CPU time: -requests-n requests of each kind, from
// -c workers, one kind after the other in the order in which the manager makes them for a
// new override. No manager runs; the harness makes the requests itself, as the manager
// would (the objects are those of the leader phase; the status is the manager's status of
// such an override; the checkpoint's values and pending record have the sizes the manager's
// have). The override's create is the user's, without the admission webhooks.
func (h *harness) requests(ctx context.Context) ([]requestCost, error) {
	if err := h.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: requestsNS}}); client.IgnoreAlreadyExists(err) != nil {
		return nil, fmt.Errorf("failed to create namespace %s: %w", requestsNS, err)
	}
	pids := map[string]int{}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		pid, err := childPID(name)
		if err != nil {
			return nil, err
		}
		pids[name] = pid
	}
	n := h.p.RequestsN
	overrides := make([]*v1.UserFlagOverride, n)
	ckpts := make([]*v1.AuditCheckpoint, n)
	values, pending := make([]byte, requestValuesBytes), make([]byte, requestPendingBytes)
	_, _ = rand.Read(values)
	_, _ = rand.Read(pending)
	steps := []struct {
		name string
		do   func(i int) error
	}{
		{"POST userflagoverrides (the user's create)", func(i int) error {
			o := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: requestsNS, Name: fmt.Sprintf("user-%06d", i),
				Finalizers: []string{v1.FinalizerAudit}},
				Spec: v1.UserFlagOverrideSpec{UserID: fmt.Sprintf("user-%06d", i), FlagOverrideSpec: overrideEntries(h.p.Flags, i)}}
			overrides[i] = o
			return h.c.Create(ctx, o)
		}},
		{"GET userflagoverrides (uncached)", func(i int) error {
			return h.c.Get(ctx, client.ObjectKeyFromObject(overrides[i]), &v1.UserFlagOverride{})
		}},
		{"POST auditcheckpoints (with the pending record)", func(i int) error {
			o := overrides[i]
			ckpts[i] = &v1.AuditCheckpoint{ObjectMeta: metav1.ObjectMeta{Namespace: requestsNS, Name: "userflagoverride-" + string(o.UID)},
				Spec: v1.AuditCheckpointSpec{Kind: "UserFlagOverride", Name: o.Name, UID: string(o.UID), Generation: 1,
					AuditedAt: &metav1.MicroTime{Time: time.Now()}, Values: values, Pending: pending}}
			return h.c.Create(ctx, ckpts[i], client.FieldOwner("flagops"))
		}},
		{"POST events (the change's Event)", func(i int) error {
			o := overrides[i]
			return h.c.Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: requestsNS, Name: fmt.Sprintf("%s.%d", o.Name, i)},
				EventTime: metav1.NowMicro(), ReportingController: "flagops-manager", ReportingInstance: "flagops-manager-scale",
				Action: "Audit", Reason: "UserOverrideCreated", Type: corev1.EventTypeNormal, Note: "user override created by scale-admin",
				Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "UserFlagOverride", Namespace: requestsNS, Name: o.Name, UID: o.UID}})
		}},
		{"PUT auditcheckpoints (pending cleared)", func(i int) error {
			ckpts[i].Spec.Pending = nil
			return h.c.Update(ctx, ckpts[i], client.FieldOwner("flagops"))
		}},
		{"PATCH userflagoverrides/status (merge patch)", func(i int) error {
			o := overrides[i]
			base := o.DeepCopy()
			now := metav1.Now()
			o.Status = v1.FlagOverrideStatus{ObservedGeneration: 1, FlagCount: 2, AppliedKeys: []string{flagKey(h.p.Flags, i), flagKey(h.p.Flags, i+1)},
				Conditions: []metav1.Condition{
					{Type: v1.ConditionConflict, Status: metav1.ConditionFalse, Reason: v1.ReasonNoConflict, Message: "no other override sets these keys for this subject", ObservedGeneration: 1, LastTransitionTime: now},
					{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled, Message: "2 of 2 flags applied", ObservedGeneration: 1, LastTransitionTime: now},
					{Type: v1.ConditionExpired, Status: metav1.ConditionFalse, Reason: v1.ReasonNotExpired, Message: "the override does not expire", ObservedGeneration: 1, LastTransitionTime: now},
				}}
			return h.c.Status().Patch(ctx, o, client.MergeFrom(base), client.FieldOwner("flagops"))
		}},
	}
	var out []requestCost
	for _, s := range steps {
		fmt.Fprintf(os.Stderr, "scale: %d × %s\n", n, s.name)
		cpu0, err := cpuSeconds(pids)
		if err != nil {
			return out, err
		}
		start := time.Now()
		var next atomic.Int64
		errs := make(chan error, h.p.Workers)
		var wg sync.WaitGroup
		for range h.p.Workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					if err := s.do(i); err != nil {
						errs <- fmt.Errorf("%s %d: %w", s.name, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return out, err
		}
		cpu1, err := cpuSeconds(pids)
		if err != nil {
			return out, err
		}
		out = append(out, requestCost{Request: s.name, Seconds: took.Seconds(),
			APIServerCPUMillis: (cpu1["kube-apiserver"] - cpu0["kube-apiserver"]) * 1000 / float64(n),
			EtcdCPUMillis:      (cpu1["etcd"] - cpu0["etcd"]) * 1000 / float64(n)})
	}
	return out, nil
}

// The sizes of an override's checkpoint fields as the manager writes them for the leader
// phase's overrides (gzip-compressed JSON): its values, and its pending creation record.
const (
	requestValuesBytes  = 105
	requestPendingBytes = 355
)

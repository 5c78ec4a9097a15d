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
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestControllerQueueShutsDown guards the work queue every controller of the manager uses
// (controller-runtime's priority queue, its default): shut down while workers take items, it
// lets every worker go. In controller-runtime v0.24.1 it could hand an item to a worker that
// had already left, and hang there holding its lock; the manager then never stopped (a
// replica that does not exit, a lease not released), which CI hit at a spec's end. The
// rounds make the race likely: it hung within a few of them.
func TestControllerQueueShutsDown(t *testing.T) {
	const rounds, workers, before = 200, 8, 64
	for round := range rounds {
		q := priorityqueue.New[reconcile.Request]("shutdown-test")
		var taken atomic.Int64
		busy := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					key := types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("w%d-%d", w, i)}
					q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(i % 3)}, reconcile.Request{NamespacedName: key})
					item, _, shutdown := q.GetWithPriority()
					if shutdown {
						return
					}
					q.Done(item)
					if taken.Add(1) == before {
						once.Do(func() { close(busy) })
					}
				}
			})
		}
		<-busy
		q.ShutDown()
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: a worker still waits a minute after the queue was shut down", round)
		}
	}
}

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
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// BenchmarkCheckpointValuesHeld measures the memory that the leader keeps per audited
// object for its values: a map, as it kept them before, against the gzip-compressed JSON
// it keeps now, for 10,000 overrides like those of hack/scale (two entries each). It
// reports the heap in use per object after a GC, both measured in the same run.
func BenchmarkCheckpointValuesHeld(b *testing.B) {
	const n = 10_000
	objs := make([]*v1.UserFlagOverride, n)
	for i := range objs {
		objs[i] = &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "scale", Name: fmt.Sprintf("user-%06d", i)},
			Spec: v1.UserFlagOverrideSpec{UserID: fmt.Sprintf("user-%06d", i), FlagOverrideSpec: v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{
				{Key: fmt.Sprintf("scale.flag-%03d", i%200), Enabled: ptr.To(true)},
				{Key: fmt.Sprintf("scale.flag-%03d", (i+1)%200), Enabled: ptr.To(false)},
			}}}}
	}
	// inUse is the heap in use after two GCs, the second of which also empties sync.Pools
	// (gzipJSON's compressors).
	inUse := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// The slices that hold what is kept are made before the first reading, so that only what
	// each object's values take on the heap is counted (a checkpoint holds a map as 8 bytes
	// and a []byte as 24 bytes in itself).
	b.Run("map", func(b *testing.B) {
		var perObject float64
		for b.Loop() {
			kept := make([]map[string]json.RawMessage, n)
			before := inUse()
			for i, o := range objs {
				kept[i] = overrideValues(&o.Spec.FlagOverrideSpec)
			}
			perObject = float64(inUse()-before) / n
			runtime.KeepAlive(kept)
		}
		b.ReportMetric(perObject, "B/object")
	})
	b.Run("packed", func(b *testing.B) {
		var perObject float64
		for b.Loop() {
			kept := make([][]byte, n)
			before := inUse()
			for i, o := range objs {
				packed, err := gzipJSON(overrideValues(&o.Spec.FlagOverrideSpec))
				if err != nil {
					b.Fatal(err)
				}
				kept[i] = packed
			}
			perObject = float64(inUse()-before) / n
			var back map[string]json.RawMessage
			if gunzipJSON(kept[n-1], &back) != nil || len(back) == 0 {
				b.Fatal("the packed values do not read back")
			}
			runtime.KeepAlive(kept)
		}
		b.ReportMetric(perObject, "B/object")
	})
}

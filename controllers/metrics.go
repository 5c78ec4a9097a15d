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
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flagops/flagops/internal/audit"
)

var (
	storeRevision = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flagops_store_revision",
		Help: "Revision of the evaluator store's current snapshot.",
	})
	syncsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flagops_syncer_syncs_total",
		Help: "Calls of the syncer, which applies one object from the cache, or from an override feed, to the evaluator store under one lock.",
	})
	storeApplySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flagops_store_apply_seconds",
		Help:    "Time to apply a write to the evaluator store.",
		Buckets: []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05},
	})

	overridesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagops_overrides_total",
		Help: "Changes to override entries, by subject kind (user, device), flag and action (created, updated, deleted, expired).",
	}, []string{"kind", "flag", "action"})
	overridesActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagops_overrides_active",
		Help: "Override entries the evaluator currently serves, by subject kind and flag.",
	}, []string{"kind", "flag"})

	unverifiedChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagops_audit_unverified_changes_total",
		Help: "Audit records written with an unverified actor (no valid webhook stamp), by object kind.",
	}, []string{"kind"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(storeRevision, syncsTotal, storeApplySeconds, overridesTotal, overridesActive, unverifiedChanges)
}

// activeByNamespace holds the active override counts per (kind, flag) and namespace, so that
// flagops_overrides_active, which has no namespace label, sums over namespaces.
var (
	activeMu          sync.Mutex
	activeByNamespace = map[[2]string]map[string]int32{}
)

// setActiveOverrides records the active overrides of one kind for a flag of a namespace.
func setActiveOverrides(kind, namespace, flag string, n int32) {
	activeMu.Lock()
	defer activeMu.Unlock()
	k := [2]string{kind, flag}
	m := activeByNamespace[k]
	if m == nil {
		m = map[string]int32{}
		activeByNamespace[k] = m
	}
	if n == 0 {
		delete(m, namespace)
	} else {
		m[namespace] = n
	}
	var sum int32
	for _, v := range m {
		sum += v
	}
	overridesActive.WithLabelValues(kind, flag).Set(float64(sum))
}

// countOverrideChange counts one audited override change per flag key it touched.
func countOverrideChange(kind string, action audit.Action, changedKeys []string) {
	verb := string(action)
	if i := strings.LastIndexByte(verb, '.'); i >= 0 {
		verb = verb[i+1:]
	}
	for _, k := range changedKeys {
		if strings.HasPrefix(k, "override/") {
			continue
		}
		overridesTotal.WithLabelValues(kind, k, verb).Inc()
	}
}

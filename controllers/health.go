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
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// abnormal is a kstatus condition to set True (Stalled or Reconciling), or none.
type abnormal struct {
	reason, message string
}

// none is the zero abnormal: the condition does not apply.
var none = abnormal{}

// setHealth keeps the two abnormal-true conditions that kstatus, and with it Flux's health
// checks and the Argo CD checks in config/argocd, read besides observedGeneration:
// Stalled=True (Failed: nothing changes until a person changes this object or another) and
// Reconciling=True (InProgress: waiting for something that may come by itself). Each is
// present only while it applies, never False, and Stalled wins: both True would leave the
// result to the order of the list.
func setHealth(conds *[]metav1.Condition, gen int64, stalled, reconciling abnormal) {
	if stalled != none {
		reconciling = none
	}
	for _, c := range []struct {
		typ string
		a   abnormal
	}{{v1.ConditionStalled, stalled}, {v1.ConditionReconciling, reconciling}} {
		if c.a == none {
			apimeta.RemoveStatusCondition(conds, c.typ)
			continue
		}
		apimeta.SetStatusCondition(conds, metav1.Condition{Type: c.typ, Status: metav1.ConditionTrue,
			Reason: c.a.reason, Message: c.a.message, ObservedGeneration: gen})
	}
}

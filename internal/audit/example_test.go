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

package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/flagops/flagops/internal/audit"
)

// A controller records that a flag's rollout widened from 5% to 25%.
func Example() {
	sink, err := audit.ParseAll([]string{"stdout"}, audit.Options{Stdout: os.Stdout})
	if err != nil {
		fmt.Println(err)
		return
	}

	rec := audit.NewRecord(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), audit.Change{
		Action: audit.ActionFlagScheduleApplied,
		Actor:  audit.Actor{Username: "system:serviceaccount:flagops-system:flagops-manager", Verified: true},
		Object: audit.ObjectRef{
			Namespace: "default", Name: "beta.new-dashboard", UID: "0b7e", Generation: 4, ResourceVersion: "812",
		},
		// The step's time tells this step apart from another applied in the same generation.
		Discriminator: "2026-03-01T12:00:00Z",
		Before: map[string]json.RawMessage{
			"enabled":            json.RawMessage(`true`),
			"rollout.percentage": json.RawMessage(`5`),
		},
		After: map[string]json.RawMessage{
			"enabled":            json.RawMessage(`true`),
			"rollout.percentage": json.RawMessage(`25`),
		},
	})
	if err := sink.Write(context.Background(), rec); err != nil {
		fmt.Println(err)
	}
	if err := sink.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"id":"5e452922eb44fbb807da71f90c5e65a1","time":"2026-03-01T12:00:00.000000000Z","action":"flag.schedule_applied","actor":{"username":"system:serviceaccount:flagops-system:flagops-manager","groups":[],"verified":true},"object":{"kind":"FeatureFlag","namespace":"default","name":"beta.new-dashboard","uid":"0b7e","generation":4,"resourceVersion":"812"},"changedKeys":["rollout.percentage"],"before":{"rollout.percentage":5},"after":{"rollout.percentage":25}}
}

// Parse reports a bad --audit-sink value with the value and the accepted forms.
func ExampleParse() {
	_, err := audit.Parse("ftp://x", audit.Options{})
	fmt.Println(err)
	// Output:
	// --audit-sink "ftp://x": unsupported scheme "ftp"; use stdout, file:PATH or http(s)://URL
}

// The event that an HTTP sink sends for a console write, in structured mode. Its data is
// the record line that stdout writes; the request object is there because the write came
// through flagops' console.
func ExampleNewEvent() {
	rec := audit.NewRecord(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), audit.Change{
		Action:  audit.ActionUserOverrideCreated,
		Actor:   audit.Actor{Username: "alice@example.com", Groups: []string{"support"}, Verified: true},
		Object:  audit.ObjectRef{Namespace: "shop", Name: "pilot-user-42", UID: "6d1c", Generation: 1, ResourceVersion: "48213"},
		Subject: &audit.Subject{UserID: "user-42"},
		Request: &audit.Request{Route: "POST /api/v1/overrides", SourceIP: "203.0.113.7", UserAgent: "flagops-console/0.1"},
		After:   map[string]json.RawMessage{"beta.new-dashboard": json.RawMessage(`{"enabled":true}`)},
	})
	ev, err := audit.NewEvent(rec, "flagops.dev/prod-eu")
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := json.Marshal(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	// Output:
	// {"specversion":"1.0","id":"2d5f5847c9f1d990f3e877b8ff0fbd73","source":"flagops.dev/prod-eu/shop","type":"dev.flagops.audit.user_override.created","subject":"UserFlagOverride/shop/pilot-user-42","datacontenttype":"application/json","time":"2026-03-01T12:00:00Z","data":{"id":"2d5f5847c9f1d990f3e877b8ff0fbd73","time":"2026-03-01T12:00:00.000000000Z","action":"user_override.created","actor":{"username":"alice@example.com","groups":["support"],"verified":true},"object":{"kind":"UserFlagOverride","namespace":"shop","name":"pilot-user-42","uid":"6d1c","generation":1,"resourceVersion":"48213"},"subject":{"userId":"user-42"},"request":{"route":"POST /api/v1/overrides","sourceIP":"203.0.113.7","userAgent":"flagops-console/0.1"},"changedKeys":["beta.new-dashboard"],"before":{"beta.new-dashboard":null},"after":{"beta.new-dashboard":{"enabled":true}}}}
}

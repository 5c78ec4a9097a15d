package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// bobOv is bob's override of theme with a reason and, when expires is not
// zero, an expiry.
func bobOv(reason string, expires time.Time) evaluator.Op {
	ov := evaluator.Override{
		Kind: evaluator.SubjectUser, SubjectID: "bob", Namespace: "shop", Name: "bob-theme",
		CreatedAt: testNow.Add(-time.Minute), Enabled: true, Reason: reason,
		Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"neon"`)}},
	}
	if !expires.IsZero() {
		ov.ExpiresAt = &expires
	}
	return evaluator.UpsertOverride(ov)
}

// bobTheme is bob's theme in a native event when bobOv decides it.
func bobTheme(extra string) string {
	return `{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/bob-theme"` + extra + `}`
}

// TestStreamOverrideReasonAndExpiry: a change of only the reason or the
// expiry of the override that decides a flag reaches its client as an
// event with a new ID, and a client resuming from before it gets the new
// values.
func TestStreamOverrideReasonAndExpiry(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	bob := open(t, srv, "/v1/stream?userId=bob")
	bob.expect(t, "snapshot", idOf(store, "shop", bobCtx), bobSnapshot)
	in2h := testNow.Add(2 * time.Hour)

	apply(t, store, bobOv("ticket 1", time.Time{}))
	bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx),
		`{"revision":2,"changed":{"theme":`+bobTheme(`,"overrideReason":"ticket 1"`)+`},"removed":[]}`)
	noReason := idOf(store, "shop", bobCtx)

	apply(t, store, bobOv("ticket 2", time.Time{}))
	bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx),
		`{"revision":3,"changed":{"theme":`+bobTheme(`,"overrideReason":"ticket 2"`)+`},"removed":[]}`)
	reason2 := idOf(store, "shop", bobCtx)
	if reason2 == noReason {
		t.Fatal("a new reason did not change the ID")
	}

	apply(t, store, bobOv("ticket 2", in2h))
	bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx),
		`{"revision":4,"changed":{"theme":`+bobTheme(`,"overrideReason":"ticket 2","overrideExpiresAt":"2030-01-01T14:00:00Z"`)+`},"removed":[]}`)
	if idOf(store, "shop", bobCtx) == reason2 {
		t.Fatal("a new expiry did not change the ID")
	}
	bob.quiet(t)

	t.Run("resume from before the reason changed", func(t *testing.T) {
		c := open(t, srv, "/v1/stream?userId=bob", "Last-Event-ID", noReason)
		ev := c.next(t)
		if ev.event != "snapshot" || ev.id != idOf(store, "shop", bobCtx) ||
			!strings.Contains(ev.data, `"overrideReason":"ticket 2","overrideExpiresAt":"2030-01-01T14:00:00Z"`) {
			t.Fatalf("frame = %+v, want a snapshot with the new reason and expiry", ev)
		}
		c.quiet(t)
	})
	t.Run("OFREP resume from before the reason changed", func(t *testing.T) {
		c := open(t, srv, "/ofrep/v1/sse?userId=bob", "Last-Event-ID", noReason)
		if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) || ev.id != idOf(store, "shop", bobCtx) {
			t.Fatalf("frame = %+v, want a refetch event with the current ID", ev)
		}
		c.quiet(t)
	})
	t.Run("OFREP stream hears of a reason change", func(t *testing.T) {
		c := open(t, srv, "/ofrep/v1/sse?userId=bob")
		c.quiet(t)
		apply(t, store, bobOv("ticket 3", in2h))
		if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) || ev.id != idOf(store, "shop", bobCtx) {
			t.Fatalf("frame = %+v, want a refetch event with the new ID", ev)
		}
		bob.expect(t, "device.feature-flags.changed", idOf(store, "shop", bobCtx),
			`{"revision":5,"changed":{"theme":`+bobTheme(`,"overrideReason":"ticket 3","overrideExpiresAt":"2030-01-01T14:00:00Z"`)+`},"removed":[]}`)
	})
}

// TestDeviceOverrideMetadata: a result decided by a device override gives
// that override's expiry and reason; one decided otherwise gives neither.
// (TestOFREPSingle, TestOFREPBulk and TestNative cover user overrides.)
func TestDeviceOverrideMetadata(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	in2h := testNow.Add(2 * time.Hour)
	apply(t, store, evaluator.UpsertOverride(evaluator.Override{
		Kind: evaluator.SubjectDevice, SubjectID: "d1", Namespace: "shop", Name: "d1-theme",
		CreatedAt: testNow, Enabled: true, ExpiresAt: &in2h, Reason: "kiosk",
		Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"neon"`)}},
	}))
	const ctx = `{"context":{"deviceId":"d1","deviceClass":"phone"}}`
	const meta = `"overrideExpiresAt":"2030-01-01T14:00:00Z","overrideReason":"kiosk"`
	tests := []struct {
		name, target, body, want string
	}{
		{"OFREP single", "/ofrep/v1/evaluate/flags/theme", ctx,
			`{"key":"theme","value":"neon","reason":"TARGETING_MATCH","variant":"override","metadata":{"source":"device-override:shop/d1-theme","enabled":true,` + meta + `}}`},
		{"OFREP single, another device", "/ofrep/v1/evaluate/flags/theme", `{"context":{"deviceId":"d2","deviceClass":"phone"}}`,
			`{"key":"theme","value":"dark","reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}`},
		{"native", "/v1/evaluate", `{"context":{"deviceId":"d1","deviceClass":"phone"},"flags":["theme","limits"]}`,
			`{"namespace":"shop","revision":2,"flags":{
			"theme":{"value":"neon","enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"device-override:shop/d1-theme",` + meta + `},
			"limits":{"value":{"maxItems":50},"enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, "POST", tc.target, tc.body), 200, tc.want, "", "")
		})
	}
}

package evaluator

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

func BenchmarkEvaluate(b *testing.B) {
	b.Run("static-boolean", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		mustApply(b, s, UpsertFlag("ns", "flag", boolFlag(true)))
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-1", OrgID: "org-1", Role: "admin"}
		b.ReportAllocs()
		for b.Loop() {
			r := h.Evaluate(ctx, "flag")
			if !r.Enabled {
				b.Fatal("flag should be on")
			}
		}
	})
	b.Run("user-override-hit-100k", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		ops := []Op{UpsertFlag("ns", "flag", boolFlag(false))}
		for i := range 100_000 {
			ops = append(ops, UpsertOverride(userOverride("ns", "o-"+strconv.Itoa(i), "user-"+strconv.Itoa(i), t0, on("flag"))))
		}
		mustApply(b, s, ops...)
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-4242", OrgID: "org-1"}
		b.ReportAllocs()
		for b.Loop() {
			r := h.Evaluate(ctx, "flag")
			if !r.Enabled {
				b.Fatal("override should turn the flag on")
			}
		}
	})
	b.Run("rollout", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		spec := boolFlag(true)
		spec.Rollout = &Rollout{Percentage: 50}
		mustApply(b, s, UpsertFlag("ns", "flag", spec))
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-1"}
		b.ReportAllocs()
		for b.Loop() {
			if r := h.Evaluate(ctx, "flag"); r.Reason != ReasonSplit {
				b.Fatal(r)
			}
		}
	})
	b.Run("rules-3x3", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		spec := FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"default"`), Rules: []Rule{
			{Name: "r1", Value: raw(`"a"`), Match: []Condition{
				{Attribute: "country", Operator: OpIn, Values: []string{"DE", "FR", "NL"}},
				{Attribute: "plan", Operator: OpStartsWith, Values: []string{"pro"}},
				{Attribute: "age", Operator: OpGreaterThan, Values: []string{"65"}},
			}},
			{Name: "r2", Value: raw(`"b"`), Match: []Condition{
				{Attribute: "orgId", Operator: OpNotIn, Values: []string{"org-9"}},
				{Attribute: "email", Operator: OpEndsWith, Values: []string{"@example.com"}},
				{Attribute: "beta", Operator: OpIn, Values: []string{"true"}},
			}},
			{Name: "r3", Value: raw(`"c"`), Match: []Condition{
				{Attribute: "country", Operator: OpIn, Values: []string{"DE", "AT", "CH"}},
				{Attribute: "age", Operator: OpLessThan, Values: []string{"40"}},
				{Attribute: "email", Operator: OpExists},
			}},
		}}
		mustApply(b, s, UpsertFlag("ns", "flag", spec))
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-1", OrgID: "org-1", Attributes: map[string]any{
			"country": "DE", "plan": "pro-annual", "age": 33, "email": "a@example.com", "beta": false,
		}}
		b.ReportAllocs()
		for b.Loop() {
			if r := h.Evaluate(ctx, "flag"); r.Variant != "r3" {
				b.Fatal(r)
			}
		}
	})
	b.Run("schedule-step-in-effect", func(b *testing.B) {
		clk := newFakeClock(t0)
		s := NewStore(WithClock(clk))
		spec := FlagSpec{Type: TypeString, Value: raw(`"v1"`), Schedule: []ScheduleStep{
			{At: t0.Add(-3 * time.Minute), Enabled: ptr(true)},
			{At: t0.Add(-2 * time.Minute), Value: raw(`"v2"`)},
			{At: t0.Add(time.Minute), Value: raw(`"v3"`)},
		}}
		mustApply(b, s, UpsertFlag("ns", "flag", spec))
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-1"}
		b.ReportAllocs()
		for b.Loop() {
			if r := h.Evaluate(ctx, "flag"); r.Value != "v2" {
				b.Fatal(r)
			}
		}
	})
	b.Run("evaluate-all-100", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		var ops []Op
		for i := range 100 {
			key := fmt.Sprintf("flag-%03d", i)
			var spec FlagSpec
			switch i % 4 {
			case 0:
				spec = boolFlag(true)
			case 1:
				spec = FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"v"`), Rules: []Rule{
					{Name: "de", Match: []Condition{{Attribute: "country", Operator: OpIn, Values: []string{"DE"}}}},
				}}
			case 2:
				spec = boolFlag(true)
				spec.Rollout = &Rollout{Percentage: 30}
			case 3:
				spec = FlagSpec{Type: TypeObject, Enabled: true, Value: raw(`{"limit":3}`), AllowedRoles: []string{"admin"}}
			}
			ops = append(ops, UpsertFlag("ns", key, spec))
		}
		ops = append(ops, UpsertOverride(userOverride("ns", "o", "user-1", t0, on("flag-000"), off("flag-004"))))
		mustApply(b, s, ops...)
		h := s.Namespace("ns")
		ctx := Context{UserID: "user-1", Role: "viewer", Attributes: map[string]any{"country": "DE"}}
		b.Run("alloc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rs := h.EvaluateAll(ctx); len(rs) != 75 {
					b.Fatal(len(rs))
				}
			}
		})
		b.Run("reuse", func(b *testing.B) {
			buf := make([]Result, 0, 100)
			b.ReportAllocs()
			for b.Loop() {
				if buf = h.EvaluateAllInto(buf, ctx); len(buf) != 75 {
					b.Fatal(len(buf))
				}
			}
		})
	})
}

func BenchmarkApply(b *testing.B) {
	b.Run("override-upsert-into-100k", func(b *testing.B) {
		s := NewStore(WithClock(newFakeClock(t0)))
		ops := []Op{UpsertFlag("ns", "flag", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"on"`)})}
		for i := range 100_000 {
			ops = append(ops, UpsertOverride(userOverride("ns", "o-"+strconv.Itoa(i), "user-"+strconv.Itoa(i), t0, on("flag"))))
		}
		mustApply(b, s, ops...)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			j := strconv.Itoa(i % 100_000)
			o := userOverride("ns", "o-"+j, "user-"+j, t0, val("flag", `"v`+strconv.Itoa(i)+`"`))
			if _, cs, err := s.Apply(UpsertOverride(o)); err != nil || len(cs.Subjects) != 1 {
				b.Fatal(err, cs)
			}
		}
	})
}

package evaluator

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestRunClockTicksAtExpiry(t *testing.T) {
	s := NewStore()
	on := true
	// The expiry and the step below are far enough ahead that they are still to come when
	// the write that sets them is applied, however busy the machine: one already past then
	// sets no deadline, and the clock would have nothing to tick.
	expires := time.Now().Add(time.Second)
	if _, _, err := s.Apply(
		UpsertFlag("ns", "a.flag", FlagSpec{Type: TypeBoolean}),
		UpsertOverride(Override{Kind: SubjectUser, SubjectID: "u", Namespace: "ns", Name: "o", UID: "1",
			CreatedAt: time.Unix(1, 0), Enabled: true, ExpiresAt: &expires, Entries: []OverrideEntry{{Key: "a.flag", Enabled: &on}}}),
	); err != nil {
		t.Fatal(err)
	}
	rev := s.Snapshot().Revision()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.RunClock(ctx); close(done) }()

	// The tick publishes a change set for the expired pair, with no write.
	deadline := time.After(10 * time.Second)
	for {
		sets, wake, ok := s.Changes(rev)
		if !ok {
			t.Fatal("history lost")
		}
		found := false
		for _, cs := range sets {
			for _, sc := range cs.Subjects {
				if sc.SubjectID == "u" && sc.Key == "a.flag" {
					found = true
				}
			}
		}
		if found {
			break
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatal("no change set reported the expiry")
		}
	}
	if time.Now().Before(expires) {
		t.Errorf("ticked before the expiry")
	}

	// A write with an earlier deadline wakes the clock up.
	at := time.Now().Add(time.Second)
	if _, _, err := s.Apply(UpsertFlag("ns", "b.flag", FlagSpec{Type: TypeBoolean,
		Schedule: []ScheduleStep{{At: at, Enabled: &on}}, Value: json.RawMessage(`true`)})); err != nil {
		t.Fatal(err)
	}
	rev = s.Snapshot().Revision()
	for {
		sets, wake, _ := s.Changes(rev)
		if len(sets) > 0 && len(sets[0].Flags) > 0 {
			break
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatal("no change set reported the schedule step")
		}
	}
	cancel()
	<-done
}

package evaluator

import (
	"context"
	"time"
)

// RunClock ticks the store at every override expiry and schedule step, so that the change
// feed (and anything pushing changes from it) reports them when they happen. Evaluation is
// exact without it. It wakes on every write, whose deadlines may come earlier, and returns
// when ctx is done. Run one per store, in the process that owns it.
func (s *Store) RunClock(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		_, wake, _ := s.Changes(s.Snapshot().Revision())
		next, ok := s.NextDeadline()
		wait := time.Hour
		if ok {
			wait = max(next.Sub(s.clock.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
			if ok {
				s.Tick(s.clock.Now())
			}
		}
	}
}

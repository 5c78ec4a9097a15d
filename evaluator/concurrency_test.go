package evaluator

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReadersAndWriter runs readers against the store while a
// writer applies 10,000 updates. Every write sets alice's override value to
// the revision it creates, so a reader can check that each snapshot it loads
// is internally consistent; run with -race.
func TestConcurrentReadersAndWriter(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "f", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"1"`)}),
		UpsertFlag("ns", "g", boolFlag(true)),
	)
	const updates = 10_000
	const readers = 4
	done := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastRev uint64
			buf := make([]Result, 0, 4)
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				snap := s.Snapshot()
				if snap.Revision() < lastRev {
					errs <- "revision went backwards"
					return
				}
				lastRev = snap.Revision()
				h := snap.Namespace("ns")
				r := h.Evaluate(Context{UserID: "alice"}, "f")
				if want := `"` + strconv.FormatUint(snap.Revision(), 10) + `"`; string(r.Raw) != want {
					errs <- "snapshot " + strconv.FormatUint(snap.Revision(), 10) + " served " + string(r.Raw)
					return
				}
				buf = h.EvaluateAllInto(buf, Context{UserID: "user-" + strconv.Itoa(n%100)})
				if _, isBool := buf[1].Value.(bool); len(buf) != 2 || buf[0].Key != "f" || buf[1].Key != "g" || !isBool {
					errs <- "bulk evaluation lost a flag"
					return
				}
				if n%64 == 0 {
					h.Explain("f", Context{UserID: "alice"})
					h.UserOverrides("alice")
				}
				reads.Add(1)
			}
		}()
	}
	for i := range updates {
		rev := s.Snapshot().Revision() + 1
		ops := []Op{UpsertOverride(userOverride("ns", "alice", "alice", created, val("f", `"`+strconv.FormatUint(rev, 10)+`"`)))}
		user := "user-" + strconv.Itoa(i%100)
		if i%3 == 0 {
			ops = append(ops, UpsertOverride(userOverride("ns", user, user, created, off("g"), val("f", `"x"`))))
		} else {
			ops = append(ops, DeleteOverride(SubjectUser, "ns", user))
		}
		snap, _, err := s.Apply(ops...)
		if err != nil || snap.Revision() != rev {
			t.Fatalf("apply %d: rev %d, %v", i, snap.Revision(), err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if reads.Load() == 0 {
		t.Fatal("readers never ran")
	}
	t.Logf("%d reads during %d writes", reads.Load(), updates)
}

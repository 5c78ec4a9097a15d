package link

import (
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 0, 0},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{100, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		for range 100 {
			if d := Backoff(100*time.Millisecond, time.Second, tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d) = %s, want %s to %s", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

// TestRetryDelay: a 503 with Retry-After is waited out as given (the evaluator
// jitters it) without doubling the back-off, since another replica may have
// room; any other failure backs off.
func TestRetryDelay(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, time.Second
	busy := &streamError{retryAfter: 4 * time.Second}
	other := &streamError{}
	tests := []struct {
		name        string
		attempt     int
		err         error
		min, max    time.Duration
		wantAttempt int
	}{
		{"first drop", 0, other, 0, 0, 1},
		{"second failure", 1, other, 50 * time.Millisecond, 100 * time.Millisecond, 2},
		{"busy at once", 0, busy, 4 * time.Second, 4 * time.Second, 0},
		{"busy later", 3, busy, 4 * time.Second, 4 * time.Second, 3},
		{"not a stream error", 2, errTest, 100 * time.Millisecond, 200 * time.Millisecond, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, next := retryDelay(lo, hi, tc.attempt, tc.err)
			if d < tc.min || d > tc.max || next != tc.wantAttempt {
				t.Errorf("retryDelay(%d, %v) = %s, %d; want %s to %s, %d", tc.attempt, tc.err, d, next, tc.min, tc.max, tc.wantAttempt)
			}
		})
	}
}

var errTest = errors.New("test")

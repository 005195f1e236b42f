package chat

import (
	"slices"
	"testing"
	"time"
)

// TestHistoryRetryRefusedFast: a member that refuses us (NOT_ALLOWED: its
// router does not see our subscription yet) is asked again every second,
// historyRefusedFast times in a row, before the back-off doubles; other
// failures double at once, and an answer resets both.
func TestHistoryRetryRefusedFast(t *testing.T) {
	b := historyRetry{max: time.Minute}
	for i := range historyRefusedFast {
		if need, wait, _ := b.after(syncRefused); !need || wait != historyRetryMin {
			t.Fatalf("refusal %d: need %v, retry after %v, want a retry after %v", i+1, need, wait, historyRetryMin)
		}
	}
	var waits []time.Duration
	for range 8 {
		_, wait, _ := b.after(syncRefused)
		waits = append(waits, wait)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute}
	if !slices.Equal(waits, want) {
		t.Fatalf("refusals past %d: retries after %v, want doubling %v", historyRefusedFast, waits, want)
	}

	// A member that answered resets the count and the delay.
	if need, wait, _ := b.after(syncDone); need || wait != 0 {
		t.Fatalf("after syncDone: need %v, retry after %v, want nothing to do", need, wait)
	}
	if _, wait, _ := b.after(syncRefused); wait != historyRetryMin {
		t.Fatalf("a refusal after an answer: retry after %v, want %v", wait, historyRetryMin)
	}

	// A failure that is not a refusal doubles at once, and ends the run of
	// refusals.
	b = historyRetry{max: 4 * time.Second}
	waits = nil
	for _, r := range []syncResult{syncFailed, syncAgain, syncRefused, syncFailed, syncFailed} {
		_, wait, _ := b.after(r)
		waits = append(waits, wait)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(waits, want) {
		t.Fatalf("failures: retries after %v, want %v (a refusal in between stays fast; capped at max)", waits, want)
	}

	for _, c := range []struct {
		r           syncResult
		need        bool
		retry, resm time.Duration
	}{
		{syncNobody, true, 0, 0},   // wait for a member to join
		{syncGapsLeft, true, 0, 0}, // wait for a gap or a member
		{syncCut, false, 0, historyRetryMax},
	} {
		b := historyRetry{max: time.Minute}
		if need, retry, later := b.after(c.r); need != c.need || retry != c.retry || later != c.resm {
			t.Errorf("after %d: need %v, retry %v, later %v; want %v, %v, %v", c.r, need, retry, later, c.need, c.retry, c.resm)
		}
	}
}

package node

import (
	"testing"
	"time"
)

// The keeper reserves again after half the lifetime the relay stated, by
// the local clock, when that is plausible for a kith relay, else after half
// of a kith relay's lifetime: a relay's stated expiry is an absolute time
// on its clock, so a skewed clock makes it look far off or past.
func TestRefreshAfter(t *testing.T) {
	const ttl = time.Hour
	for _, c := range []struct {
		name   string
		stated time.Duration // stated expiry minus the local time at receipt
		want   time.Duration
	}{
		{"clocks agree", time.Hour, 30 * time.Minute},
		{"relay 20 min behind", 40 * time.Minute, 20 * time.Minute},
		{"relay 55 min behind (too short to trust)", 5 * time.Minute, 30 * time.Minute},
		{"relay 1 h behind: expiry now", 0, 30 * time.Minute},
		{"relay 1 day behind: expiry in the past", -23 * time.Hour, 30 * time.Minute},
		{"relay 1 h ahead", 2 * time.Hour, 30 * time.Minute},
		{"relay 1 day ahead", 25 * time.Hour, 30 * time.Minute},
	} {
		if got := refreshAfter(c.stated, ttl); got != c.want {
			t.Errorf("%s: refreshAfter(%v) = %v, want %v", c.name, c.stated, got, c.want)
		}
	}
}

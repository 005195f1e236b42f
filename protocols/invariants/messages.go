package invariants

import (
	"fmt"
	"testing"
)

// ExactlyOnce fails t unless every acked message appears exactly once in
// stored, and stored holds no message twice (N3: what was acked is
// persisted, once). Call it on what the store returns after a restart.
func ExactlyOnce[M comparable](t testing.TB, stored, acked []M) {
	t.Helper()
	once(t, "N3", stored, acked, "stored", "was acked but is not stored")
}

// ShownOnce fails t unless every message in stored was shown exactly
// once, and none shown twice (N6: a user sees each message it holds once).
// Messages shown but not stored are not its concern.
func ShownOnce[M comparable](t testing.TB, shown, stored []M) {
	t.Helper()
	once(t, "N6", shown, stored, "shown", "is stored but was never shown")
}

// once fails t, naming row, for a message in have more than once ("<m>
// <did> N times") and for one of want not in have ("<m> <missing>").
func once[M comparable](t testing.TB, row string, have, want []M, did, missing string) {
	t.Helper()
	count := make(map[M]int, len(have))
	for _, m := range have {
		count[m]++
	}
	for m, n := range count {
		if n > 1 {
			t.Errorf("invariants: %s: %v %s %d times", row, m, did, n)
		}
	}
	for _, m := range want {
		if count[m] == 0 {
			t.Errorf("invariants: %s: %v %s", row, m, missing)
		}
	}
}

// Said is one line of a transcript: who said what (an ID, a text, or
// whatever identifies a message).
type Said[S, M comparable] struct {
	From S
	Msg  M
}

func (s Said[S, M]) String() string { return fmt.Sprintf("%v: %v", s.From, s.Msg) }

// PerSenderOrder fails t unless transcript, read one sender at a time, is
// exactly what that sender sent, in the order it sent it (N6: per-sender
// order and exactly-once display). Messages of different senders may
// interleave; a sender missing from sent must not appear.
func PerSenderOrder[S, M comparable](t testing.TB, sent map[S][]M, transcript []Said[S, M]) {
	t.Helper()
	got := map[S][]M{}
	for _, l := range transcript {
		if _, ok := sent[l.From]; !ok {
			t.Errorf("invariants: N6: %v in the transcript, but %v sent nothing", l, l.From)
			continue
		}
		got[l.From] = append(got[l.From], l.Msg)
	}
	for s, want := range sent {
		g := got[s]
	compare:
		for i := range max(len(want), len(g)) {
			switch {
			case i >= len(g):
				t.Errorf("invariants: N6: %v's message %d (%v) is missing; %d of %d shown", s, i, want[i], len(g), len(want))
			case i >= len(want):
				t.Errorf("invariants: N6: %v's message %v shown beyond the %d it sent", s, g[i], len(want))
			case g[i] != want[i]:
				t.Errorf("invariants: N6: %v's message %d is %v, sent as %v (out of order, repeated or lost)", s, i, g[i], want[i])
			default:
				continue
			}
			break compare // one report per sender: the first difference
		}
	}
}

// InSentOrder fails t unless transcript, read one sender at a time, is
// part of what that sender sent, in the order it sent it, each message at
// most once (N6 where not everything must have arrived: a room with a gap
// not yet repaired, a message still queued). A message its sender never
// sent, or a sender missing from sent, fails too.
func InSentOrder[S, M comparable](t testing.TB, sent map[S][]M, transcript []Said[S, M]) {
	t.Helper()
	pos := make(map[S]map[M]int, len(sent))
	for s, ms := range sent {
		pos[s] = make(map[M]int, len(ms))
		for i, m := range ms {
			pos[s][m] = i
		}
	}
	last := map[S]int{}
	for _, l := range transcript {
		p, ok := pos[l.From]
		if !ok {
			t.Errorf("invariants: N6: %v in the transcript, but %v sent nothing", l, l.From)
			continue
		}
		i, ok := p[l.Msg]
		prev, seen := last[l.From]
		switch {
		case !ok:
			t.Errorf("invariants: N6: %v in the transcript, but %v never sent it", l, l.From)
		case seen && i == prev:
			t.Errorf("invariants: N6: %v shown twice", l)
		case seen && i < prev:
			t.Errorf("invariants: N6: %v shown after %v's later %v (out of order or repeated)", l, l.From, sent[l.From][prev])
		default:
			last[l.From] = i
		}
	}
}

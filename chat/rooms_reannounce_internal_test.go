package chat

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// When a room's member re-announces its subscription: only after a member
// its router lists has refused it for reannounceAfter with no answer
// between, at most once per reannounceEvery in the room, and once per
// refusing member while that member stays in the room (a member that
// refuses on purpose cannot make us churn the room every minute).
func TestReannounceWhen(t *testing.T) {
	a, b, gone := peer.ID("a"), peer.ID("b"), peer.ID("gone")
	members := []peer.ID{a, b}
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		name string
		do   func(r *reannouncer) bool
		want bool
	}{
		{"a refuses a first time", func(r *reannouncer) bool { return r.due(a, members, at(0)) }, false},
		{"a refuses 1 s later", func(r *reannouncer) bool { return r.due(a, members, at(time.Second)) }, false},
		{"a answers: the streak ends", func(r *reannouncer) bool { r.answered(a); return false }, false},
		{"a refuses 3 s after its first refusal, but after its answer", func(r *reannouncer) bool {
			return r.due(a, members, at(3*time.Second))
		}, false},
		{"a refuses for 3 s in a row", func(r *reannouncer) bool { return r.due(a, members, at(6*time.Second)) }, true},
		{"b refuses for 3 s in a row within the minute", func(r *reannouncer) bool {
			r.due(b, members, at(7*time.Second))
			return r.due(b, members, at(11*time.Second))
		}, false},
		{"b still refusing a minute later", func(r *reannouncer) bool { return r.due(b, members, at(70*time.Second)) }, true},
		{"a refusing again, a minute later: not for a again", func(r *reannouncer) bool {
			r.due(a, members, at(140*time.Second))
			return r.due(a, members, at(150*time.Second))
		}, false},
		{"a left the room and came back, refusing for 3 s", func(r *reannouncer) bool {
			r.left(a)
			r.due(a, members, at(151*time.Second))
			return r.due(a, members, at(155*time.Second))
		}, true},
		{"a peer our router does not list is no reason", func(r *reannouncer) bool {
			r.due(gone, members, at(300*time.Second))
			return r.due(gone, members, at(400*time.Second))
		}, false},
	}
	r := newReannouncer()
	for _, s := range steps {
		if got := s.do(r); got != s.want {
			t.Fatalf("%s: re-announce %v, want %v", s.name, got, s.want)
		}
	}
	// Members the router no longer lists are forgotten.
	r.due(a, []peer.ID{a}, at(500*time.Second))
	if _, ok := r.refused[b]; ok || r.done[b] {
		t.Errorf("b, no longer listed, still remembered: refused %v, done %v", r.refused, r.done)
	}
}

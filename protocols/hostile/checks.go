package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// early is how much sooner than the deadline, as the attacker measures it,
// the victim may give up: its clock starts when its handler runs, a moment
// before the attacker's Open returns and its own clock starts.
func early(deadline time.Duration) time.Duration { return deadline - deadline/10 }

// checkBound bounds a check's waits beyond the deadline it checks, so that a
// victim that never gives up fails the test rather than hangs it.
const checkBound = 30 * time.Second

// CheckDeadline is B6, slowloris: it checks victim's per-stream deadline on
// spec's protocol against Valid written one byte at a time (slow enough to
// take twice the deadline) and against a negotiated, silent stream: the
// victim gives up on each at the deadline, not before, and before the frame
// is done. The attacker's peerstore must hold the victim's addresses.
func CheckDeadline(t testing.TB, atk *Attacker, victim peer.ID, spec Spec, deadline time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline+checkBound)
	defer cancel()
	st, err := atk.Open(ctx, victim, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	frame := spec.Valid()
	interval := 2 * deadline / time.Duration(len(frame)) // the frame would take twice the deadline
	n, dripped := st.Drip(ctx, frame, interval)
	st.Reset()
	if n == len(frame) || dripped < early(deadline) || ctx.Err() != nil {
		t.Errorf("%s drip: %d of %d bytes written in %v; want the victim to stop it at %v", spec.Name, n, len(frame), dripped, deadline)
	}
	st, err = atk.Open(ctx, victim, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	took, gaveUp := st.Silent(ctx)
	st.Reset()
	if !gaveUp || took < early(deadline) {
		t.Errorf("%s silent: victim gave up %v after %v; want it to at %v", spec.Name, gaveUp, took, deadline)
	}
	t.Logf("%s: dripped %d of %d bytes before the victim closed at %v; silent stream closed after %v", spec.Name, n, len(frame), dripped, took)
}

// CheckPerPeerLimit is B6 with many streams: it checks that a peer holding
// limit silent streams (the service's per-peer StreamsInbound) gets no
// more (the next is reset at once, long before the deadline), that another
// peer is served meanwhile (serve), and that the streams held end at the
// deadline.
func CheckPerPeerLimit(t testing.TB, atk *Attacker, victim peer.ID, spec Spec, limit int,
	deadline time.Duration, serve func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline+checkBound)
	defer cancel()
	held := make([]*Stream, limit)
	for i := range held {
		st, err := atk.Open(ctx, victim, spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		held[i] = st
	}
	start := time.Now()
	// The victim resets the stream once negotiated (its handler's
	// SetService fails), or while negotiating.
	extra, err := atk.Open(ctx, victim, spec.ID)
	if err == nil {
		extra.Send(spec.Valid())
		ans := extra.Answer(spec, deadline)
		extra.Reset()
		if !ans.Reset() {
			t.Errorf("%s: stream %d of one peer answered %+v; want a reset", spec.Name, limit+1, ans)
		}
	}
	if time.Since(start) > deadline/2 {
		t.Errorf("%s: stream %d of one peer refused after %v; want at once", spec.Name, limit+1, time.Since(start))
	}
	serve()
	for i, st := range held {
		if took, gaveUp := st.Silent(ctx); !gaveUp {
			t.Errorf("%s: held stream %d still open after %v", spec.Name, i, took)
		}
	}
	if time.Since(start) < deadline/2 {
		t.Errorf("%s: held streams closed after %v, before the deadline %v", spec.Name, time.Since(start), deadline)
	}
}

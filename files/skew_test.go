package files

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols/invariants"
)

// TestF7OfferClockSkew: F7 for file offers, through injected clocks
// (WithClock). No time crosses the files protocol and nothing a peer sends
// expires (protocols/doc.go, "Clocks"): with the sender's clock off by ±1
// h or ±1 day, the receiver's clock the other way, an offer is held and,
// accepted, received byte for byte (N1); a second offer still waits after
// the receiver's clock jumps two days ahead and two days back, and is
// accepted then. The receiver's per-peer offer bucket runs on its clock
// and lets the honest offers through throughout.
func TestF7OfferClockSkew(t *testing.T) {
	const day = 24 * time.Hour
	for _, skew := range []time.Duration{-day, -time.Hour, time.Hour, day} {
		t.Run(fmt.Sprintf("sender %v off", skew), func(t *testing.T) {
			invariants.NoLeaks(t, libp2pLingering...)
			sendClock, recvClock := newFakeClock(), newFakeClock()
			sendClock.add(skew)
			recvClock.add(-skew)
			a := newNodeWith(t, Config{}, []Option{WithClock(sendClock.now)})
			b := newNodeWith(t, Config{}, []Option{WithClock(recvClock.now)})
			know(a, b)
			src := filepath.Join(t.TempDir(), "skewed.bin")
			randomFile(t, src, 3<<20+7)

			out, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			offer := b.waitOffer(t)
			dir := t.TempDir()
			if _, err := b.svc.Accept(t.Context(), offer.ID, ReceiveOptions{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			b.waitState(t, offer.ID, StateDone)
			a.waitState(t, out.ID, StateDone)
			invariants.SameFile(t, src, filepath.Join(dir, "skewed.bin")) // N1

			out2, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			a.waitFor(t, out2.ID, "offer held", func(tr Transfer) bool { return tr.Notified })
			held, err := b.store.TransferByRemote(t.Context(), a.h.ID(), out2.ID)
			if err != nil {
				t.Fatal(err)
			}
			recvClock.add(2 * day)
			recvClock.add(-4 * day)
			if tr, _ := b.store.Transfer(t.Context(), held.ID); tr.State != StateOffered {
				t.Fatalf("after the receiver's clock jumped, the waiting offer is %s", tr.State)
			}
			dir2 := t.TempDir()
			if _, err := b.svc.Accept(t.Context(), held.ID, ReceiveOptions{Dir: dir2}); err != nil {
				t.Fatal(err)
			}
			b.waitState(t, held.ID, StateDone)
			invariants.SameFile(t, src, filepath.Join(dir2, "skewed.bin"))                // N1
			invariants.ScopesIdle(t, a.h.Network().ResourceManager(), false, ServiceName) // N7
			invariants.ScopesIdle(t, b.h.Network().ResourceManager(), false, ServiceName)
		})
	}
}

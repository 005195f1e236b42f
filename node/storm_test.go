package node_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// rawOffer offers manifest m to p on a stream of its own, as a hostile
// sender that skips the files service would, and returns the answer.
func rawOffer(ctx context.Context, h host.Host, p peer.ID, m []byte) (protocols.FilesFrame, error) {
	s, err := h.NewStream(ctx, p, protocols.FilesProtocol)
	if err != nil {
		return protocols.FilesFrame{}, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(30 * time.Second))
	var id [16]byte
	rand.Read(id[:])
	if err := protocols.NewFilesWriter(s).Write(protocols.FilesFrame{Offer: &protocols.FileOffer{TransferID: id, Manifest: m}}); err != nil {
		s.Reset()
		return protocols.FilesFrame{}, err
	}
	return protocols.NewFilesReader(s).Read(protocols.MaxFilesFrame)
}

// oneFileManifest is the manifest of one 1-byte file.
func oneFileManifest(t testing.TB) []byte {
	t.Helper()
	m := &protocols.Manifest{Entries: []protocols.Entry{{Path: "x.txt", Size: 1, Mode: 0o644,
		Chunks: []protocols.Hash{protocols.HashChunk([]byte("x"))}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stormCounts are the answers a storm got.
type stormCounts struct {
	acked, limited, other atomic.Int64
	firstOther            atomic.Value // error: the first other answer
}

// storm offers from h to p with workers streams at once until ctx ends.
func storm(ctx context.Context, h host.Host, p peer.ID, m []byte, workers int, c *stormCounts) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				f, err := rawOffer(ctx, h, p, m)
				var re *protocols.RemoteError
				switch {
				case err == nil && f.OfferAck != nil:
					c.acked.Add(1)
				case err == nil && f.Error != nil && f.Error.Code == protocols.CodeRateLimited,
					errors.As(err, &re) && re.Code == protocols.CodeRateLimited:
					c.limited.Add(1)
				case ctx.Err() == nil:
					c.other.Add(1)
					c.firstOther.CompareAndSwap(nil, fmt.Errorf("%v (frame %+v)", err, f))
				}
			}
		})
	}
	wg.Wait()
}

// RELIABILITY L7: a contact storms N with file offers (raw offers on
// streams of their own, 8 at once: the files service's per-peer stream
// limit) for stormFor, at well over 10,000 a minute. N holds 16 of them
// (files.Config.MaxPendingOffers) and answers every other one RATE_LIMITED
// without storing it; meanwhile another contact's offer, sent through the
// files service as kith sends, reaches N's event stream as an offer
// within 1 s.
func TestOfferStormFromOnePeer(t *testing.T) {
	const (
		stormFor = 5 * time.Second
		minRate  = 10000.0 / 60 // offers per second
	)
	n, b := nodetest.Start(t), nodetest.Start(t)
	a := bareHost(t)
	befriend(t, n, b, "nora", "ben")
	if _, err := n.AddContact(t.Context(), "storm", a.ID().String()); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(t.Context(), n.ID()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "honest.txt")
	if err := os.WriteFile(file, []byte("from ben"), 0o600); err != nil {
		t.Fatal(err)
	}
	events, cancel := n.Events().Subscribe()
	defer cancel()

	ctx, stop := context.WithTimeout(t.Context(), stormFor)
	defer stop()
	var c stormCounts
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); storm(ctx, a, n.ID(), oneFileManifest(t), 8, &c) }()

	// Once the queue is full and the storm is being refused, ben offers.
	for c.limited.Load() < 100 {
		select {
		case <-done:
			t.Fatalf("the storm ended before N refused 100 offers: %d acked, %d other", c.acked.Load(), c.other.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	sent := time.Now()
	if _, err := b.SendFiles(t.Context(), "nora", []string{file}); err != nil {
		t.Fatal(err)
	}
	offer := waitEvent(t, events, func(ev node.Event) bool {
		return ev.Type == node.EventTransfer && ev.Kind == node.TransferOffer && ev.Transfer.Peer == b.ID().String()
	})
	prompt := time.Since(sent)
	<-done
	elapsed := time.Since(start)

	total := c.acked.Load() + c.limited.Load() + c.other.Load()
	rate := float64(total) / elapsed.Seconds()
	t.Logf("storm: %d offers in %v (%.0f/s = %.0f/min): %d held, %d RATE_LIMITED, %d other; ben's offer prompted after %v",
		total, elapsed.Round(time.Millisecond), rate, rate*60, c.acked.Load(), c.limited.Load(), c.other.Load(),
		prompt.Round(time.Millisecond))
	if e := c.firstOther.Load(); e != nil {
		t.Logf("first other answer: %v", e)
	}
	if rate < minRate {
		t.Errorf("the storm reached %.0f offers/min, want >= 10,000 (the test did not test L7)", rate*60)
	}
	if c.acked.Load() != 16 {
		t.Errorf("N held %d of the storm's offers, want 16", c.acked.Load())
	}
	if prompt > time.Second {
		t.Errorf("ben's offer prompted after %v during the storm, want <= 1 s", prompt)
	}
	ts, err := n.Transfers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, tr := range ts {
		if tr.Peer == a.ID().String() {
			held++
		}
	}
	if held != 16 || offer.Transfer.State != "offered" {
		t.Errorf("N stores %d of the storm's offers (want 16); ben's is %s", held, offer.Transfer.State)
	}
}

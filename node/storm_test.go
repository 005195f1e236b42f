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

	"github.com/kithnet/kith/files"
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

// stormCounts are the answers a storm got: OfferAck, RATE_LIMITED by the
// per-peer token bucket (files.ErrOfferRate), RATE_LIMITED by the cap on
// waiting offers (files.ErrTooManyOffers), anything else.
type stormCounts struct {
	acked, limited, capped, other atomic.Int64
	firstOther                    atomic.Value // error: the first other answer
}

// storm offers from h to p with workers streams at once until ctx ends.
func storm(ctx context.Context, h host.Host, p peer.ID, m []byte, workers int, c *stormCounts) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				f, err := rawOffer(ctx, h, p, m)
				var re *protocols.RemoteError
				if err == nil && f.Error != nil {
					re = f.Error
				} else if !errors.As(err, &re) {
					re = nil
				}
				switch {
				case err == nil && f.OfferAck != nil:
					c.acked.Add(1)
				case re != nil && re.Code == protocols.CodeRateLimited && re.Message == files.ErrTooManyOffers.Error():
					c.capped.Add(1)
				case re != nil && re.Code == protocols.CodeRateLimited && re.Message == files.ErrOfferRate.Error():
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
// limit) for stormFor, at well over 10,000 a minute. N's per-peer token
// bucket (files.Config.OfferBurst 16, OfferRate 2 a second) lets no more
// than its burst and rate through and answers the rest RATE_LIMITED before
// parsing them; of those it lets through, N holds 16
// (files.Config.MaxPendingOffers) and answers the others RATE_LIMITED too,
// storing none of them. Meanwhile another contact's offer, sent through
// the files service as kith sends, reaches N's event stream as an offer
// within 1 s.
func TestOfferStormFromOnePeer(t *testing.T) {
	const (
		stormFor = 5 * time.Second
		minRate  = 10000.0 / 60 // offers per second
		burst    = 16           // files.Config.OfferBurst's default
		perSec   = 2            // files.Config.OfferRate's default
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
	for c.limited.Load()+c.capped.Load() < 100 {
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

	total := c.acked.Load() + c.limited.Load() + c.capped.Load() + c.other.Load()
	rate := float64(total) / elapsed.Seconds()
	passed := c.acked.Load() + c.capped.Load() // what the bucket let through
	t.Logf("storm: %d offers in %v (%.0f/s = %.0f/min): %d RATE_LIMITED by the bucket, %d passed it (%d held, %d RATE_LIMITED by the pending cap), %d other; ben's offer prompted after %v",
		total, elapsed.Round(time.Millisecond), rate, rate*60, c.limited.Load(), passed, c.acked.Load(), c.capped.Load(),
		c.other.Load(), prompt.Round(time.Millisecond))
	if e := c.firstOther.Load(); e != nil {
		t.Logf("first other answer: %v", e)
	}
	if rate < minRate {
		t.Errorf("the storm reached %.0f offers/min, want >= 10,000 (the test did not test L7)", rate*60)
	}
	if c.acked.Load() != 16 {
		t.Errorf("N held %d of the storm's offers, want 16", c.acked.Load())
	}
	// The bucket's bound: its burst, its rate over the storm (the storm
	// began after start and ended before elapsed), and one token of slack.
	if bound := burst + perSec*elapsed.Seconds() + 1; float64(passed) > bound {
		t.Errorf("the token bucket let %d offers through in %v, want <= %.0f (burst %d + %d/s)", passed, elapsed, bound, burst, perSec)
	}
	if c.limited.Load() == 0 || c.limited.Load() < total-int64(burst+perSec*elapsed.Seconds()+1)-c.other.Load() {
		t.Errorf("the token bucket refused %d of %d offers", c.limited.Load(), total)
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

package store

import (
	"fmt"
	"testing"

	"github.com/kithnet/kith/files"
)

// BenchmarkAddIncoming stores messages one after another; each is committed
// and synced (synchronous=FULL) before the next starts, so this measures the
// disk's sync latency more than SQLite.
func BenchmarkAddIncoming(b *testing.B) {
	s, _ := newStore(b)
	p := newPeer(b)
	ctx := b.Context()
	for b.Loop() {
		if _, err := s.AddIncoming(ctx, msg(p, "a message of some forty characters or so")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAddIncomingParallel stores messages from GOMAXPROCS goroutines at
// once; they queue for the one write connection.
func BenchmarkAddIncomingParallel(b *testing.B) {
	s, _ := newStore(b)
	p := newPeer(b)
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AddIncoming(ctx, msg(p, "a message of some forty characters or so")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkUpdateTransferVerified updates a transfer's bitmap and DoneBytes
// as files does after verifying chunks, one statement each, committed and
// synced before the next. 64 KiB is the largest bitmap (2^19 chunks). The
// transfer has a 4 MiB manifest, which the updates do not rewrite: it is in
// a table of its own.
func BenchmarkUpdateTransferVerified(b *testing.B) {
	for _, size := range []int64{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("bitmap=%dKiB", size>>10), func(b *testing.B) {
			s, _ := newStore(b)
			tr := newTransfer(newPeer(b), files.In)
			tr.Manifest, tr.Verified = make([]byte, 4<<20), make([]byte, size)
			mustCreate(b, s, tr)
			ctx := b.Context()
			var done int64
			for b.Loop() {
				bit := done % (size * 8)
				tr.Verified[bit/8] |= 1 << (bit % 8)
				done++
				if err := s.UpdateTransfer(ctx, tr.ID, files.Update{DoneBytes: &done, Verified: tr.Verified}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

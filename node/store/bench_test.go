package store

import "testing"

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

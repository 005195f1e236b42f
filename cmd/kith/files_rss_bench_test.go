package main

import (
	"os"
	"testing"
)

// BenchmarkReceiverPeakRSS reports how much the receiving daemon's peak
// resident set (VmHWM) grows during a transfer of S/4 and of S bytes (S is
// $KITH_BENCH_SIZE), each on a fresh pair of daemons over TCP, and the
// ratio of the two: a receiver whose memory does not depend on the size
// gives ≈ 1.
func BenchmarkReceiverPeakRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skipf("reading a process's memory use needs /proc: %v", err)
	}
	size := benchSize(b)
	sizes := []int64{size / 4, size}
	grow := make([]float64, len(sizes))
	n := 0
	for b.Loop() {
		n++
		for k, sz := range sizes {
			src, sum := benchSource(b, sz)
			p := startPair(b, benchTransports[0].listen)
			_, before := procMemMiB(b, p.b.cmd.Process.Pid)
			p.kithSend(b, src, sz, sum)
			_, after := procMemMiB(b, p.b.cmd.Process.Pid)
			p.stop(b)
			b.Logf("#%d %s: receiver VmHWM %.1f MiB before, %.1f MiB after: +%.1f MiB", n, sizeText(sz), before, after, after-before)
			grow[k] += after - before
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(grow[0]/float64(n), "peak-MB-quarter")
	b.ReportMetric(grow[1]/float64(n), "peak-MB-full")
	b.ReportMetric(grow[1]/grow[0], "full/quarter")
}

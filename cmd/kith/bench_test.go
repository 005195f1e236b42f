package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleFor is how long BenchmarkIdleDaemonRSS leaves the daemon idle before it
// reads the daemon's memory use.
const idleFor = 60 * time.Second

// idleEnv overrides idleFor with a Go duration (e.g. "5s") for a quick check.
const idleEnv = "KITH_BENCH_IDLE"

// BenchmarkIdleDaemonRSS starts one `kith daemon` on loopback with no peers,
// leaves it idle for idleFor, and reports its resident set (VmRSS, RSS-MB)
// and peak resident set (VmHWM, peak-RSS-MB) from /proc, in MiB.
//
// The figures describe one process after a span of wall-clock time, not a
// repeatable operation: measuring again would only add another idle wait and
// give the same answer. So the measurement runs once, in the first iteration
// of b.Loop (which runs this function once per -count); any further
// iterations that -benchtime asks for do nothing. ns/op would only echo the
// idle time, so it is suppressed and idle-s reports that time instead.
func BenchmarkIdleDaemonRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skipf("reading a process's memory use needs /proc: %v", err)
	}
	idle := idleDuration(b)
	d := startDaemon(b, newHome(b), "daemon")
	measured := false
	var rss, peak float64
	for b.Loop() {
		if measured {
			continue
		}
		measured = true
		// Waiting is the measured condition here, not synchronisation.
		select {
		case <-time.After(idle):
		case <-d.done:
			b.Fatalf("daemon exited while idle: %v\n%s", d.cmd.ProcessState, d.logs())
		}
		rss, peak = procMemMiB(b, d.cmd.Process.Pid)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rss, "RSS-MB")
	b.ReportMetric(peak, "peak-RSS-MB")
	b.ReportMetric(idle.Seconds(), "idle-s")
}

// idleDuration is idleFor, or the duration in $KITH_BENCH_IDLE.
func idleDuration(b *testing.B) time.Duration {
	s := os.Getenv(idleEnv)
	if s == "" {
		return idleFor
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		b.Fatalf("%s=%q: want a duration such as 5s", idleEnv, s)
	}
	return d
}

// procMemMiB reads VmRSS and VmHWM of process pid from /proc, in MiB.
func procMemMiB(b *testing.B, pid int) (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kib := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// e.g. "VmRSS:	   41236 kB"; /proc's kB are KiB.
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			b.Fatalf("/proc/%d/status: unexpected line %q", pid, sc.Text())
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			b.Fatalf("/proc/%d/status: %q: %v", pid, sc.Text(), err)
		}
		kib[name] = n
	}
	for _, name := range []string{"VmRSS", "VmHWM"} {
		if _, ok := kib[name]; !ok {
			b.Fatalf("/proc/%d/status has no %s", pid, name)
		}
	}
	return kib["VmRSS"] / 1024, kib["VmHWM"] / 1024
}

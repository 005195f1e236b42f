package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// relayPeers is how many peers hold a reservation in BenchmarkRelayReserved.
const relayPeers = 200

// BenchmarkRelayReserved starts `kith relay` as a child process, has 200
// in-process hosts (allowed through --allow-file) reserve a slot on it, then
// holds the reservations for the idle span ($KITH_BENCH_IDLE, default 60 s)
// and reports the relay's resident set (RSS-MB), its CPU use while holding
// them (CPU-%, of one core) and the time per reservation (ms/reservation).
// As with BenchmarkIdleDaemonRSS, it measures once per -count.
func BenchmarkRelayReserved(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skipf("reading a process's CPU and memory use needs /proc: %v", err)
	}
	keys, allowFile := relayClientKeys(b)
	port := freeTCPPort(b)
	announce := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	d := startDaemon(b, newHome(b), "relay", "--listen", announce, "--announce", announce, "--allow-file", allowFile)
	relayAddr := relayAddrOn(b, d, announce)
	measured := false
	for b.Loop() {
		if measured {
			continue
		}
		measured = true
		start := time.Now()
		clients := reserveAll(b, keys, relayAddr)
		perReservation := time.Since(start) / time.Duration(len(clients))
		cpu0 := procCPU(b, d.cmd.Process.Pid)
		idle := idleDuration(b)
		select {
		case <-time.After(idle): // holding the reservations is what is measured
		case <-d.done:
			b.Fatalf("relay exited: %v\n%s", d.cmd.ProcessState, d.logs())
		}
		cpu := procCPU(b, d.cmd.Process.Pid) - cpu0
		rss, _ := procMemMiB(b, d.cmd.Process.Pid)
		b.ReportMetric(rss, "RSS-MB")
		b.ReportMetric(100*cpu.Seconds()/idle.Seconds(), "CPU-%")
		b.ReportMetric(float64(perReservation.Microseconds())/1000, "ms/reservation")
	}
	b.ReportMetric(0, "ns/op")
}

// relayClientKeys makes the clients' keys and an allow file naming them.
func relayClientKeys(b *testing.B) ([]crypto.PrivKey, string) {
	var keys []crypto.PrivKey
	var ids []string
	for range relayPeers {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		keys, ids = append(keys, k), append(ids, id.String())
	}
	f := filepath.Join(b.TempDir(), "allow")
	if err := os.WriteFile(f, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return keys, f
}

// freeTCPPort asks the kernel for a free loopback port (port 0) and releases
// it, so the relay can be told to announce the address it will listen on.
func freeTCPPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// relayAddrOn reads the relay's printed multiaddrs until the announced one.
func relayAddrOn(b *testing.B, d *daemon, announce string) peer.AddrInfo {
	for {
		line := d.line(b)
		if strings.HasPrefix(line, announce+"/p2p/") {
			ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(line))
			if err != nil {
				b.Fatal(err)
			}
			return *ai
		}
	}
}

// reserveAll starts a host per key and reserves a slot for each.
func reserveAll(b *testing.B, keys []crypto.PrivKey, relay peer.AddrInfo) []host.Host {
	var hs []host.Host
	for i, k := range keys {
		h, err := libp2p.New(libp2p.Identity(k), libp2p.NoListenAddrs)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		if _, err := circuitclient.Reserve(b.Context(), h, relay); err != nil {
			b.Fatalf("reservation %d: %v", i, err)
		}
		hs = append(hs, h)
	}
	return hs
}

// procCPU is the user+system CPU time process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

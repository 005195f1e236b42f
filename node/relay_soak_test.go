//go:build soak

package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/node"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// relaySoakProtocol carries one stream of pseudo-random bytes: an 8-byte
// big-endian length, then that many bytes; the receiver answers the
// SHA-256 of what it read.
const relaySoakProtocol protocol.ID = "/kith-soak/relay-copy/1.0.0"

// TestSoakRelayConcurrent is row L2 of RELIABILITY.md's load table, in
// process (mock): one kith relay node on loopback TCP that allows every
// peer of the test (its allow list: the larger limits a relay gives the
// peers it serves), 40 pairs of bare libp2p hosts, each receiver holding a
// reservation on the relay, and all 40 copies at once through it: 32 pairs
// × 16 MiB and 8 pairs × 64 MiB (1 GiB in all), 256 KiB writes, each on
// one stream over the relayed connection (a circuit carries its own
// secure channel inside the legs to the relay: everything is encrypted
// twice, on 2 shared cores).
//
// It requires: every copy complete with the receiver's SHA-256 equal to the
// sender's (no stream reset); within each size, no copy longer than 3× the
// median; and an aggregate of at least 60 MB/s (bytes copied over the wall
// time of the whole batch). The relay's RSS (row: < 300 MiB) cannot be told
// apart from the 80 hosts' in one process: the lab variant measures it.
func TestSoakRelayConcurrent(t *testing.T) {
	type pair struct {
		size     int64
		src, dst host.Host
	}
	var pairs []pair
	for i := range 40 {
		size := int64(16 << 20)
		if i >= 32 {
			size = 64 << 20
		}
		pairs = append(pairs, pair{size: size, src: bareHost(t), dst: bareHost(t)})
	}
	var allow []string
	for _, p := range pairs {
		allow = append(allow, p.src.ID().String(), p.dst.ID().String())
	}
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Allow = allow
		cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	})
	ctx := network.WithAllowLimitedConn(t.Context(), "soak")
	for _, p := range pairs {
		p.dst.SetStreamHandler(relaySoakProtocol, receiveHashed)
		if _, err := circuitclient.Reserve(t.Context(), p.dst, relayInfo(r)); err != nil {
			t.Fatalf("reserve: %v", err)
		}
		if err := p.src.Connect(ctx, circuitTo(r, p.dst.ID())); err != nil {
			t.Fatalf("connect through the relay: %v", err)
		}
	}

	type result struct {
		size int64
		took time.Duration
		err  error
	}
	results := make([]result, len(pairs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range pairs {
		wg.Go(func() {
			t0 := time.Now()
			err := sendHashed(ctx, p.src, p.dst, p.size, uint64(i))
			results[i] = result{p.size, time.Since(t0), err}
		})
	}
	wg.Wait()
	wall := time.Since(start)

	var total int64
	bySize := map[int64][]time.Duration{}
	for i, res := range results {
		if res.err != nil {
			t.Errorf("pair %d (%d MiB): %v", i, res.size>>20, res.err)
			continue
		}
		total += res.size
		bySize[res.size] = append(bySize[res.size], res.took)
	}
	agg := float64(total) / 1e6 / wall.Seconds()
	t.Logf("L2: %d of %d copies complete with equal hashes, %d MiB in %v: %.0f MB/s in all",
		len(bySize[16<<20])+len(bySize[64<<20]), len(pairs), total>>20, wall.Round(time.Millisecond), agg)
	for _, size := range []int64{16 << 20, 64 << 20} {
		d := bySize[size]
		if len(d) == 0 {
			continue
		}
		med, worst := chattest.Quantile(d, 0.5), chattest.Quantile(d, 1)
		t.Logf("L2: %d MiB copies: median %v, slowest %v (%.2f× median)", size>>20, med.Round(time.Millisecond),
			worst.Round(time.Millisecond), float64(worst)/float64(med))
		chattest.Goal(t, worst <= 3*med, "L2 slowest %d MiB copy %v, goal ≤ 3× the median %v", size>>20, worst, med)
	}
	chattest.Goal(t, agg >= 60, "L2 aggregate %.0f MB/s through the relay, goal ≥ 60", agg)
}

// sendHashed opens a stream to dst, sends size pseudo-random bytes (seeded
// by seed) and checks the receiver's SHA-256 against its own.
func sendHashed(ctx context.Context, src, dst host.Host, size int64, seed uint64) error {
	s, err := src.NewStream(ctx, dst.ID(), relaySoakProtocol)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	if !isRelayed(s.Conn()) {
		s.Reset()
		return fmt.Errorf("the stream is on a direct connection (%s), not through the relay", s.Conn().RemoteMultiaddr())
	}
	s.SetDeadline(time.Now().Add(5 * time.Minute))
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	h := sha256.New()
	if err := binary.Write(s, binary.BigEndian, size); err != nil {
		s.Reset()
		return err
	}
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		rng.Read(buf)
		h.Write(buf)
		if _, err := s.Write(buf); err != nil {
			s.Reset()
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(s, got); err != nil {
		return fmt.Errorf("read the receiver's hash: %w", err)
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		return fmt.Errorf("the receiver's SHA-256 differs")
	}
	return nil
}

// receiveHashed reads a length and that many bytes and answers their
// SHA-256.
func receiveHashed(s network.Stream) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(5 * time.Minute))
	var size int64
	if err := binary.Read(s, binary.BigEndian, &size); err != nil || size < 0 || size > 1<<30 {
		s.Reset()
		return
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	if n, err := io.CopyBuffer(h, io.LimitReader(s, size), buf); err != nil || n != size {
		s.Reset()
		return
	}
	s.Write(h.Sum(nil))
}

// isRelayed says whether c goes through a relay.
func isRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

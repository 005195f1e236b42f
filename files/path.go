package files

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// Relayed connections whose limits let a bulk transfer make real progress
// before the relay cuts them: enough data for the rest of the transfer, or
// at least minRelayData in at least minRelayTime. A cut transfer resumes on
// the next connection. go-libp2p's default relay (128 KiB, 2 min) is below.
const (
	minRelayData = 64 << 20
	minRelayTime = 5 * time.Minute
)

// connPath names the path a connection takes: "direct" or "relayed", and
// the relay's peer ID for a relayed one.
func connPath(c network.Conn) (string, peer.ID) {
	addr := c.RemoteMultiaddr()
	if _, err := addr.ValueForProtocol(ma.P_CIRCUIT); err != nil {
		return "direct", ""
	}
	relay, _ := ma.SplitFunc(addr, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
	if id, err := peer.AddrInfoFromP2pAddr(relay); err == nil {
		return "relayed", id.ID
	}
	return "relayed", ""
}

// bulkOK says whether a connection can carry need more bytes of a transfer.
func bulkOK(c network.Conn, need int64) bool {
	st := c.Stat()
	if !st.Limited {
		return true
	}
	data, _ := st.Extra[client.StatLimitData].(uint64)
	dur, _ := st.Extra[client.StatLimitDuration].(time.Duration)
	if data == 0 && dur == 0 {
		return false
	}
	return (data == 0 || data >= uint64(need)+1<<20 || data >= minRelayData) &&
		(dur == 0 || dur >= minRelayTime)
}

// bulkConn returns a connection to p that can carry need more bytes, if
// there is one; otherwise the best limited one, if any.
func (s *Service) bulkConn(p peer.ID, need int64) (ok network.Conn, limited network.Conn) {
	for _, c := range s.h.Network().ConnsToPeer(p) {
		if c.IsClosed() {
			continue
		}
		if bulkOK(c, need) {
			if ok == nil || !c.Stat().Limited {
				ok = c
			}
		} else {
			limited = c
		}
	}
	return ok, limited
}

// waitBulkConn connects to p and waits, at most WaitDirect, for a
// connection that can carry need more bytes: a direct one (hole punching
// runs when a peer connects over a relay) or a relayed one with large enough
// limits. It returns whether that connection is limited (streams on it must
// say so), or ErrLimitedPath explaining what to do.
func (s *Service) waitBulkConn(ctx context.Context, p peer.ID, need int64) (bool, error) {
	sub, err := s.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return false, fmt.Errorf("files: subscribe to peer events: %w", err)
	}
	defer sub.Close()
	// Without the limited-connection allowance, Connect also tries for a
	// direct connection when only a relayed one exists.
	if err := s.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		if err := s.h.Connect(network.WithAllowLimitedConn(ctx, "files"), peer.AddrInfo{ID: p}); err != nil {
			return false, fmt.Errorf("files: connect to %s: %w", p, err)
		}
	}
	timer := time.NewTimer(s.cfg.WaitDirect)
	defer timer.Stop()
	for {
		c, lim := s.bulkConn(p, need)
		if c != nil {
			return c.Stat().Limited, nil
		}
		if lim == nil {
			return false, fmt.Errorf("files: connection to %s lost", p)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-sub.Out():
		case <-timer.C:
			_, relay := connPath(lim)
			return false, fmt.Errorf("%w (%s): no direct connection after %s; a relay with larger limits for you (kith relay --allow YOUR-ID) or a direct route (port forward, same network) is needed",
				ErrLimitedPath, describeRelay(relay, lim), s.cfg.WaitDirect)
		}
	}
}

// describeRelay says which relay a limited connection goes through, and
// its limits.
func describeRelay(relay peer.ID, c network.Conn) string {
	st := c.Stat()
	data, _ := st.Extra[client.StatLimitData].(uint64)
	dur, _ := st.Extra[client.StatLimitDuration].(time.Duration)
	return fmt.Sprintf("via relay %s, which allows %s and %s per connection", relay, humanBytes(int64(data)), dur)
}

// rateMeter throttles progress events and measures the rate over the last
// few seconds.
type rateMeter struct {
	mu      sync.Mutex
	total   int64
	last    time.Time // last event
	samples []sample
}

type sample struct {
	at time.Time
	n  int64
}

const (
	progressEvery = 250 * time.Millisecond
	rateWindow    = 3 * time.Second
)

func (s *Service) meter(id TransferID) *rateMeter {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.rates[id]
	if m == nil {
		m = &rateMeter{}
		s.rates[id] = m
	}
	return m
}

func (s *Service) forgetMeter(id TransferID) {
	s.mu.Lock()
	delete(s.rates, id)
	s.mu.Unlock()
}

// add counts n bytes and, at most every progressEvery, says to report the
// total and the rate.
func (m *rateMeter) add(n int64) (total int64, rate float64, report bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.total += n
	if now.Sub(m.last) < progressEvery {
		return m.total, 0, false
	}
	m.last = now
	m.samples = append(m.samples, sample{now, m.total})
	for len(m.samples) > 1 && now.Sub(m.samples[0].at) > rateWindow {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	if d := now.Sub(first.at).Seconds(); d > 0 {
		rate = float64(m.total-first.n) / d
	}
	return m.total, rate, true
}

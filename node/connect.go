package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// ErrUnknownPeer is returned when a PEER argument is not a contact name, a
// peer ID or a ticket.
var ErrUnknownPeer = errors.New("not a contact name, peer ID or ticket")

// ErrUnreachable is returned when a peer cannot be found or dialed.
var ErrUnreachable = errors.New("peer unreachable")

// ConnectTimeout bounds finding (through the DHT) and dialing a peer.
const ConnectTimeout = 30 * time.Second

// Resolve turns a PEER argument (contact name, peer ID or ticket) into a
// peer ID. A ticket's addresses are remembered for dialing.
func (n *Node) Resolve(ctx context.Context, target string) (peer.ID, error) {
	target = strings.TrimSpace(target)
	if c, err := n.store.ContactByName(ctx, target); err == nil {
		return c.PeerID, nil
	}
	if strings.HasPrefix(strings.ToLower(target), protocols.TicketPrefix) {
		t, err := protocols.ParseTicket(target)
		if err != nil {
			return "", err
		}
		n.host.Peerstore().AddAddrs(t.Peer, t.Addrs, peerstore.TempAddrTTL)
		return t.Peer, nil
	}
	if id, err := peer.Decode(target); err == nil {
		return id, nil
	}
	return "", fmt.Errorf("%q: %w", target, ErrUnknownPeer)
}

// Connect makes sure there is a connection to p, finding its addresses
// through the DHT when none are known.
func (n *Node) Connect(ctx context.Context, p peer.ID) error {
	if p == n.host.ID() {
		return fmt.Errorf("node: %s is this node", p)
	}
	if n.gater.Blocked(p) {
		return fmt.Errorf("node: %s is blocked", p)
	}
	if n.host.Network().Connectedness(p) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	// The host is a routed host: with no known addresses it asks the DHT.
	// A peer that has only just joined may not be in the DHT yet, so retry
	// with back-off until the deadline.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := n.host.Connect(ctx, peer.AddrInfo{ID: p})
		if err == nil {
			return nil
		}
		n.log.Debug("connect attempt failed", "peer", p, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: connect %s: %w: %w", p, ErrUnreachable, err)
		case <-time.After(wait):
		}
	}
}

// PingResult is one round trip of `kith ping`.
type PingResult struct {
	Seq    int     `json:"seq"`
	PeerID string  `json:"peer_id"`
	RTTMs  float64 `json:"rtt_ms"`
	Path   string  `json:"path"`
	Relay  string  `json:"relay,omitempty"`
	Addr   string  `json:"addr"`
}

// Ping connects to target (peer ID or ticket) and measures count round trips,
// interval apart, calling fn after each.
func (n *Node) Ping(ctx context.Context, target string, count int, interval time.Duration, fn func(PingResult)) error {
	p, err := n.Resolve(ctx, target)
	if err != nil {
		return err
	}
	if err := n.Connect(ctx, p); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(network.WithAllowLimitedConn(ctx, "ping"))
	defer cancel()
	results := ping.Ping(ctx, n.host, p)
	for seq := 1; seq <= count; seq++ {
		if seq > 1 && interval > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
		var res ping.Result
		select {
		case <-ctx.Done():
			return ctx.Err()
		case res = <-results:
		}
		if res.Error != nil {
			return fmt.Errorf("node: ping %s: %w", p, res.Error)
		}
		fn(n.pingResult(seq, p, res.RTT))
	}
	return nil
}

func (n *Node) pingResult(seq int, p peer.ID, rtt time.Duration) PingResult {
	r := PingResult{Seq: seq, PeerID: p.String(), RTTMs: ms(rtt)}
	if c := bestConn(n.host.Network().ConnsToPeer(p)); c != nil {
		r.Path, r.Relay = connPath(c)
		r.Addr = c.RemoteMultiaddr().String()
	}
	return r
}

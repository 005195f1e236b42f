package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Relay reservations and clock skew (RELIABILITY F7).
//
// A circuit v2 reservation states its expiry as an absolute UNIX time on
// the relay's clock. go-libp2p's client (circuitv2/client.Reserve) refuses
// a reservation whose expiry is before its own clock, and AutoRelay
// refreshes one when its own clock reaches two minutes before the expiry.
// The relay forgets a reservation at the expiry by its clock. So a node
// whose clock runs more than a reservation's lifetime (1 h) ahead of its
// relay's holds no reservation at all, although the relay granted it; and
// one whose clock runs behind refreshes late by as much, unreachable
// through the relay meanwhile (a day behind: for a day).
//
// relayKeeper keeps a node's reservations on its configured relays by
// elapsed time instead: it reserves on each configured relay (connecting
// to it if need be) while the node is private (when AutoRelay reserves
// too), and reserves again half a lifetime later by the monotonic clock,
// the lifetime being what the relay stated minus the local time when that
// is between 1/8 and 1 of kith's relays' lifetime, else kith's relays'
// lifetime. It takes
// whatever the relay grants, whatever the stated expiry says by the local
// clock, and advertises addresses through a relay on which it holds a
// reservation that AutoRelay does not (see addrs). AutoRelay still finds,
// reserves on and advertises the relays as before; when clocks agree the
// two refresh the same reservation (the relay keeps one per peer).

// relayReservationTTL is how long a kith relay keeps a reservation:
// go-libp2p's default, which kith's relays keep.
const relayReservationTTL = time.Hour

// reserveTimeout bounds one reservation request.
const reserveTimeout = 30 * time.Second

// keptReservation is a reservation the keeper holds.
type keptReservation struct {
	conn    network.Conn  // the connection it was made on
	granted time.Time     // when, with its monotonic reading
	refresh time.Duration // reserve again this long after granted
}

// relayKeeper holds and refreshes reservations on the configured relays.
type relayKeeper struct {
	h      host.Host
	relays []peer.AddrInfo
	ttl    time.Duration    // kith's relays' reservation lifetime
	now    func() time.Time // the wall clock, read only to estimate a lifetime
	log    *slog.Logger

	mu      sync.Mutex
	private bool // the node wants relays (AutoNAT says private or unknown)
	held    map[peer.ID]*keptReservation
	failed  map[peer.ID]time.Time // when a request to the relay last failed
	skewed  map[peer.ID]bool      // relays whose clock was said to be off
}

func newRelayKeeper(relays []peer.AddrInfo, ttl time.Duration, now func() time.Time, log *slog.Logger) *relayKeeper {
	if ttl <= 0 {
		ttl = relayReservationTTL
	}
	return &relayKeeper{relays: relays, ttl: ttl, now: now, log: log, held: make(map[peer.ID]*keptReservation),
		failed: make(map[peer.ID]time.Time), skewed: make(map[peer.ID]bool)}
}

// every is how often the keeper looks at its relays.
func (k *relayKeeper) every() time.Duration { return min(relayCheckEvery, k.ttl/8) }

// retryAfter is how long the keeper leaves a relay alone after a failed or
// refused request (AutoRelay, which backs off for an hour, tries too).
func (k *relayKeeper) retryAfter() time.Duration { return min(time.Minute, k.ttl/8) }

// run keeps the reservations until ctx ends.
func (k *relayKeeper) run(ctx context.Context) {
	sub, err := k.h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		k.log.Error("relays: no reachability events; reservations are refreshed by AutoRelay alone", "err", err)
		return
	}
	defer sub.Close()
	t := time.NewTicker(k.every())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			r := e.(event.EvtLocalReachabilityChanged).Reachability
			k.mu.Lock()
			k.private = r != network.ReachabilityPublic
			if !k.private {
				clear(k.held)
				clear(k.failed)
			}
			k.mu.Unlock()
		case <-t.C:
		}
		k.round(ctx)
	}
}

// round reserves on every relay whose reservation is missing or due.
func (k *relayKeeper) round(ctx context.Context) {
	k.mu.Lock()
	private := k.private
	k.mu.Unlock()
	if !private {
		return
	}
	for _, r := range k.relays {
		if !k.due(r.ID) {
			continue
		}
		if k.h.Network().Connectedness(r.ID) != network.Connected {
			cctx, cancel := context.WithTimeout(ctx, reserveTimeout)
			err := k.h.Connect(cctx, r)
			cancel()
			if err != nil {
				k.fail(r.ID, false)
				continue
			}
		}
		k.reserve(ctx, r.ID)
	}
}

// due reports whether the reservation on r is missing, lost with its
// connection, or half a lifetime old, and no request failed lately.
func (k *relayKeeper) due(r peer.ID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.failed[r]; ok && time.Since(f) < k.retryAfter() {
		return false
	}
	kr := k.held[r]
	return kr == nil || kr.conn.IsClosed() || time.Since(kr.granted) >= kr.refresh
}

// reserve asks relay r for a reservation and records what it granted.
func (k *relayKeeper) reserve(ctx context.Context, r peer.ID) {
	rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	expire, conn, err := reserveOn(rctx, k.h, r)
	if err != nil {
		// A relay that refused, or no longer relays, holds nothing for us.
		k.fail(r, errors.Is(err, errRefused) || !speaksHop(k.h, r))
		if ctx.Err() == nil {
			k.log.Debug("relays: reservation refused or failed", "relay", r, "err", err)
		}
		return
	}
	granted := time.Now()
	stated := expire.Sub(k.now())
	kr := &keptReservation{conn: conn, granted: granted, refresh: refreshAfter(stated, k.ttl)}
	// A kith relay states an expiry a lifetime ahead of its clock: further
	// off, the clocks disagree (go-libp2p would refuse the reservation or
	// renew it late; it is kept by elapsed time). Said once per relay.
	off := stated - k.ttl
	skewed := off < -5*time.Minute || off > 5*time.Minute
	k.mu.Lock()
	k.held[r] = kr
	delete(k.failed, r)
	say := skewed && !k.skewed[r]
	k.skewed[r] = skewed
	k.mu.Unlock()
	if say {
		k.log.Warn("relay's clock and this node's disagree; its reservation is renewed by elapsed time",
			"relay", r, "relay_ahead_by", off.Round(time.Second), "renew_every", kr.refresh)
	}
}

// fail holds off the next request to r and, when gone (the relay refused
// or stopped relaying), forgets the reservation on r. Otherwise it stands
// until its connection closes or its lifetime is over (see live).
func (k *relayKeeper) fail(r peer.ID, gone bool) {
	k.mu.Lock()
	if gone {
		delete(k.held, r)
	}
	k.failed[r] = time.Now()
	k.mu.Unlock()
}

// live reports whether the relay still holds kr: its connection is open
// and a lifetime has not passed (twice the refresh interval).
func (kr *keptReservation) live() bool {
	return !kr.conn.IsClosed() && time.Since(kr.granted) < 2*kr.refresh
}

// refreshAfter is when to reserve again, given the lifetime the relay
// stated (its expiry minus the local time) and kith's relays' lifetime:
// half the stated one when it is plausible, else half of ttl.
func refreshAfter(stated, ttl time.Duration) time.Duration {
	if stated < ttl/8 || stated > ttl {
		return ttl / 2
	}
	return stated / 2
}

// errReserve wraps every failed reservation request, errRefused those the
// relay answered with a refusal.
var (
	errReserve = errors.New("node: relay reservation")
	errRefused = errors.New("refused")
)

// reserveOn makes one circuit v2 reservation request to r, as go-libp2p's
// circuitv2/client.Reserve does, and returns the expiry the relay stated and
// the connection it was made on. Unlike Reserve it does not compare the
// expiry with the local clock: the relay keeps the reservation until the
// expiry by its own clock, whatever ours says.
func reserveOn(ctx context.Context, h host.Host, r peer.ID) (time.Time, network.Conn, error) {
	s, err := h.NewStream(ctx, r, proto.ProtoIDv2Hop)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: open stream: %w", errReserve, err)
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	rd := util.NewDelimitedReader(s, maxHopMessage)
	defer rd.Close()
	msg := pbv2.HopMessage{Type: pbv2.HopMessage_RESERVE.Enum()}
	if err := util.NewDelimitedWriter(s).WriteMsg(&msg); err != nil {
		s.Reset()
		return time.Time{}, nil, fmt.Errorf("%w: write: %w", errReserve, err)
	}
	msg.Reset()
	if err := rd.ReadMsg(&msg); err != nil {
		s.Reset()
		return time.Time{}, nil, fmt.Errorf("%w: read: %w", errReserve, err)
	}
	switch {
	case msg.GetType() != pbv2.HopMessage_STATUS:
		return time.Time{}, nil, fmt.Errorf("%w: answer of type %v", errReserve, msg.GetType())
	case msg.GetStatus() != pbv2.Status_OK:
		return time.Time{}, nil, fmt.Errorf("%w: %w: %v", errReserve, errRefused, msg.GetStatus())
	case msg.GetReservation() == nil:
		return time.Time{}, nil, fmt.Errorf("%w: no reservation in the answer", errReserve)
	}
	return time.Unix(int64(msg.GetReservation().GetExpire()), 0), s.Conn(), nil
}

// addrs is the host's address factory on a node with relays: it adds the
// addresses through each relay on which the keeper holds a reservation
// that AutoRelay does not advertise (AutoRelay refused it for its stated
// expiry), built as AutoRelay builds them: the relay's addresses, then
// /p2p/RELAY/p2p-circuit.
func (k *relayKeeper) addrs(in []ma.Multiaddr) []ma.Multiaddr {
	k.mu.Lock()
	var rs []peer.ID
	if k.private {
		for r, kr := range k.held {
			if kr.live() {
				rs = append(rs, r)
			}
		}
	}
	k.mu.Unlock()
	out := in
	for _, r := range rs {
		if slices.ContainsFunc(in, func(a ma.Multiaddr) bool { id, ok := relayOf(a); return ok && id == r }) {
			continue
		}
		circuit := ma.StringCast("/p2p/" + r.String() + "/p2p-circuit")
		for _, a := range relayBaseAddrs(k.h.Peerstore().Addrs(r)) {
			out = append(out, a.Encapsulate(circuit))
		}
	}
	return out
}

// relayBaseAddrs are the addresses of a relay to build circuit addresses
// on: its public ones if it has any, else all; none relayed.
func relayBaseAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var direct, public []ma.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		direct = append(direct, a)
		if manet.IsPublicAddr(a) {
			public = append(public, a)
		}
	}
	if len(public) > 0 {
		return public
	}
	return direct
}

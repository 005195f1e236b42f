package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// relayOptions returns the libp2p options of relay mode (kith relay): an
// AutoNAT server and the announced addresses. The circuit relay v2 service
// itself is run by runRelayService, and the DHT in server mode (see
// Config.withDefaults).
func relayOptions(cfg Config, _ hostParts) ([]libp2p.Option, error) {
	var opts []libp2p.Option
	announce := make([]ma.Multiaddr, 0, len(cfg.Relay.Announce))
	for _, s := range cfg.Relay.Announce {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: relay.announce %q: %w", s, err)
		}
		announce = append(announce, m)
	}
	if len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	if !cfg.Relay.Enabled {
		return opts, nil
	}
	opts = append(opts, libp2p.EnableNATService())
	if len(announce) > 0 {
		// The operator declared the address reachable: say so (status, DHT)
		// instead of waiting for AutoNAT peers that a first relay lacks.
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	return opts, nil
}

// startRelayWork starts the relay service in relay mode, and the watch on
// the configured relays.
func (n *Node) startRelayWork() error {
	if n.cfg.Relay.Enabled {
		sub, err := n.host.EventBus().Subscribe([]any{
			new(event.EvtLocalReachabilityChanged),
			new(event.EvtHostReachableAddrsChanged),
		})
		if err != nil {
			return fmt.Errorf("node: subscribe to reachability events: %w", err)
		}
		n.wg.Go(func() { runRelayService(n.ctx, n.host, sub, n.registry, n.log) })
	}
	if relays, _ := parsePeerAddrs("network.relays", n.cfg.Network.Relays); len(relays) > 0 {
		n.wg.Go(func() { watchRelays(n.ctx, n.host, relays, relayCheckEvery, n.log) })
	}
	return nil
}

// relayCheckEvery is how often a node checks that its relays still answer.
const relayCheckEvery = 10 * time.Second

// watchRelays pings every configured relay it is connected to every
// interval, and closes the connections to one that does not answer within
// the interval. AutoRelay then looks for it again and reserves anew.
//
// Without this, a node would hold on to a dead connection to a relay that
// crashed or restarted for as long as the transport takes to notice: QUIC's
// 30 s idle timeout (its keep-alives are too small to draw a stateless reset
// from the restarted relay), minutes for TCP when the relay's machine went
// away. A ping is large enough to draw the reset, so a restarted relay is
// noticed within one interval.
func watchRelays(ctx context.Context, h host.Host, relays []peer.AddrInfo, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range relays {
			if h.Network().Connectedness(r.ID) != network.Connected {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, interval)
			res := <-ping.Ping(pctx, h, r.ID)
			cancel()
			if res.Error != nil && ctx.Err() == nil {
				log.Warn("relay does not answer; closing its connections", "relay", r.ID, "err", res.Error)
				h.Network().ClosePeer(r.ID)
			}
		}
	}
}

// runRelayService runs the circuit relay v2 service of kith relay until
// ctx ends. A kith relay runs because its operator asked for one, so it
// serves from the start and stops only while AutoNAT shows it unreachable:
// AutoNAT v2 found none of its addresses reachable and at least one
// unreachable, or, with nothing from v2, AutoNAT v1 says private.
//
// go-libp2p's EnableRelayService instead waits for AutoNAT v1 to say public,
// and a v1 client only asks peers that have public addresses to dial it
// back. A relay's clients are behind NAT and have none, so a relay that only
// they know (the usual kith setup: one relay for a team) never learned it
// was public and never served; and a restarted relay would not serve before
// its clients reconnected, while they looked for a relay that serves.
func runRelayService(ctx context.Context, h host.Host, sub event.Subscription, reg prometheus.Registerer, log *slog.Logger) {
	defer sub.Close()
	opts := []relayv2.Option{
		relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg))),
	}
	var (
		relay *relayv2.Relay
		v1    network.Reachability
		v2    event.EvtHostReachableAddrsChanged
	)
	defer func() {
		if relay != nil {
			relay.Close()
		}
	}()
	for {
		switch serve := relayReachable(v1, v2); {
		case serve && relay == nil:
			r, err := relayv2.New(h, opts...)
			if err != nil {
				log.Error("relay service not started", "err", err)
				break
			}
			relay = r
			log.Info("relay service started", "reachable", v2.Reachable, "autonat_v1", reachabilityName(v1))
		case !serve && relay != nil:
			relay.Close()
			relay = nil
			log.Warn("relay service stopped: not reachable from outside",
				"unreachable", v2.Unreachable, "autonat_v1", reachabilityName(v1))
		}
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				v1 = e.Reachability
			case event.EvtHostReachableAddrsChanged:
				v2 = e
			}
		}
	}
}

// relayReachable says whether a relay should serve given what AutoNAT v1
// and v2 last said: yes unless they show it unreachable.
func relayReachable(v1 network.Reachability, v2 event.EvtHostReachableAddrsChanged) bool {
	switch {
	case len(v2.Reachable) > 0:
		return true
	case len(v2.Unreachable) > 0:
		return false
	default:
		return v1 != network.ReachabilityPrivate
	}
}

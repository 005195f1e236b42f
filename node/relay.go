package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
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
		// The operator declared the address reachable: relay from the start
		// instead of waiting for AutoNAT peers that a first relay lacks.
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	return opts, nil
}

// runRelayService runs the circuit relay v2 service while the host is
// reachable from outside: AutoNAT v1 says it is public, or AutoNAT v2 has
// confirmed at least one of its addresses. It returns when ctx ends.
//
// go-libp2p's EnableRelayService waits for AutoNAT v1 alone, and a v1 client
// only asks peers that have public addresses to dial it back. A relay's
// clients are behind NAT and have none, so a relay that only they know (the
// usual kith setup: one relay for a team) would never learn it is public and
// never serve. AutoNAT v2, which every kith node serves, lets those same
// clients confirm the relay's address.
func runRelayService(ctx context.Context, h host.Host, sub event.Subscription, reg prometheus.Registerer, log *slog.Logger) {
	defer sub.Close()
	opts := []relayv2.Option{
		relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg))),
	}
	var (
		relay     *relayv2.Relay
		v1Public  bool
		reachable []ma.Multiaddr
	)
	defer func() {
		if relay != nil {
			relay.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				v1Public = e.Reachability == network.ReachabilityPublic
			case event.EvtHostReachableAddrsChanged:
				reachable = e.Reachable
			}
		}
		switch public := v1Public || len(reachable) > 0; {
		case public && relay == nil:
			r, err := relayv2.New(h, opts...)
			if err != nil {
				log.Error("relay service not started", "err", err)
				continue
			}
			relay = r
			log.Info("relay service started", "reachable", reachable, "autonat_v1_public", v1Public)
		case !public && relay != nil:
			relay.Close()
			relay = nil
			log.Info("relay service stopped: not reachable from outside")
		}
	}
}

package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"
)

// relayOptions returns the libp2p options of relay mode (kith relay): the
// circuit relay v2 service, an AutoNAT server, and the announced addresses.
// The DHT runs in server mode (see Config.withDefaults).
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
	opts = append(opts, libp2p.EnableRelayService(), libp2p.EnableNATService())
	if len(announce) > 0 {
		// The operator declared the address reachable: relay from the start
		// instead of waiting for AutoNAT peers that a first relay lacks.
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	return opts, nil
}

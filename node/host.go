package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// UserAgent is what identify tells other peers.
const UserAgent = "kith/0.1"

// hostParts are what buildHost needs besides the config.
type hostParts struct {
	key         crypto.PrivKey
	gater       *Gater
	registry    prometheus.Registerer
	limits      []func(*rcmgr.ScalingLimitConfig)
	relayACL    *relayACL                         // relay mode only
	relayPeers  func(context.Context) []namedPeer // relay mode: allowed peers, for metrics
	forcePublic bool                              // relay mode: relay from the start (tests)
	forcePriv   bool                              // use the relays from the start (tests)
	keeper      *relayKeeper                      // with relays: its addresses (relay_keep.go)
	log         *slog.Logger
}

// buildHost is the only place that assembles libp2p options. Every option is
// chosen explicitly rather than left to go-libp2p's defaults.
func buildHost(cfg Config, p hostParts) (host.Host, error) {
	listen, err := listenAddrs(cfg.Network.Listen, slices.Equal(cfg.Network.Listen, DefaultListen()), p.log)
	if err != nil {
		return nil, err
	}
	quicTransport, err := quicTransportWithCert(time.Now())
	if err != nil {
		return nil, err
	}
	var rmOpts []rcmgr.Option
	if cfg.Relay.Enabled {
		if rmOpts, err = relayConnLimits(cfg.Relay); err != nil {
			return nil, err
		}
	}
	rm, err := newResourceManager(p.limits, rmOpts...)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.Connections.Low, cfg.Connections.High,
		connmgr.WithGracePeriod(time.Duration(cfg.Connections.GracePeriod)))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(p.key),
		libp2p.UserAgent(UserAgent),
		libp2p.ListenAddrs(listen...),
		// TCP is secured with Noise only; QUIC brings its own TLS 1.3.
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quicTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(p.gater),
		libp2p.PrometheusRegisterer(p.registry),
		libp2p.Ping(true),
		libp2p.EnableRelay(),
		libp2p.EnableAutoNATv2(),
		// No UDP black-hole detection: it stays "probing" until 100 UDP
		// dials to public addresses have been made, and while it probes,
		// the AutoNAT v2 server refuses to dial QUIC addresses back. A kith
		// node dials a handful of peers, so it would never confirm a
		// colleague's or a relay's QUIC address, and a QUIC-only relay
		// would never learn it is reachable (seen in node/natlab).
		libp2p.UDPBlackHoleSuccessCounter(nil),
		libp2p.EnableHolePunching(),
	}
	if cfg.Network.PortMappingEnabled() && !loopbackOnly(listen) {
		opts = append(opts, libp2p.NATPortMap())
	}
	relays, _ := parsePeerAddrs("network.relays", cfg.Network.Relays)
	if len(relays) > 0 {
		// The relays are the user's own, few and fixed: look for one that
		// serves every 5 s rather than go-libp2p's 30 s, so a relay that
		// restarted is used again within seconds.
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays, autorelay.WithMinInterval(5*time.Second)))
		if p.keeper != nil && len(cfg.Relay.Announce) == 0 {
			opts = append(opts, libp2p.AddrsFactory(p.keeper.addrs))
		}
	}
	if p.forcePriv {
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	ropts, err := relayOptions(cfg, p)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ropts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("node: start libp2p host: %w", err)
	}
	return h, nil
}

// newResourceManager scales go-libp2p's default limits to this machine's
// memory and file descriptors, plus the limits of kith's own services and
// opts (a relay's per-address limits, see relayConnLimits). Relayed
// connections are not counted per address (relayedNotPerIP).
func newResourceManager(extra []func(*rcmgr.ScalingLimitConfig), opts ...rcmgr.Option) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, f := range extra {
		f(&limits)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), opts...)
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return withRelayedNotPerIP(rm), nil
}

// listenAddrs parses the listen set. With fallback (the default set), an
// address whose port is taken falls back to a random port, with a warning.
func listenAddrs(listen []string, fallback bool, log *slog.Logger) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(listen))
	for _, s := range listen {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: listen address %q: %w", s, err)
		}
		if fallback && portTaken(m) {
			log.Warn("default port taken, listening on a random port instead", "addr", s)
			m = withPortZero(m)
		}
		out = append(out, m)
	}
	return out, nil
}

// portTaken reports whether m's TCP or UDP port is already bound here.
func portTaken(m ma.Multiaddr) bool {
	network, addr, err := manet.DialArgs(m)
	if err != nil {
		return false
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		l, err := net.Listen(network, addr)
		if err != nil {
			return isAddrInUse(err)
		}
		l.Close()
	case "udp", "udp4", "udp6":
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return isAddrInUse(err)
		}
		c.Close()
	}
	return false
}

// withPortZero replaces the first tcp or udp port of m with 0.
func withPortZero(m ma.Multiaddr) ma.Multiaddr {
	var out ma.Multiaddr
	done := false
	for _, c := range m {
		if !done && (c.Code() == ma.P_TCP || c.Code() == ma.P_UDP) {
			zero, err := ma.NewComponent(c.Protocol().Name, strconv.Itoa(0))
			if err == nil {
				out = append(out, *zero)
				done = true
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// loopbackOnly reports whether every listen address is a loopback address:
// such a node has nothing to map on a router and nobody on the LAN to meet.
func loopbackOnly(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return len(addrs) > 0
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

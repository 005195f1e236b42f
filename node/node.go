package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node/store"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is a running kith peer: identity, libp2p host, private DHT, discovery
// and the services built on them. Create it with New and stop it with Close.
type Node struct {
	cfg      Config
	log      *slog.Logger
	host     host.Host
	dht      *dual.DHT
	boot     *bootstrapper     // nil without bootstrap peers
	provs    [2]*providerStore // the DHT's provider records: WAN, LAN
	gater    *Gater
	events   *Events
	registry *prometheus.Registry
	mdns     *mdnsDiscovery
	store    *store.Store
	dm       *chat.DMService
	rooms    *chat.RoomService
	files    *files.Service // set under mu in start (the host watcher kicks it)
	bench    *benchSink     // WithBench only: the benchmark raw copy path
	redial   *redialer      // gets direct connections back (redial.go)

	relayAllow    map[peer.ID]bool // relay mode: --allow and the allow file
	relayOpts     relayOptionSets  // relay mode: the relay service's options
	relayDeclared bool             // relay mode: the operator declared it reachable
	hopWrap       func(host.Host, network.Stream) network.Stream
	keeper        *relayKeeper // with relays: keeps reservations by elapsed time (relay_keep.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	reachability network.Reachability

	closeOnce sync.Once
	closeErr  error
}

// Option injects what code, not users, chooses: a logger, extra resource
// limits for services.
type Option func(*options)

type options struct {
	log            *slog.Logger
	limits         []func(*rcmgr.ScalingLimitConfig)
	bootstrapEvery time.Duration // how often to check the DHT connection (tests shorten it)
	bootstrapMin   time.Duration // the bootstrap back-off's floor and cap (tests shorten them)
	bootstrapMax   time.Duration
	forcePublic    bool // tests: a relay on loopback relays without AutoNAT
	bench          bool // benchmarks: the raw copy path (WithBench)
	providers      providerLimits
	forcePrivate   bool          // tests: a node on loopback uses its relays without AutoNAT
	relayTTL       time.Duration // tests: the relays' reservation lifetime (relayReservationTTL)
	noKeeper       bool          // tests: go-libp2p's AutoRelay alone keeps reservations
	// hopWrap, if set, wraps the stream of each RESERVE request a relay
	// serves (tests: a relay whose clock is off).
	hopWrap func(host.Host, network.Stream) network.Stream
}

// WithLogger sets the node's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithServiceLimits adds resource-manager limits for a service's protocols.
func WithServiceLimits(f func(*rcmgr.ScalingLimitConfig)) Option {
	return func(o *options) { o.limits = append(o.limits, f) }
}

// New loads (or creates) the identity in cfg.Home and starts a node.
func New(cfg Config, opts ...Option) (*Node, error) {
	o := options{log: slog.Default(), bootstrapEvery: 5 * time.Second, bootstrapMin: bootstrapMinWait,
		bootstrapMax: bootstrapMaxWait, providers: defaultProviderLimits}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	cfg = cfg.withDefaults()
	key, _, err := LoadIdentity(cfg.Home)
	if err != nil {
		return nil, err
	}
	bootstrap, _ := parsePeerAddrs("network.bootstrap", cfg.Network.Bootstrap)
	n := &Node{
		cfg:      cfg,
		log:      o.log.With("component", "node"),
		gater:    NewGater(),
		events:   newEvents(),
		registry: prometheus.NewRegistry(),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.openStore(); err != nil {
		n.cancel()
		return nil, err
	}
	relays, _ := parsePeerAddrs("network.relays", cfg.Network.Relays)
	if len(relays) > 0 && !o.noKeeper {
		n.keeper = newRelayKeeper(relays, o.relayTTL, time.Now, n.log)
	}
	acl, err := n.newRelayACL()
	if err != nil {
		n.cancel()
		n.store.Close()
		return nil, err
	}
	h, err := buildHost(cfg, hostParts{
		relayACL:    acl,
		relayPeers:  n.allowedPeers,
		forcePublic: o.forcePublic,
		forcePriv:   o.forcePrivate,
		keeper:      n.keeper,
		key:         key,
		gater:       n.gater,
		registry:    n.registry,
		limits:      append([]func(*rcmgr.ScalingLimitConfig){chat.DMLimits, chat.HistoryLimits, files.Limits}, o.limits...),
		log:         n.log,
	})
	if err != nil {
		n.cancel()
		n.store.Close()
		return nil, err
	}
	// The DHT is built only once the host listens: it dials its bootstrap
	// peers at once, and a dial made before the host listens cannot reuse
	// the listening TCP port or QUIC socket. Such a connection, often the
	// only one to the relay, shows the relay the NAT mapping of a random
	// port, so the node never learns the public address of its listening
	// port and cannot hole-punch (seen in node/natlab).
	n.dht, n.provs, err = newDHT(h, cfg, bootstrap, o.providers, n.log)
	if err == nil {
		err = n.registry.Register(newProviderMetrics(n.provs))
	}
	if err != nil {
		if n.dht != nil {
			n.dht.Close()
		}
		n.cancel()
		h.Close()
		n.store.Close()
		return nil, err
	}
	// A routed host: Connect with no known addresses asks the DHT, then
	// tries our relays (viaRelays).
	n.host = routedhost.Wrap(h, viaRelays{dht: n.dht, relays: relays})
	n.relayOpts = relayServiceOptions(cfg, acl, n.registry, o.relayTTL)
	n.hopWrap = o.hopWrap
	if n.keeper != nil {
		n.keeper.h = n.host
	}
	n.relayDeclared = o.forcePublic || relayDeclaredPublic(cfg)
	if err := n.start(bootstrap, o); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// start runs the node's background work and services: event watching,
// bootstrapping, direct messages, file transfers, rooms and mDNS.
func (n *Node) start(bootstrap []peer.AddrInfo, o options) error {
	log, bench := o.log, o.bench
	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtPeerIdentificationCompleted),
	})
	if err != nil {
		return fmt.Errorf("node: subscribe to host events: %w", err)
	}
	n.redial = newRedialer(n)
	n.wg.Go(func() { n.watch(sub) })
	if err := n.startRelayWork(); err != nil {
		return err
	}
	if err := n.rememberContactAddrs(n.ctx); err != nil {
		return err
	}
	if len(bootstrap) > 0 {
		n.boot = &bootstrapper{h: n.host, d: n.dht, peers: bootstrap, healthy: o.bootstrapEvery,
			minWait: o.bootstrapMin, maxWait: o.bootstrapMax, log: n.log, rejoined: n.retryAll}
		// The first round runs before New returns, so a new node is in the
		// DHT (or has said why not) by the time it is used, and the outbox
		// starts with peers findable.
		n.boot.round(n.ctx)
	}
	n.dm, err = chat.NewDM(n.host, n.store, chat.DMConfig{Authorize: n.authorizeDM},
		chat.WithLogger(n.log), chat.WithOnChange(n.onMessage))
	if err != nil {
		return err
	}
	if err := n.startFiles(log); err != nil {
		return err
	}
	if err := n.startRooms(log); err != nil {
		return err
	}
	if bench {
		if err := n.startBench(log); err != nil {
			return err
		}
	}
	if n.boot != nil {
		n.wg.Go(func() { n.boot.run(n.ctx) })
	}
	if err := n.startPruner(newPruner(n.cfg, time.Now), pruneEvery); err != nil {
		return err
	}
	if n.cfg.Network.MDNSEnabled() && !loopbackOnly(n.host.Network().ListenAddresses()) {
		m, err := startMDNS(n.ctx, n.host, n.log)
		if err != nil {
			n.log.Warn("mdns disabled", "err", err)
		} else {
			n.mdns = m
		}
	}
	n.log.Info("node started", "peer_id", n.host.ID(), "addrs", n.host.Addrs())
	return nil
}

// openStore opens the home's database and feeds its block list to the
// gater, before the host accepts any connection.
func (n *Node) openStore() error {
	st, err := store.Open(filepath.Join(n.cfg.Home, store.File))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.store = st
	if err := n.loadBlocked(n.ctx); err != nil {
		st.Close()
		return fmt.Errorf("node: load block list: %w", err)
	}
	return nil
}

// Host is the node's libp2p host, for the services built on it.
func (n *Node) Host() host.Host { return n.host }

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Events is the node's event stream.
func (n *Node) Events() *Events { return n.events }

// Gater is the node's connection gater.
func (n *Node) Gater() *Gater { return n.gater }

// Metrics is the Prometheus registry holding libp2p's and kith's metrics.
func (n *Node) Metrics() *prometheus.Registry { return n.registry }

// Config is the node's effective configuration, defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Close stops the node: background work and mDNS, the files, rooms and
// direct-message services, the store, the DHT, then the host. It is safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		if n.bench != nil {
			n.bench.close()
		}
		if n.files != nil {
			errs = append(errs, n.files.Close())
		}
		if n.rooms != nil {
			errs = append(errs, n.rooms.Close())
		}
		if n.dm != nil {
			errs = append(errs, n.dm.Close())
		}
		errs = append(errs, n.store.Close())
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		errs = append(errs, n.host.Close())
		n.wg.Wait()
		n.events.Close()
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped")
	})
	return n.closeErr
}

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DHTProtocolPrefix keeps kith's DHT private: its protocol IDs are
// /kith/kad/1.0.0 (WAN) and /kith/lan/kad/1.0.0 (LAN), so a kith node never
// joins the public IPFS DHT by accident.
const DHTProtocolPrefix = "/kith"

// newDHT builds the dual DHT: a WAN half in the configured mode (auto: client
// until AutoNAT says we are public) and a LAN half that serves on private
// addresses. The LAN half keeps loopback addresses in its answers, which
// go-libp2p-kad-dht drops by default, so peers on one machine find each other.
// Each half keeps the provider records it serves in its own capped store
// (providers.go), returned with the DHT: WAN's, then LAN's.
func newDHT(h host.Host, cfg Config, bootstrap []peer.AddrInfo, limits providerLimits, log *slog.Logger) (*dual.DHT, [2]*providerStore, error) {
	mode := dht.ModeAuto
	switch cfg.DHT.Mode {
	case "client":
		mode = dht.ModeClient
	case "server":
		mode = dht.ModeServer
	}
	stores := [2]*providerStore{
		newProviderStore(limits, log.With("dht", "wan")),
		newProviderStore(limits, log.With("dht", "lan")),
	}
	opts := []dual.Option{
		dual.DHTOption(dht.BootstrapPeers(bootstrap...), dht.Validator(dhtValidator()),
			dht.ProviderManagerOpts(providerManagerOpts()...)),
		dual.WanDHTOption(dht.ProviderDatastore(stores[0])),
		dual.LanDHTOption(dht.ProviderDatastore(stores[1])),
		dual.WanDHTOption(dht.ProtocolPrefix(DHTProtocolPrefix), dht.Mode(mode)),
		// dual.New already added the /lan extension to the default prefix;
		// replacing the prefix drops it, so add it again after ours.
		dual.LanDHTOption(dht.ProtocolPrefix(DHTProtocolPrefix), dht.ProtocolExtension(dual.LanExtension)),
		dual.LanDHTOption(dht.AddressFilter(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return ma.FilterAddrs(addrs, func(a ma.Multiaddr) bool {
				return manet.IsIPLoopback(a) || manet.IsPrivateAddr(a) || isCircuit(a)
			})
		})),
	}
	if mode == dht.ModeServer {
		opts = append(opts, dual.LanDHTOption(dht.Mode(dht.ModeServer)))
	}
	opts = append(opts, dual.LanDHTOption(dht.RoutingTableRefreshPeriod(lanRefresh)))
	d, err := dual.New(h, opts...)
	if err != nil {
		return nil, stores, fmt.Errorf("node: dht: %w", err)
	}
	return d, stores, nil
}

// lanRefresh is how often the LAN half refreshes its routing table (kad-dht:
// every 10 minutes). kad-dht evicts a peer that stopped answering only when
// a query of its own fails to reach it, or at a refresh once the peer has
// not answered for about 4.3 refresh periods (43 minutes by default); until
// then the peer stays in the table and in every answer that lists it, and
// each node's queries walk into it, dialling it (a QUIC dial to a peer gone
// waits for its handshake timeout). In a room with churn those dials piled
// up and the node's goroutines grew for the first hour (L9). A LAN is
// small: a refresh every minute costs a few lookups, and a departed peer
// leaves the tables within about 5 minutes.
const lanRefresh = time.Minute

// dhtValidator is the record validator of kith's DHT: it accepts no value
// record at all. kith uses the DHT for peer routing and provider records
// (room rendezvous, RoutingDiscovery) only, never PutValue or GetValue, and
// its identities are Ed25519 keys held in the peer ID, so neither of
// kad-dht's default namespaces is of use: /pk holds keys that are too big for
// a peer ID (RSA), and /ipns names. With those defaults any peer of the
// network could fill a kith relay's in-memory datastore with valid records
// under fresh names; with this validator every PUT_VALUE is refused whatever
// its namespace, signer, sequence or size, and Select chooses nothing.
// (Provider records are not validated: kad-dht stores one only for the peer
// that sent it, and providerStore caps how many.)
func dhtValidator() record.Validator { return record.NamespacedValidator{} }

// dhtPeers is the number of peers in both routing tables.
func dhtPeers(d *dual.DHT) int {
	return d.WAN.RoutingTable().Size() + d.LAN.RoutingTable().Size()
}

// Bootstrap states in BootstrapStatus.
const (
	BootstrapConnected = "connected" // connected to a peer of the routing tables or a bootstrap peer
	BootstrapRetrying  = "retrying"  // connected to none: dialling the bootstrap peers with back-off
)

// BootstrapStatus is how the node stands with its bootstrap peers, in
// Status (omitted when it has none configured).
type BootstrapStatus struct {
	// State is "connected" while the node is connected to a peer of its
	// DHT routing tables or to a bootstrap peer, else "retrying".
	State string `json:"state"`
	// Failures is the number of bootstrap rounds that reached no
	// bootstrap peer since the last that did.
	Failures int `json:"failures"`
	// NextRetry is when the next round runs, after a failed one.
	NextRetry *time.Time `json:"next_retry,omitempty"`
	// LastError is why the last failed round failed.
	LastError string `json:"last_error,omitempty"`
}

// Bootstrap back-off: after a round that reached no bootstrap peer the next
// waits twice as long as the last, from the check interval (at least
// bootstrapMinWait) up to bootstrapMaxWait, plus up to a quarter of jitter;
// a round that reaches one resets it.
const (
	bootstrapMinWait = time.Second
	bootstrapMaxWait = 2 * time.Minute
)

// bootstrapper keeps the node in the DHT: every healthy interval it checks
// that the node is connected to a peer of its routing tables (they are
// empty, or every peer in them went away, when all bootstrap peers are
// down), and if not it dials the bootstrap peers, backing off between
// failed rounds. kad-dht re-dials them by itself only every 2 minutes and
// only once a table is empty (kad-dht#387).
type bootstrapper struct {
	h                         host.Host
	d                         *dual.DHT
	peers                     []peer.AddrInfo
	healthy, minWait, maxWait time.Duration
	log                       *slog.Logger
	rejoined                  func()

	mu       sync.Mutex
	failures int       // failed rounds since the last success
	next     time.Time // when the next check (or, after a failure, round) runs
	lastErr  string
}

// run checks and re-bootstraps until ctx ends.
func (b *bootstrapper) run(ctx context.Context) {
	for {
		b.mu.Lock()
		wait := time.Until(b.next)
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if connectedDHTPeers(b.h, b.d) > 0 {
			b.record(nil)
			continue
		}
		if b.round(ctx) {
			b.rejoined()
		}
	}
}

// round dials every bootstrap peer and, if one answered, asks the DHT to
// refresh; it records the outcome and reports whether one answered.
func (b *bootstrapper) round(ctx context.Context) bool {
	err := bootstrapOnce(ctx, b.h, b.d, b.peers, b.log)
	if ctx.Err() == nil {
		b.record(err)
	}
	return err == nil
}

// record notes the outcome of a check or round and when the next runs: the
// check interval after a success, else the back-off (the interval, at
// least minWait, doubled with each failure up to maxWait), each plus up to
// a quarter of jitter.
func (b *bootstrapper) record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wait := b.healthy
	if err == nil {
		b.failures, b.lastErr = 0, ""
	} else {
		b.failures++
		b.lastErr = err.Error()
		wait = min(max(b.minWait, b.healthy)<<min(b.failures-1, 16), b.maxWait)
	}
	b.next = time.Now().Add(wait + time.Duration(rand.Int64N(int64(wait)/4+1)))
}

// connected reports whether the node is connected to a peer of its
// routing tables or to a bootstrap peer (which enters the tables only once
// identify has run on the new connection).
func (b *bootstrapper) connected() bool {
	if connectedDHTPeers(b.h, b.d) > 0 {
		return true
	}
	for _, p := range b.peers {
		if b.h.Network().Connectedness(p.ID) == network.Connected {
			return true
		}
	}
	return false
}

// status is the bootstrapper's part of Status.
func (b *bootstrapper) status() *BootstrapStatus {
	st := &BootstrapStatus{State: BootstrapRetrying}
	if b.connected() {
		st.State = BootstrapConnected
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st.Failures, st.LastError = b.failures, b.lastErr
	if b.failures > 0 {
		t := b.next.UTC()
		st.NextRetry = &t
	}
	return st
}

// connectedDHTPeers counts the routing-table peers we are connected to.
func connectedDHTPeers(h host.Host, d *dual.DHT) int {
	n := 0
	for _, rt := range []*dht.IpfsDHT{d.WAN, d.LAN} {
		for _, p := range rt.RoutingTable().ListPeers() {
			if h.Network().Connectedness(p) == network.Connected {
				n++
			}
		}
	}
	return n
}

// bootstrapOnce dials every bootstrap peer and, if one answered, asks the
// DHT to refresh. Its dials skip the swarm's own per-address back-off (5 s
// growing to 5 minutes with each failure), which would otherwise stretch
// the bootstrapper's: its rounds are already spaced. It returns nil if a
// peer answered, else the last dial error.
func bootstrapOnce(ctx context.Context, h host.Host, d *dual.DHT, peers []peer.AddrInfo, log *slog.Logger) error {
	ok := 0
	var last error
	for _, p := range peers {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := h.Connect(network.WithForceDirectDial(cctx, "bootstrap"), p)
		cancel()
		if err != nil {
			log.Warn("bootstrap peer unreachable", "peer", p.ID, "err", err)
			last = fmt.Errorf("bootstrap peer %s: %w", p.ID, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		if last == nil {
			last = errors.New("no bootstrap peer")
		}
		return last
	}
	log.Info("bootstrapped", "peers", ok)
	if err := d.Bootstrap(ctx); err != nil {
		log.Debug("dht bootstrap", "err", err)
	}
	return nil
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

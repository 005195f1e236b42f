package node

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// keepBootstrapped reconnects to the bootstrap peers whenever the node is
// connected to no peer of its routing tables (they are empty, or every peer
// in them went away), checking every healthy interval and backing off from
// 1 s to 2 min between failed rounds.
func keepBootstrapped(ctx context.Context, h host.Host, d *dual.DHT, peers []peer.AddrInfo, healthy time.Duration, log *slog.Logger, rejoined func()) {
	const minWait, maxWait = time.Second, 2 * time.Minute
	wait, fails := healthy, 0
	for {
		jitter := time.Duration(rand.Int64N(int64(wait) / 4))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait + jitter):
		}
		if connectedDHTPeers(h, d) > 0 {
			wait, fails = healthy, 0
			continue
		}
		if bootstrapOnce(ctx, h, d, peers, log) {
			wait, fails = healthy, 0
			rejoined()
			continue
		}
		fails++
		wait = min(max(minWait, healthy)<<min(fails-1, 8), maxWait)
	}
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

// bootstrapOnce dials every bootstrap peer and asks the DHT to refresh.
func bootstrapOnce(ctx context.Context, h host.Host, d *dual.DHT, peers []peer.AddrInfo, log *slog.Logger) bool {
	ok := 0
	for _, p := range peers {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := h.Connect(cctx, p)
		cancel()
		if err != nil {
			log.Warn("bootstrap peer unreachable", "peer", p.ID, "err", err)
			continue
		}
		ok++
	}
	if ok == 0 {
		return false
	}
	log.Info("bootstrapped", "peers", ok)
	if err := d.Bootstrap(ctx); err != nil {
		log.Debug("dht bootstrap", "err", err)
	}
	return true
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

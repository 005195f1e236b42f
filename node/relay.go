package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// relayOptions returns the libp2p options of relay mode (kith relay): the
// announced addresses, an AutoNAT server and the byte counters of the relay
// metrics. The circuit relay v2 service itself runs in runRelayService, and
// the DHT in server mode (see Config.withDefaults).
func relayOptions(cfg Config, p hostParts) ([]libp2p.Option, error) {
	var opts []libp2p.Option
	announce, err := parseAddrs("relay.announce", cfg.Relay.Announce)
	if err != nil {
		return nil, err
	}
	if len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	if !cfg.Relay.Enabled {
		return opts, nil
	}
	bwc := metrics.NewBandwidthCounter()
	if err := p.registry.Register(newRelayBytes(bwc, p.relayPeers)); err != nil {
		return nil, fmt.Errorf("node: relay metrics: %w", err)
	}
	opts = append(opts, libp2p.BandwidthReporter(bwc), libp2p.EnableNATService())
	if p.forcePublic || relayDeclaredPublic(cfg) {
		// The operator declared the address reachable: say so (status, DHT
		// server) instead of waiting for AutoNAT peers a first relay lacks.
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	return opts, nil
}

// relayOptionSets are the options of the two relay instances (see
// splitRelay): colleagues get the operator's limits, strangers go-libp2p's
// defaults (2 min and 128 KiB per circuit, 8 reservations per IP address).
type relayOptionSets struct {
	colleagues, strangers []relayv2.Option
}

// relayServiceOptions builds both option sets: kith's limits and access
// control, and go-libp2p's relay metrics.
func relayServiceOptions(cfg Config, acl *relayACL, reg prometheus.Registerer, ttl time.Duration) relayOptionSets {
	rc := relayv2.DefaultResources()
	def := relayv2.DefaultResources()
	if ttl > 0 { // tests
		rc.ReservationTTL, def.ReservationTTL = ttl, ttl
	}
	rc.Limit = &relayv2.RelayLimit{
		Duration: time.Duration(cfg.Relay.CircuitDuration),
		Data:     int64(cfg.Relay.CircuitData),
	}
	// go-libp2p copies relayed bytes through 2 KiB buffers by default, which
	// caps a circuit far below the link (BenchmarkRelayedThroughput): a
	// colleagues' relay carries file transfers, so copy 64 KiB at a time.
	rc.BufferSize = 64 << 10
	rc.MaxReservations = cfg.Relay.MaxReservations
	rc.MaxCircuits = cfg.Relay.MaxCircuits
	// Colleagues behind one office NAT share an address: they are limited
	// per peer, never per IP.
	rc.MaxReservationsPerIP = cfg.Relay.MaxReservations
	rc.MaxReservationsPerASN = cfg.Relay.MaxReservations
	tracer := relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg)))
	return relayOptionSets{
		colleagues: []relayv2.Option{relayv2.WithResources(rc), relayv2.WithACL(acl), tracer},
		strangers:  []relayv2.Option{relayv2.WithResources(def), relayv2.WithACL(acl), tracer},
	}
}

// relayDeclaredPublic reports whether the operator told us the relay is
// reachable: an announced address, or an explicit public listen address.
func relayDeclaredPublic(cfg Config) bool {
	if len(cfg.Relay.Announce) > 0 {
		return true
	}
	for _, s := range cfg.Network.Listen {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if ip, err := manet.ToIP(m); err == nil && !ip.IsUnspecified() && manet.IsPublicAddr(m) {
			return true
		}
	}
	return false
}

func parseAddrs(field string, ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: %s %q: %w", field, s, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// relayHopProtocol is served while the relay service runs.
const relayHopProtocol = "/libp2p/circuit/relay/0.2.0/hop"

// refuseNotAllowed labels refusals of peers not on the allow list.
const refuseNotAllowed = "not_allowed"

// relayACL decides who may reserve a slot on this relay and whom it carries.
// Allowed peers (the relay's contacts and --allow) may always; with --closed
// nobody else may. How much a circuit may carry is splitRelay's choice.
type relayACL struct {
	allowed func(peer.ID) bool
	closed  bool

	refusedReservations *prometheus.CounterVec
	refusedCircuits     *prometheus.CounterVec
}

var _ relayv2.ACLFilter = (*relayACL)(nil)

func newRelayACL(allowed func(peer.ID) bool, closed bool, reg prometheus.Registerer) (*relayACL, error) {
	a := &relayACL{
		allowed: allowed, closed: closed,
		refusedReservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_relay_reservations_refused_total",
			Help: "Reservations this relay refused, by reason.",
		}, []string{"reason"}),
		refusedCircuits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_relay_circuits_refused_total",
			Help: "Relayed connections this relay refused, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{a.refusedReservations, a.refusedCircuits} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: relay metrics: %w", err)
		}
	}
	return a, nil
}

// AllowReserve implements relayv2.ACLFilter.
func (a *relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if a.closed && !a.allowed(p) {
		a.refusedReservations.WithLabelValues(refuseNotAllowed).Inc()
		return false
	}
	return true
}

// AllowConnect implements relayv2.ACLFilter.
func (a *relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if a.closed && !a.allowed(src) && !a.allowed(dest) {
		a.refusedCircuits.WithLabelValues(refuseNotAllowed).Inc()
		return false
	}
	return true
}

// newRelayACL builds the relay's access control in relay mode (nil
// otherwise): the allow list from the config and the allow file, plus the
// node's unblocked contacts, looked up at each request.
func (n *Node) newRelayACL() (*relayACL, error) {
	if !n.cfg.Relay.Enabled {
		return nil, nil
	}
	n.relayAllow = make(map[peer.ID]bool)
	ids := slices.Clone(n.cfg.Relay.Allow)
	if f := n.cfg.Relay.AllowFile; f != "" {
		more, err := readAllowFile(f)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	for _, s := range ids {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("node: relay allow list: %q is not a peer ID: %w", s, err)
		}
		n.relayAllow[p] = true
	}
	return newRelayACL(n.relayAllowed, n.cfg.Relay.Closed, n.registry)
}

// relayAllowed reports whether p is on the relay's allow list or is an
// unblocked contact.
func (n *Node) relayAllowed(p peer.ID) bool {
	if n.relayAllow[p] {
		return true
	}
	c, err := n.store.ContactByPeer(n.ctx, p)
	return err == nil && c.Name != "" && !c.Blocked
}

// readAllowFile reads peer IDs, one per line; blank lines and # comments are
// skipped. A malformed line is an error naming the file and line.
func readAllowFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: relay allow file: %w", err)
	}
	var ids []string
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := peer.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("node: %s:%d: %q is not a peer ID", path, i+1, line)
		}
		if err := CheckPeerKey(p); err != nil {
			return nil, fmt.Errorf("node: %s:%d: %w", path, i+1, err)
		}
		ids = append(ids, line)
	}
	return ids, nil
}

// startRelayWork starts, in relay mode, the relay service, and on every node
// the watch on its configured relays.
func (n *Node) startRelayWork() error {
	if n.cfg.Relay.Enabled {
		sub, err := n.host.EventBus().Subscribe([]any{
			new(event.EvtLocalReachabilityChanged),
			new(event.EvtHostReachableAddrsChanged),
		})
		if err != nil {
			return fmt.Errorf("node: subscribe to reachability events: %w", err)
		}
		rs := &relayService{h: n.host, opts: n.relayOpts, hopWrap: n.hopWrap, allowed: n.relayAllowed, declared: n.relayDeclared,
			check: time.Duration(n.cfg.Relay.ReachabilityCheck), log: n.log, reach: reachState{}}
		// A declared relay serves before New returns, so it relays (and its
		// status says so) from the start.
		rs.update()
		n.wg.Go(func() { rs.run(n.ctx, sub) })
	}
	if relays, _ := parsePeerAddrs("network.relays", n.cfg.Network.Relays); len(relays) > 0 {
		n.wg.Go(func() { watchRelays(n.ctx, n.host, relays, relayCheckEvery, n.log) })
	}
	if n.keeper != nil {
		n.wg.Go(func() { n.keeper.run(n.ctx) })
	}
	return nil
}

// relayCheckEvery is how often a node checks that its relays still answer.
const relayCheckEvery = 10 * time.Second

// watchRelays pings every configured relay it is connected to every
// interval, and closes the connections to one that does not answer within
// the interval, or that stopped relaying. AutoRelay then looks for it
// again and reserves anew, or reserves on another relay.
//
// Without this, a node would hold on to a dead connection to a relay that
// crashed or restarted for as long as the transport takes to notice: QUIC's
// 30 s idle timeout (its keep-alives are too small to draw a stateless reset
// from the restarted relay), minutes for TCP when the relay's machine went
// away. A ping is large enough to draw the reset, so a restarted relay is
// noticed within one interval.
//
// And AutoRelay keeps a reservation on a relay that stopped relaying (a kith
// relay stops when it finds it is no longer reachable, e.g. its port-forward
// was removed) until it fails to refresh it, most of an hour later, while
// the node advertises an address through it that nobody can use. The relay
// tells its peers when it stops (identify push: its hop protocol removed);
// closing the connection then makes AutoRelay drop the reservation, and it
// uses another relay (RELIABILITY F13).
func watchRelays(ctx context.Context, h host.Host, relays []peer.AddrInfo, interval time.Duration, log *slog.Logger) {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerProtocolsUpdated))
	if err != nil {
		log.Error("relays: no protocol updates; a relay that stops relaying is noticed late", "err", err)
		sub = nil
	}
	watchRelaysWith(ctx, h, sub, relays, interval, log)
}

// watchRelaysWith is watchRelays with its subscription to protocol updates
// (nil: none), which it closes.
func watchRelaysWith(ctx context.Context, h host.Host, sub event.Subscription, relays []peer.AddrInfo,
	interval time.Duration, log *slog.Logger) {
	var updates <-chan any
	if sub != nil {
		defer sub.Close()
		updates = sub.Out()
	}
	configured := func(p peer.ID) bool {
		return slices.ContainsFunc(relays, func(r peer.AddrInfo) bool { return r.ID == p })
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			u := e.(event.EvtPeerProtocolsUpdated)
			if configured(u.Peer) && slices.Contains(u.Removed, relayHopProtocol) {
				dropRelay(h, u.Peer, "relay stopped relaying; dropping its reservation to use another relay", log)
			}
			continue
		case <-t.C:
		}
		for _, r := range relays {
			if h.Network().Connectedness(r.ID) != network.Connected {
				continue
			}
			if reservedOn(h, r.ID) && !speaksHop(h, r.ID) {
				dropRelay(h, r.ID, "relay no longer relays; dropping its reservation to use another relay", log)
				continue
			}
			if err := pingOnce(ctx, h, r.ID, interval); err != nil && ctx.Err() == nil {
				dropRelay(h, r.ID, "relay does not answer; closing its connections", log, "err", err)
			}
		}
	}
}

// pingOnce pings p once and waits up to timeout for the answer. ping.Ping
// closes its channel without a result when its context ends first: that is
// no answer, an error, not a zero Result with no error (which kith took for
// an answer, so a relay that went away unannounced was noticed only at
// QUIC's 30 s idle timeout, seen in node/natlab, RELIABILITY F2).
func pingOnce(ctx context.Context, h host.Host, p peer.ID, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, ok := <-ping.Ping(pctx, h, p)
	if !ok {
		return fmt.Errorf("node: no answer to a ping within %v: %w", timeout, context.DeadlineExceeded)
	}
	return res.Error
}

// dropRelay closes the connections to relay r, saying why.
func dropRelay(h host.Host, r peer.ID, why string, log *slog.Logger, args ...any) {
	log.Warn(why, append([]any{"relay", r}, args...)...)
	h.Network().ClosePeer(r)
}

// reservedOn reports whether h advertises an address through relay r.
func reservedOn(h host.Host, r peer.ID) bool {
	return slices.ContainsFunc(h.Addrs(), func(a ma.Multiaddr) bool {
		id, ok := relayOf(a)
		return ok && id == r
	})
}

// speaksHop reports whether r last said it serves the relay protocol.
func speaksHop(h host.Host, r peer.ID) bool {
	ps, err := h.Peerstore().SupportsProtocols(r, relayHopProtocol)
	return err == nil && len(ps) > 0
}

// notRelayingYet is logged while an undeclared relay waits for AutoNAT.
const notRelayingYet = "not relaying yet: this node is not known to be reachable from outside. " +
	"It relays once AutoNAT (its peers dialing back) confirms one of its addresses; " +
	"if this host is reachable, pass --announce with its public address (or listen on an explicit public IP) to relay from the start"

// relayService runs the circuit relay v2 service of kith relay: while
// any of its public addresses is known to be reachable (AutoNAT v2 per
// address, and the relay's own reachability check), else while AutoNAT v1
// says public, and from the start when the operator declared it reachable,
// until every address it knows of turns out unreachable.
//
// go-libp2p's EnableRelayService instead waits for AutoNAT v1 to say public,
// and a v1 client only asks peers that have public addresses to dial it
// back. A relay's clients are behind NAT and have none, so a relay that only
// they know (the usual kith setup: one relay for a team) would never learn
// it is public; AutoNAT v2, which every kith node serves, confirms it within
// seconds (seen in node/natlab). And AutoNAT v2 re-checks a confirmed
// address only once an hour: the relay's own check (relay_reach.go) notices
// within relay.reachability_check when it stops being reachable.
type relayService struct {
	h        host.Host
	opts     relayOptionSets
	hopWrap  func(host.Host, network.Stream) network.Stream // tests
	allowed  func(peer.ID) bool
	declared bool
	check    time.Duration // how often to run the reachability check
	log      *slog.Logger

	relay *splitRelay
	v1    network.Reachability
	v2    event.EvtHostReachableAddrsChanged
	reach reachState
}

// checkResult is one round of the reachability check.
type checkResult struct {
	verdict map[string]bool
	addrs   []string
}

// run follows reachability events and checks until ctx ends, then stops the
// service.
func (rs *relayService) run(ctx context.Context, sub event.Subscription) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer sub.Close()
	defer func() {
		if rs.relay != nil {
			rs.relay.Close()
		}
	}()
	if rs.relay == nil {
		rs.log.Warn(notRelayingYet)
	}
	checker := &reachChecker{h: rs.h, allowed: rs.allowed, log: rs.log}
	tick := time.NewTicker(rs.check)
	defer tick.Stop()
	results := make(chan checkResult, 1) // one round at a time: never blocks
	checking := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !checking {
				checking = true
				wg.Go(func() {
					v, addrs := checker.round(ctx)
					results <- checkResult{v, addrs}
				})
			}
		case r := <-results:
			checking = false
			if changed := rs.reach.applyCheck(r.verdict, r.addrs); len(changed) > 0 {
				reachable, unreachable := rs.reach.split()
				rs.log.Info("reachability check: colleagues dialed this relay back",
					"changed", changed, "reachable", reachable, "unreachable", unreachable)
			}
			rs.update()
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				rs.v1 = e.Reachability
			case event.EvtHostReachableAddrsChanged:
				rs.reach.applyEvent(rs.v2.Reachable, e.Reachable, true)
				rs.reach.applyEvent(rs.v2.Unreachable, e.Unreachable, false)
				rs.v2 = e
			}
			rs.update()
		}
	}
}

// update starts or stops the service to match what is known.
func (rs *relayService) update() {
	switch serve := relayShouldServe(rs.declared, rs.v1, rs.reach); {
	case serve && rs.relay == nil:
		r, err := newSplitRelay(rs.h, rs.allowed, rs.opts.colleagues, rs.opts.strangers, rs.hopWrap)
		if err != nil {
			rs.log.Error("relay service not started", "err", err)
			return
		}
		rs.relay = r
		reachable, _ := rs.reach.split()
		rs.log.Info("relay service started", "declared", rs.declared, "reachable", reachable,
			"autonat_v1", reachabilityName(rs.v1))
	case !serve && rs.relay != nil:
		rs.relay.Close()
		rs.relay = nil
		_, unreachable := rs.reach.split()
		rs.log.Warn("not reachable, not relaying: nobody outside can dial this relay (AutoNAT, or colleagues asked to dial it back); "+
			"a port-forward removed or a firewall closed? Its clients move to other relays; it relays again once reachable",
			"unreachable", unreachable, "autonat_v1", reachabilityName(rs.v1))
	}
}

// relayShouldServe says whether a relay serves given what it knows of each
// public address (AutoNAT v2 and its own check: any reachable one is
// enough; all known unreachable is not), and, while it knows none, what
// AutoNAT v1 last said, and then whether the operator declared it reachable.
func relayShouldServe(declared bool, v1 network.Reachability, reach reachState) bool {
	reachable, unreachable := reach.split()
	switch {
	case len(reachable) > 0:
		return true
	case len(unreachable) > 0:
		return false
	case v1 == network.ReachabilityPublic:
		return true
	case v1 == network.ReachabilityPrivate:
		return false
	default:
		return declared
	}
}

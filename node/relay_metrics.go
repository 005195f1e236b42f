package node

import (
	"context"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// maxPeerSeries bounds the per-peer series of a relay's byte metrics; peers
// beyond it, and every peer not allowed, are summed under peer="other".
const maxPeerSeries = 64

// relayBytes exports what a relay carried: bytes on the relay protocols in
// all, and bytes exchanged with each allowed peer (named by contact name, or
// peer ID), with bounded cardinality.
type relayBytes struct {
	bwc      *metrics.BandwidthCounter
	allowed  func(context.Context) []namedPeer
	relayed  *prometheus.Desc
	perPeer  *prometheus.Desc
	protocol []protocol.ID
}

type namedPeer struct {
	id   peer.ID
	name string
}

func newRelayBytes(bwc *metrics.BandwidthCounter, allowed func(context.Context) []namedPeer) *relayBytes {
	return &relayBytes{
		bwc: bwc, allowed: allowed,
		relayed: prometheus.NewDesc("kith_relay_relayed_bytes_total",
			"Bytes carried on relayed connections (circuit relay v2 hop and stop streams).", []string{"direction"}, nil),
		perPeer: prometheus.NewDesc("kith_relay_peer_bytes_total",
			"Bytes exchanged with each allowed peer (at most 64; the rest summed as other).", []string{"peer", "direction"}, nil),
		protocol: []protocol.ID{relayHopProtocol, "/libp2p/circuit/relay/0.2.0/stop"},
	}
}

// Describe implements prometheus.Collector.
func (c *relayBytes) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.relayed
	ch <- c.perPeer
}

// Collect implements prometheus.Collector.
func (c *relayBytes) Collect(ch chan<- prometheus.Metric) {
	var in, out int64
	for _, p := range c.protocol {
		s := c.bwc.GetBandwidthForProtocol(p)
		in, out = in+s.TotalIn, out+s.TotalOut
	}
	ch <- prometheus.MustNewConstMetric(c.relayed, prometheus.CounterValue, float64(in), "in")
	ch <- prometheus.MustNewConstMetric(c.relayed, prometheus.CounterValue, float64(out), "out")
	total := c.bwc.GetBandwidthTotals()
	restIn, restOut := total.TotalIn, total.TotalOut
	peers := c.allowed(context.Background())
	for _, p := range peers[:min(len(peers), maxPeerSeries)] {
		s := c.bwc.GetBandwidthForPeer(p.id)
		restIn, restOut = restIn-s.TotalIn, restOut-s.TotalOut
		ch <- prometheus.MustNewConstMetric(c.perPeer, prometheus.CounterValue, float64(s.TotalIn), p.name, "in")
		ch <- prometheus.MustNewConstMetric(c.perPeer, prometheus.CounterValue, float64(s.TotalOut), p.name, "out")
	}
	ch <- prometheus.MustNewConstMetric(c.perPeer, prometheus.CounterValue, float64(max(restIn, 0)), "other", "in")
	ch <- prometheus.MustNewConstMetric(c.perPeer, prometheus.CounterValue, float64(max(restOut, 0)), "other", "out")
}

// allowedPeers lists the relay's allowed peers, contacts by name first.
func (n *Node) allowedPeers(ctx context.Context) []namedPeer {
	var out []namedPeer
	seen := make(map[peer.ID]bool)
	if cs, err := n.store.Contacts(ctx); err == nil {
		for _, c := range cs {
			if c.Name != "" && !c.Blocked {
				out = append(out, namedPeer{c.PeerID, c.Name})
				seen[c.PeerID] = true
			}
		}
	}
	var rest []namedPeer
	for p := range n.relayAllow {
		if !seen[p] {
			rest = append(rest, namedPeer{p, p.String()})
		}
	}
	slices.SortFunc(rest, func(a, b namedPeer) int { return strings.Compare(a.name, b.name) })
	return append(out, rest...)
}

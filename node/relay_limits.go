package node

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
)

// Per-address connection limits of a relay's resource manager.
//
// go-libp2p admits 8 connections at once from one IPv4 address (one IPv6
// /56), and new ones at a burst of 16 and then one every 5 s. Loopback is
// exempt, so tests on 127.0.0.1 never meet these limits; colleagues behind
// one office NAT do: the ninth could not reach the team's relay, and after
// an outage the office reconnects far faster than one a 5 s. A relay
// (kith relay) therefore admits relay.conns_per_ip at once per address,
// paced at a burst of twice that and a refill of conns_per_ip/8 a second,
// and relay.prefix_limits for whole networks. A kith daemon keeps
// go-libp2p's limits: its peers are colleagues on their own addresses.

// connRefillPeriod is how long an address's emptied burst allowance takes,
// at the paced rate, to admit ConnsPerIP connections again.
const connRefillPeriod = 8 * time.Second

// relayConnLimits returns the resource manager options of a relay's
// per-address and per-network connection limits.
func relayConnLimits(r RelayConfig) ([]rcmgr.Option, error) {
	n := r.ConnsPerIP
	if n < 1 {
		return nil, fmt.Errorf("node: relay.conns_per_ip must be at least 1, got %d", n)
	}
	perIP := func(count int) rcmgr.ConnLimitPerSubnet { return rcmgr.ConnLimitPerSubnet{ConnCount: count} }
	v4 := []rcmgr.ConnLimitPerSubnet{perIP(n)}
	v4[0].PrefixLength = 32
	v6 := []rcmgr.ConnLimitPerSubnet{perIP(n), perIP(8 * n)}
	v6[0].PrefixLength, v6[1].PrefixLength = 56, 48

	// Replacing the prefix lists drops go-libp2p's loopback exemption: keep it.
	unlimited := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	var np4, np6 []rcmgr.NetworkPrefixLimit
	var rp []rate.PrefixLimit
	for _, p := range unlimited {
		l := rcmgr.NetworkPrefixLimit{Network: p, ConnCount: math.MaxInt}
		if p.Addr().Is4() {
			np4 = append(np4, l)
		} else {
			np6 = append(np6, l)
		}
		rp = append(rp, rate.PrefixLimit{Prefix: p}) // a zero Limit is no limit
	}
	for _, k := range slices.Sorted(maps.Keys(r.PrefixLimits)) {
		p, err := netip.ParsePrefix(k)
		if err != nil {
			return nil, fmt.Errorf("node: relay.prefix_limits: %q: %w", k, err)
		}
		count := r.PrefixLimits[k]
		if count < 1 {
			return nil, fmt.Errorf("node: relay.prefix_limits: %q: the limit must be at least 1, got %d", k, count)
		}
		p = p.Masked()
		l := rcmgr.NetworkPrefixLimit{Network: p, ConnCount: count}
		if p.Addr().Is4() {
			np4 = append(np4, l)
		} else {
			np6 = append(np6, l)
		}
		rp = append(rp, rate.PrefixLimit{Prefix: p, Limit: paced(count)})
	}
	limiter := &rate.Limiter{
		NetworkPrefixLimits: rp,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: paced(n)}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: paced(n)},
				{PrefixLength: 48, Limit: paced(8 * n)},
			},
			GracePeriod: time.Minute,
		},
	}
	return []rcmgr.Option{
		rcmgr.WithLimitPerSubnet(v4, v6),
		rcmgr.WithNetworkPrefixLimit(np4, np6),
		rcmgr.WithConnRateLimiters(limiter),
	}, nil
}

// paced is the rate of new connections for a limit of count at once: a
// burst of twice count (as go-libp2p's 16 for 8), refilled in
// connRefillPeriod.
func paced(count int) rate.Limit {
	return rate.Limit{RPS: float64(count) / connRefillPeriod.Seconds(), Burst: 2 * count}
}

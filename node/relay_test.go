package node_test

import (
	"testing"

	"github.com/kithnet/kith/node"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// A kith relay serves unless AutoNAT shows it unreachable; AutoNAT v2's
// per-address answer outweighs v1's.
func TestRelayServesUnlessShownUnreachable(t *testing.T) {
	addr := []ma.Multiaddr{ma.StringCast("/ip4/203.0.113.5/tcp/4011")}
	tests := []struct {
		name string
		v1   network.Reachability
		v2   event.EvtHostReachableAddrsChanged
		want bool
	}{
		{"nothing known yet", network.ReachabilityUnknown, event.EvtHostReachableAddrsChanged{}, true},
		{"v1 public", network.ReachabilityPublic, event.EvtHostReachableAddrsChanged{}, true},
		{"v1 private", network.ReachabilityPrivate, event.EvtHostReachableAddrsChanged{}, false},
		{"v2 reachable", network.ReachabilityUnknown, event.EvtHostReachableAddrsChanged{Reachable: addr}, true},
		{"v2 reachable, v1 private", network.ReachabilityPrivate, event.EvtHostReachableAddrsChanged{Reachable: addr}, true},
		{"v2 unreachable", network.ReachabilityUnknown, event.EvtHostReachableAddrsChanged{Unreachable: addr}, false},
		{"v2 unreachable, v1 public", network.ReachabilityPublic, event.EvtHostReachableAddrsChanged{Unreachable: addr}, false},
		{"v2 unknown only", network.ReachabilityUnknown, event.EvtHostReachableAddrsChanged{Unknown: addr}, true},
	}
	for _, tt := range tests {
		if got := node.RelayReachable(tt.v1, tt.v2); got != tt.want {
			t.Errorf("%s: relayReachable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

package chat

import (
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// DMLimits adds the resource-manager limits of the direct-message service:
// a peer may hold a few DM streams at once (a stream carries any number of
// messages), so a peer that opens streams and stalls cannot hold more than
// that, and only until the stream deadline.
func DMLimits(l *rcmgr.ScalingLimitConfig) {
	l.AddServiceLimit(DMServiceName,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 128, StreamsOutbound: 128, Streams: 256, Memory: 32 << 20})
	l.AddServicePeerLimit(DMServiceName,
		rcmgr.BaseLimit{StreamsInbound: 4, StreamsOutbound: 4, Streams: 8, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{})
}

package node

import "time"

// MakeTicket exposes makeTicket to the external tests.
var MakeTicket = makeTicket

// WithBootstrapInterval shortens how often a node checks its DHT connection.
func WithBootstrapInterval(d time.Duration) Option {
	return func(o *options) { o.bootstrapEvery = d }
}

// RelayReachable exposes relayReachable to the external tests.
var RelayReachable = relayReachable

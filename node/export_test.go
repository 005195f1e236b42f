package node

import "time"

// MakeTicket exposes makeTicket to the external tests.
var MakeTicket = makeTicket

// WithBootstrapInterval shortens how often a node checks its DHT connection.
func WithBootstrapInterval(d time.Duration) Option {
	return func(o *options) { o.bootstrapEvery = d }
}

// WithForcedPublic makes a relay on loopback relay from the start, as one
// with --announce does (announcing needs a known port; tests use port 0).
func WithForcedPublic() Option {
	return func(o *options) { o.forcePublic = true }
}

// RelayShouldServe exposes relayShouldServe to the external tests.
var RelayShouldServe = relayShouldServe

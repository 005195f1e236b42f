package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p/core/peer"
)

func embedded(t *testing.T, n *node.Node) *api.Client {
	c, stop := api.Embedded(n, nodetest.Logger(t))
	t.Cleanup(stop)
	return c
}

func TestEventsStreamPeerConnected(t *testing.T) {
	a := nodetest.Start(t)
	b := nodetest.Start(t)
	c := embedded(t, a)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got node.Event
	go func() {
		errc <- c.Events(ctx, func() { close(ready) }, func(ev node.Event) error {
			if ev.Type == node.EventPeerConnected && ev.PeerID == b.ID().String() {
				got = ev
				return errStop
			}
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("events ended before ready: %v", err)
	}
	if err := b.Host().Connect(t.Context(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, errStop) {
		t.Fatalf("events: %v", err)
	}
	if got.Path != node.PathDirect || got.Addr == "" || got.Time.IsZero() {
		t.Fatalf("peer.connected event: %+v", got)
	}
}

var errStop = errors.New("stop")

func TestAPIErrors(t *testing.T) {
	n := nodetest.Start(t)
	c := embedded(t, n)
	tests := []struct {
		req        api.PingRequest
		code       string
		httpStatus int
	}{
		{api.PingRequest{Peer: "nobody", Count: 1}, api.CodeUnknownPeer, http.StatusBadRequest},
		{api.PingRequest{Peer: n.ID().String(), Count: 0}, api.CodeBadRequest, http.StatusBadRequest},
		{api.PingRequest{Peer: n.ID().String(), Count: 1, IntervalMs: -1}, api.CodeBadRequest, http.StatusBadRequest},
	}
	for _, tt := range tests {
		err := c.Ping(t.Context(), tt.req, func(node.PingResult) { t.Error("unexpected result") })
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tt.code || ae.Status != tt.httpStatus {
			t.Errorf("ping %+v: %v (%+v), want code %s", tt.req, err, ae, tt.code)
		}
	}
}

// A daemon shutting down ends open event streams instead of waiting for
// their clients.
func TestShutdownEndsEventStreams(t *testing.T) {
	n := nodetest.Start(t)
	c, stop := api.Embedded(n, nodetest.Logger(t))
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(t.Context(), func() { close(ready) }, func(node.Event) error { return nil })
	}()
	<-ready
	stop() // returns only once the stream's handler has returned
	if err := <-errc; err != nil {
		t.Fatalf("event stream should end cleanly at shutdown: %v", err)
	}
}

func TestIdentityAndStatus(t *testing.T) {
	n := nodetest.Start(t)
	c := embedded(t, n)
	id, err := c.Identity(t.Context())
	if err != nil || id.PeerID != n.ID().String() || id.Ticket == "" {
		t.Fatalf("identity: %+v %v", id, err)
	}
	st, err := c.Status(t.Context())
	if err != nil || st.PeerID != n.ID().String() || st.Reachability != "unknown" || st.Peers == nil || st.Relays == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
}

// The benchmark routes exist only with node.WithBench (KITH_BENCH=1).
func TestBenchRoutes(t *testing.T) {
	n, err := node.New(nodetest.Config(t), node.WithLogger(nodetest.Logger(t)), node.WithBench())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c := embedded(t, n)
	if st, err := c.BenchStats(t.Context()); err != nil || st.FilesSentBytes != 0 {
		t.Fatalf("GET /v1/bench/stats with WithBench: %+v %v", st, err)
	}
	_, err = c.BenchCopy(t.Context(), "nobody", "/nonexistent")
	if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != api.CodeBadRequest {
		t.Fatalf("POST /v1/bench/copy of a missing file: %v", err)
	}

	c = embedded(t, nodetest.Start(t))
	_, err = c.BenchCopy(t.Context(), "x", "/x")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("POST /v1/bench/copy without KITH_BENCH: %v", err)
	}
	if _, err := c.BenchStats(t.Context()); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("GET /v1/bench/stats without KITH_BENCH: %v", err)
	}
}

package node_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// gateWorld is RELIABILITY B11's setting: a closed relay R that is also the
// DHT's bootstrap node, and a node N (accept = contacts, the default) that
// R allows and that holds a reservation on R. Strangers reach N three
// ways: directly, only through R's circuit, and found through the DHT.
type gateWorld struct {
	r, n      *node.Node
	strangers map[peer.ID]*node.Node // the strangers that are kith nodes
}

func newGateWorld(t *testing.T) gateWorld {
	t.Helper()
	w := nothingLost(t)
	nCfg := nodetest.Config(t)
	nKey := identityOf(t, nCfg.Home)
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Closed = true
		cfg.Relay.Allow = []string{nKey.String()}
	})
	nCfg.Network.Bootstrap = nodetest.P2PAddrs(r)
	n, err := node.New(nCfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	w.add(r)
	w.add(n)
	if _, err := circuitclient.Reserve(t.Context(), n.Host(), relayInfo(r)); err != nil {
		t.Fatalf("N's reservation on R: %v", err)
	}
	return gateWorld{r: r, n: n, strangers: map[peer.ID]*node.Node{}}
}

// identityOf creates the identity of a home and returns its peer ID.
func identityOf(t *testing.T, home string) peer.ID {
	t.Helper()
	k, _, err := node.LoadIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// gatePaths are the ways a stranger S reaches N: host starts S, connect
// is S's attempt to connect.
var gatePaths = []struct {
	name    string
	host    func(t *testing.T, w gateWorld) host.Host
	connect func(t *testing.T, w gateWorld, s host.Host) error
}{
	{"direct", func(t *testing.T, w gateWorld) host.Host { return bareHost(t) },
		func(t *testing.T, w gateWorld, s host.Host) error {
			return s.Connect(t.Context(), peer.AddrInfo{ID: w.n.ID(), Addrs: w.n.Host().Addrs()})
		}},
	{"relay", func(t *testing.T, w gateWorld) host.Host {
		// No listen address and no hole punching: S's only way to N is
		// R's circuit, and it stays so (a kith node would upgrade to a
		// direct connection on loopback).
		s, err := libp2p.New(libp2p.NoListenAddrs, libp2p.EnableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, func(t *testing.T, w gateWorld, s host.Host) error {
		return s.Connect(network.WithAllowLimitedConn(t.Context(), "test"), circuitTo(w.r, w.n.ID()))
	}},
	{"dht", func(t *testing.T, w gateWorld) host.Host {
		s := nodetest.Start(t, nodetest.BootstrapFrom(w.r))
		w.strangers[s.ID()] = s
		return s.Host()
	}, func(t *testing.T, w gateWorld, s host.Host) error {
		// S is given N's peer ID only: its routed host asks the DHT (and
		// asks again while N is not in it yet).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return w.strangers[s.ID()].Connect(ctx, w.n.ID())
	}},
}

// onlyRelayed fails the test unless every connection of h to p is relayed.
func onlyRelayed(t *testing.T, h host.Host, p peer.ID) {
	t.Helper()
	for _, c := range h.Network().ConnsToPeer(p) {
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
			t.Fatalf("S reached N directly (%s), not through R", c.RemoteMultiaddr())
		}
	}
}

// rawDM sends text to p as a direct message and returns p's answer.
func rawDM(ctx context.Context, h host.Host, p peer.ID, text string) (protocols.DMFrame, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "test"), p, protocols.DMProtocol)
	if err != nil {
		return protocols.DMFrame{}, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(30 * time.Second))
	m := &protocols.DMMessage{SentAt: time.Now(), Text: text}
	rand.Read(m.ID[:])
	if err := protocols.NewDMWriter(s).Write(protocols.DMFrame{Message: m}); err != nil {
		return protocols.DMFrame{}, err
	}
	return protocols.NewDMReader(s).Read()
}

// A stranger who reaches N on any path is refused by N's stream handlers:
// its direct message gets NOT_ALLOWED, its file offer NOT_ALLOWED, and N
// stores nothing and shows no message or offer event. The relay carries the
// stranger to N (N is allowed: the destination decides), and the DHT finds
// N for it: refusing strangers is the handlers' work, not the gater's.
func TestStrangerRefusedOnEveryPath(t *testing.T) {
	w := newGateWorld(t)
	nEvents, cancel := w.n.Events().Subscribe()
	defer cancel()
	for _, path := range gatePaths {
		t.Run(path.name, func(t *testing.T) {
			s := path.host(t, w)
			if err := path.connect(t, w, s); err != nil {
				t.Fatalf("S could not reach N at all: %v", err)
			}
			if path.name == "relay" {
				onlyRelayed(t, s, w.n.ID())
			}
			f, err := rawDM(t.Context(), s, w.n.ID(), "let me in")
			if err != nil || f.Error == nil || f.Error.Code != protocols.CodeNotAllowed {
				t.Errorf("stranger's message: %+v %v, want NOT_ALLOWED", f, err)
			}
			ctx := network.WithAllowLimitedConn(t.Context(), "test")
			ans, err := rawOffer(ctx, s, w.n.ID(), oneFileManifest(t))
			if err != nil || ans.Error == nil || ans.Error.Code != protocols.CodeNotAllowed {
				t.Errorf("stranger's offer: %+v %v, want NOT_ALLOWED", ans, err)
			}
			if path.name == "relay" {
				onlyRelayed(t, s, w.n.ID()) // both went through R
			}
		})
	}
	ms, err := w.n.Messages(t.Context(), "", 0)
	if err != nil || len(ms) != 0 {
		t.Errorf("N stored messages from strangers: %+v %v", ms, err)
	}
	ts, err := w.n.Transfers(t.Context())
	if err != nil || len(ts) != 0 {
		t.Errorf("N stored transfers from strangers: %+v %v", ts, err)
	}
	for {
		select {
		case ev := <-nEvents:
			if ev.Type == node.EventMessage || ev.Type == node.EventTransfer {
				t.Errorf("N showed a %s event for a stranger: %+v", ev.Type, ev)
			}
			continue
		default:
		}
		break
	}
}

// A peer N blocked is refused by N's gater on every path, once its identity
// is proven (InterceptSecured): directly, through the relay, and after
// the DHT found N. Its messages never arrive.
func TestBlockedPeerRefusedOnEveryPath(t *testing.T) {
	w := newGateWorld(t)
	for _, path := range gatePaths {
		t.Run(path.name, func(t *testing.T) {
			s := path.host(t, w)
			if _, err := w.n.Block(t.Context(), s.ID().String(), true); err != nil {
				t.Fatal(err)
			}
			if err := path.connect(t, w, s); err == nil {
				// The handshake can complete on S's side before N closes it.
				waitDisconnected(t, w.n, s.ID())
			}
			if w.n.Host().Network().Connectedness(s.ID()) == network.Connected {
				t.Fatal("N keeps a connection to a blocked peer")
			}
			if f, err := rawDM(t.Context(), s, w.n.ID(), "after the block"); err == nil {
				t.Fatalf("a blocked peer's message got an answer: %+v", f)
			}
		})
	}
	if ms, _ := w.n.Messages(t.Context(), "", 0); len(ms) != 0 {
		t.Errorf("N stored a blocked peer's messages: %+v", ms)
	}
}

// R's ACL: with --closed, a peer R does not allow gets no reservation
// (TestClosedRelayRefusesStrangers), and R carries no circuit between two
// peers it does not allow. A contact R removes loses its circuits at once:
// a stranger's circuit to it, over the reservation it still holds, is
// refused and counted.
func TestClosedRelayRefusesCircuitsBetweenStrangers(t *testing.T) {
	f := nodetest.Start(t)
	r := startRelay(t, func(cfg *node.Config) { cfg.Relay.Closed = true })
	if _, err := r.AddContact(t.Context(), "fran", f.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := circuitclient.Reserve(t.Context(), f.Host(), relayInfo(r)); err != nil {
		t.Fatalf("contact's reservation: %v", err)
	}
	s := bareHost(t)
	ctx := network.WithAllowLimitedConn(t.Context(), "test")
	if err := s.Connect(ctx, circuitTo(r, f.ID())); err != nil {
		t.Fatalf("stranger to R's contact: %v", err)
	}
	s.Network().ClosePeer(f.ID())
	if err := r.RemoveContact(t.Context(), "fran"); err != nil {
		t.Fatal(err)
	}
	s2 := bareHost(t)
	if err := s2.Connect(ctx, circuitTo(r, f.ID())); err == nil {
		t.Fatal("a closed relay carried a stranger to a peer it no longer allows")
	}
	// One refusal per relay address S2 tried.
	if got := metricValue(t, r, "kith_relay_circuits_refused_total", "reason", "not_allowed"); got < 1 {
		t.Fatalf("refused circuits metric = %v, want >= 1", got)
	}
}

// metricValue is the value of n's metric name (a counter or a gauge) with
// the label key=value, or 0 if there is none.
func metricValue(t *testing.T, n *node.Node, name, key, value string) float64 {
	t.Helper()
	mfs, err := n.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == key && l.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// kith makes Ed25519 identities only (LoadIdentity refuses any other key),
// so a peer with an RSA, secp256k1 or ECDSA identity is not a kith node: the
// gater refuses it once its key is proven and N never dials one; such a
// peer ID cannot be added as a contact or put on a relay's allow list (the
// list is where an "allow-listed ID with a wrong key type" would come
// from; an Ed25519 ID cannot be presented with another key, the handshake
// proves the key the ID names).
func TestNonEd25519IdentityRefused(t *testing.T) {
	n := nodetest.Start(t)
	for _, kt := range []struct {
		name string
		gen  func() (crypto.PrivKey, error)
	}{
		{"rsa", func() (crypto.PrivKey, error) {
			k, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
			return k, err
		}},
		{"secp256k1", func() (crypto.PrivKey, error) { k, _, err := crypto.GenerateSecp256k1Key(rand.Reader); return k, err }},
		{"ecdsa", func() (crypto.PrivKey, error) { k, _, err := crypto.GenerateECDSAKeyPair(rand.Reader); return k, err }},
	} {
		t.Run(kt.name, func(t *testing.T) {
			key, err := kt.gen()
			if err != nil {
				t.Fatal(err)
			}
			h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if err := h.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err == nil {
				waitDisconnected(t, n, h.ID())
			}
			if n.Host().Network().Connectedness(h.ID()) == network.Connected {
				t.Fatalf("N accepted a %s identity", kt.name)
			}
			n.Host().Peerstore().AddAddrs(h.ID(), h.Addrs(), time.Minute)
			if _, err := n.Host().Network().DialPeer(t.Context(), h.ID()); !errors.Is(err, swarm.ErrGaterDisallowedConnection) {
				t.Fatalf("N dialing a %s identity: %v, want refused by the gater", kt.name, err)
			}
			if _, err := n.AddContact(t.Context(), "odd", h.ID().String()); !errors.Is(err, node.ErrNotEd25519) {
				t.Errorf("adding a %s peer as a contact: %v, want ErrNotEd25519", kt.name, err)
			}
			cfg := nodetest.Config(t)
			cfg.Relay.Enabled, cfg.Relay.Allow = true, []string{h.ID().String()}
			if err := cfg.Validate(); !errors.Is(err, node.ErrNotEd25519) {
				t.Errorf("a relay allowing a %s peer: %v, want ErrNotEd25519", kt.name, err)
			}
		})
	}
}

// metricTotal is the sum of every series of n's metric name (0 if none).
func metricTotal(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return total
}

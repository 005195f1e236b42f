package files

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// TestLimitedRelayPathWaitsThenSaysSo: with only a relayed connection
// under go-libp2p's default limits (128 KiB, 2 min), a transfer does not
// start; after WaitDirect it pauses and says what is missing.
func TestLimitedRelayPathWaitsThenSaysSo(t *testing.T) {
	relay, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.EnableRelayService(), libp2p.ForceReachabilityPublic())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	cfg := Config{WaitDirect: 300 * time.Millisecond, RetryMin: time.Hour, RetryMax: time.Hour}
	// a listens nowhere: it is reachable only through its reservation.
	a, b := newNode(t, cfg, libp2p.NoListenAddrs, libp2p.EnableRelay()), newNode(t, cfg)
	ri := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	if err := a.h.Connect(t.Context(), ri); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(t.Context(), a.h, ri); err != nil {
		t.Fatal(err)
	}
	// b knows a only through the relay.
	circuit := ma.StringCast("/p2p/" + relay.ID().String() + "/p2p-circuit")
	for _, addr := range relay.Addrs() {
		b.h.Peerstore().AddAddr(a.h.ID(), addr.Encapsulate(circuit), peerstore.PermanentAddrTTL)
	}
	b.h.Peerstore().AddAddrs(relay.ID(), relay.Addrs(), peerstore.PermanentAddrTTL)

	file := filepath.Join(t.TempDir(), "big.bin")
	randomFile(t, file, 1<<20)
	share, err := a.svc.Share(t.Context(), []string{file}, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.svc.Fetch(t.Context(), a.h.ID(), share.ContentID, share.Secret, ReceiveOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got := b.waitState(t, in.ID, StatePaused, StateDone)
	if got.State != StatePaused || !strings.Contains(got.Error, "limited relay path") {
		t.Fatalf("transfer %s with %q; want it paused on a limited relay path", got.State, got.Error)
	}
	if !strings.Contains(got.Error, relay.ID().String()) || !strings.Contains(got.Error, "128.0 KiB") {
		t.Errorf("the message %q does not name the relay and its limit", got.Error)
	}
}

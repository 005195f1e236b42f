package node_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/kithnet/kith/node"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// dhtRecord is a value record an attacker offers a kith DHT node.
type dhtRecord struct {
	name       string
	key        string
	value      []byte
	wellFormed bool // kad-dht's default validators (pk, ipns) accept it
}

// poisonRecords are RELIABILITY B15's records: one valid record per default
// namespace, and the bad ones (wrong signer, older sequence, oversized,
// unsigned, unknown namespace). It also returns the newest valid IPNS
// record's key and the older and newer values, for Select.
func poisonRecords(t *testing.T) (recs []dhtRecord, ipnsKey string, older, newer []byte) {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	pkBytes, err := crypto.MarshalPublicKey(sk.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	ipnsKey = string(ipns.NameFromPeer(id).RoutingKey())
	p, err := path.NewPath("/ipfs/bafkqaaa")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(signer crypto.PrivKey, v path.Path, seq uint64) []byte {
		r, err := ipns.NewRecord(signer, v, seq, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ipns.MarshalRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	big, err := path.NewPath("/ipfs/bafkqaaa/" + strings.Repeat("x", ipns.MaxRecordSize))
	if err != nil {
		t.Fatal(err)
	}
	older, newer = rec(sk, p, 1), rec(sk, p, 2)
	recs = []dhtRecord{
		{"pk, valid", "/pk/" + string(id), pkBytes, true},
		{"ipns, valid (seq 2)", ipnsKey, newer, true},
		{"ipns, older sequence (seq 1)", ipnsKey, older, true},
		{"ipns, wrong signer", ipnsKey, rec(other, p, 3), false},
		{"ipns, oversized", ipnsKey, rec(sk, big, 4), false},
		{"ipns, unsigned garbage", ipnsKey, []byte("trust me"), false},
		{"pk, someone else's key", "/pk/" + string(id), mustPub(t, other), false},
		{"unknown namespace", "/kith/rooms/lobby", []byte("members: mallory"), false},
		{"no namespace", "lobby", []byte("x"), false},
	}
	return recs, ipnsKey, older, newer
}

func mustPub(t *testing.T, k crypto.PrivKey) []byte {
	b, err := crypto.MarshalPublicKey(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RELIABILITY B15: kith's DHT (both halves of a relay's dual DHT, the
// validator it really runs) refuses every value record: kith stores none
// (see dhtValidator). The same records go through kad-dht's default
// validators too, as a control: those accept the valid ones, refuse wrong
// signer, oversized, unsigned and unknown-namespace records, and Select
// picks the newest of two valid IPNS records — so what kith refuses is
// well formed, and refused for its namespace alone.
func TestDHTRefusesValueRecords(t *testing.T) {
	r := startRelay(t, nil)
	recs, ipnsKey, older, newer := poisonRecords(t)
	defaults := record.NamespacedValidator{"pk": record.PublicKeyValidator{}, "ipns": ipns.Validator{}}
	for _, rc := range recs {
		err := defaults.Validate(rc.key, rc.value)
		if (err == nil) != rc.wellFormed {
			t.Errorf("control: kad-dht's defaults on %s: %v", rc.name, err)
		}
	}
	if i, err := defaults.Select(ipnsKey, [][]byte{older, newer}); err != nil || i != 1 {
		t.Errorf("control: defaults' Select = %d, %v, want the newer record (1)", i, err)
	}
	for half, d := range map[string]*dht.IpfsDHT{"wan": r.DHT().WAN, "lan": r.DHT().LAN} {
		for _, rc := range recs {
			if err := d.Validator.Validate(rc.key, rc.value); err == nil {
				t.Errorf("%s DHT accepted %s", half, rc.name)
			}
		}
		if i, err := d.Validator.Select(ipnsKey, [][]byte{older, newer}); err == nil {
			t.Errorf("%s DHT's Select chose record %d", half, i)
		}
	}
}

// A peer PUTs the newest valid IPNS record to a kith relay (a DHT server):
// the relay has nothing under the key afterwards (TestDHTRefusesValueRecords
// shows why: its validator refuses it).
func TestDHTPutValueRefused(t *testing.T) {
	r := startRelay(t, nil)
	_, ipnsKey, _, newer := poisonRecords(t)
	_, d := dhtClientOf(t, r)
	// PutValue stores locally, then puts to the closest peers (the relay)
	// and waits for them; a peer's refusal is only logged.
	if err := d.PutValue(t.Context(), ipnsKey, newer); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if v, err := r.DHT().WAN.GetValue(ctx, ipnsKey); err == nil {
		t.Fatalf("the relay holds %d bytes under the key", len(v))
	}
}

// waitRoutingTable waits until d's routing table holds p (identify adds it
// once it learns p serves the DHT protocol).
func waitRoutingTable(t *testing.T, d *dht.IpfsDHT, p peer.ID) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for d.RoutingTable().Find(p) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s never entered the routing table", p)
		}
		select {
		case <-d.RefreshRoutingTable():
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// Provider records (room rendezvous) are not validated, but a kith DHT
// server stores one only for the peer that sent it: an attacker announcing
// a colleague as provider of a rendezvous key, at the attacker's own
// addresses, is ignored; its announcement of itself is stored.
func TestDHTProviderRecordOnlyFromItsPeer(t *testing.T) {
	r := startRelay(t, nil)
	victim := bareHost(t)
	evil := bareHost(t)
	if err := evil.Connect(t.Context(), relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	key := []byte("\x12\x20" + strings.Repeat("k", 32)) // a sha2-256 multihash, as rendezvous keys are
	announce := func(who peer.ID) network.Stream {
		s, err := evil.NewStream(t.Context(), r.ID(), "/kith/kad/1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		m := dhtpb.NewMessage(dhtpb.Message_ADD_PROVIDER, key, 0)
		m.ProviderPeers = dhtpb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: who, Addrs: evil.Addrs()}})
		writeDelimited(t, s, m)
		return s
	}
	// The relay answers a refused ADD_PROVIDER by resetting the stream.
	spoof := announce(victim.ID())
	spoof.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := spoof.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
		t.Fatalf("spoofed ADD_PROVIDER: stream read %v, want reset", err)
	}
	own := announce(evil.ID())
	defer own.Reset()
	ps := r.DHT().WAN.ProviderStore()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := ps.GetProviders(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		has := func(p peer.ID) bool {
			for _, ai := range got {
				if ai.ID == p {
					return true
				}
			}
			return false
		}
		if has(victim.ID()) {
			t.Fatal("the relay stored a provider record for a peer that did not send it")
		}
		if has(evil.ID()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never stored the attacker's own provider record")
		}
		waitABit(t, 20*time.Millisecond)
	}
}

func writeDelimited(t *testing.T, s interface{ Write([]byte) (int, error) }, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// waitABit is a poll interval, not a synchronisation: callers re-check
// their condition after it, up to a deadline.
func waitABit(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-t.Context().Done():
	}
}

// dhtClientOf is a DHT client (a bare host, kith's protocol prefix)
// connected to the relay r, with r in its routing table.
func dhtClientOf(t *testing.T, r *node.Node) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h := bareHost(t)
	d, err := dht.New(h, dht.ProtocolPrefix(node.DHTProtocolPrefix), dht.Mode(dht.ModeClient),
		dht.BootstrapPeers(relayInfo(r)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := h.Connect(t.Context(), relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	waitRoutingTable(t, d, r.ID())
	return h, d
}

package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"
)

// The DHT protocols of a kith node's two halves.
const (
	wanKad = protocol.ID(node.DHTProtocolPrefix + "/kad/1.0.0")
	lanKad = protocol.ID(node.DHTProtocolPrefix + "/lan/kad/1.0.0")
)

func randomPeer(t *testing.T) peer.ID {
	t.Helper()
	h := bareHost(t)
	id := h.ID()
	h.Close()
	return id
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 34)
	k[0], k[1] = 0x12, 0x20 // a sha2-256 multihash, as rendezvous keys are
	if _, err := rand.Read(k[2:]); err != nil {
		t.Fatal(err)
	}
	return k
}

func timeValue(at time.Time) []byte { return binary.AppendVarint(nil, at.UnixNano()) }

// The provider store refuses a new record once its peer holds PerPeer or
// the store holds Total, lets renewals through at the cap, frees a place
// on delete, and answers a query for one key with that key's records.
func TestProviderStoreCaps(t *testing.T) {
	ctx := t.Context()
	s := node.NewProviderStore(4, 10)
	a, b, c := randomPeer(t), randomPeer(t), randomPeer(t)
	keys := make([][]byte, 8)
	for i := range keys {
		keys[i] = randomKey(t)
	}
	put := func(k []byte, p peer.ID) {
		t.Helper()
		if err := s.Put(ctx, node.ProviderKey(k, p), timeValue(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	held := func(k []byte, p peer.ID) bool {
		ok, err := s.Has(ctx, node.ProviderKey(k, p))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, k := range keys {
		put(k, a)
	}
	if got := node.ProviderStoreCounts(s); got.Records != 4 || got.MaxPeer != 4 || got.Refused != 4 {
		t.Fatalf("after a's 8 records, cap 4 a peer: %+v, want 4 held, 4 refused", got)
	}
	if held(keys[7], a) {
		t.Fatal("a's fifth record was stored")
	}
	put(keys[0], a) // a renewal at the cap
	if got := node.ProviderStoreCounts(s); got.Records != 4 || got.Refused != 4 {
		t.Fatalf("a's renewal: %+v", got)
	}
	for _, k := range keys {
		put(k, b)
		put(k, c)
	}
	got := node.ProviderStoreCounts(s)
	if got.Records != 10 || got.Peers != 3 {
		t.Fatalf("after b's and c's 16 records, cap 10 in all: %+v, want 10 held by 3 peers", got)
	}
	// A query for one key is answered from its records alone.
	enc := node.ProviderKey(keys[0], a).Parent().String()
	res, err := s.Query(ctx, dsq.Query{Prefix: enc})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 { // a, b and c, each with keys[0]
		t.Fatalf("query of keys[0]: %d records, want 3", len(all))
	}
	res, err = s.Query(ctx, dsq.Query{Prefix: records.ProvidersKeyPrefix, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if all, _ = res.Rest(); len(all) != 10 {
		t.Fatalf("query of every record: %d, want 10", len(all))
	}
	// Deleting one frees a place, for anybody.
	if err := s.Delete(ctx, node.ProviderKey(keys[0], a)); err != nil {
		t.Fatal(err)
	}
	put(keys[7], c)
	if !held(keys[7], c) || held(keys[0], a) {
		t.Fatal("after a delete, the next record did not take the freed place")
	}
	if err := s.Put(ctx, ds.NewKey("/pk/x"), []byte("v")); err == nil {
		t.Fatal("a value record's key was accepted")
	}
}

// A key with many providers (a busy room's rendezvous) keeps every record
// findable as records come and go: 100 providers, every third removed,
// the rest renewed, then removed one by one.
func TestProviderStoreManyProvidersOfOneKey(t *testing.T) {
	ctx := t.Context()
	s := node.NewProviderStore(4, 1000)
	key := randomKey(t)
	peers := make([]peer.ID, 100)
	for i := range peers {
		peers[i] = randomPeer(t)
		if err := s.Put(ctx, node.ProviderKey(key, peers[i]), timeValue(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(peers); i += 3 {
		if err := s.Delete(ctx, node.ProviderKey(key, peers[i])); err != nil {
			t.Fatal(err)
		}
	}
	later := timeValue(time.Now().Add(time.Hour))
	for i, p := range peers {
		k := node.ProviderKey(key, p)
		if i%3 != 0 {
			if err := s.Put(ctx, k, later); err != nil {
				t.Fatal(err)
			}
		}
		v, err := s.Get(ctx, k)
		if gone := i%3 == 0; gone != errors.Is(err, ds.ErrNotFound) || !gone && string(v) != string(later) {
			t.Fatalf("provider %d: %x, %v", i, v, err)
		}
	}
	if c := node.ProviderStoreCounts(s); c.Records != 66 || c.Keys != 1 || c.Peers != 66 || c.Refused != 0 {
		t.Fatalf("after the removals and renewals: %+v", c)
	}
	for i, p := range peers {
		if err := s.Delete(ctx, node.ProviderKey(key, p)); err != nil {
			t.Fatal(err)
		}
		for _, q := range peers[i+1:] {
			if ok, _ := s.Has(ctx, node.ProviderKey(key, q)); !ok && slices.Index(peers, q)%3 != 0 {
				t.Fatalf("removing provider %d lost another", i)
			}
		}
	}
	if c := node.ProviderStoreCounts(s); c != (node.ProviderCounts{}) {
		t.Fatalf("after removing all: %+v", c)
	}
}

// kad-dht's provider manager over kith's store: records older than the
// validity are not served, and the manager's garbage collector deletes
// them from the store at its cleanup interval, so a store that flooders or
// departed members filled empties by itself. (The node runs the same with
// ProviderValidity and ProviderCleanup: 6 h and 15 min.)
func TestProviderRecordsExpire(t *testing.T) {
	const validity, cleanup = 500 * time.Millisecond, 100 * time.Millisecond
	s := node.NewProviderStore(node.MaxProviderRecordsPerPeer, node.MaxProviderRecords)
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	pm, err := records.NewProviderManager(randomPeer(t), ps, s,
		records.ProvideValidity(validity), records.CleanupInterval(cleanup))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close() })
	// 3 × 256 records: the manager writes them to the store in batches
	// of 256.
	var keys [][]byte
	for range 3 {
		p := randomPeer(t)
		for range 256 {
			k := randomKey(t)
			keys = append(keys, k)
			if err := pm.AddProvider(t.Context(), k, peer.AddrInfo{ID: p}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := node.ProviderStoreCounts(s); got.Records != 768 {
		t.Fatalf("the store holds %d records, want 768", got.Records)
	}
	deadline := time.Now().Add(30 * time.Second)
	for node.ProviderStoreCounts(s).Records > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("30 s on, %d records were not collected", node.ProviderStoreCounts(s).Records)
		}
		waitABit(t, cleanup)
	}
	if provs, err := pm.GetProviders(t.Context(), keys[0]); err != nil || len(provs) != 0 {
		t.Fatalf("an expired key's providers: %v, %v", provs, err)
	}
}

// A kith DHT server serves a provider record for ProviderValidity (6 h,
// twice the rendezvous TTL), not kad-dht's 48 h: of two records planted in
// each half, one written just over the validity ago and one just under, a
// lookup returns the younger only, and the older is deleted.
func TestDHTProviderValidity(t *testing.T) {
	if node.ProviderValidity >= 48*time.Hour || node.ProviderValidity < 2*time.Hour {
		t.Fatalf("ProviderValidity %v", node.ProviderValidity)
	}
	r := startRelay(t, nil)
	for half, d := range []*dht.IpfsDHT{r.DHT().WAN, r.DHT().LAN} {
		key := randomKey(t)
		old, young := randomPeer(t), randomPeer(t)
		now := time.Now()
		if err := r.PlantProviderRecord(half, key, old, now.Add(-node.ProviderValidity-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := r.PlantProviderRecord(half, key, young, now.Add(-node.ProviderValidity+time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := d.ProviderStore().GetProviders(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != young {
			t.Fatalf("half %d: providers %v, want only the record under %v old", half, got, node.ProviderValidity)
		}
		wan, lan := r.ProviderRecords()
		if c := []node.ProviderCounts{wan, lan}[half]; c.Records != 1 {
			t.Fatalf("half %d holds %d records after the lookup, want 1 (the expired one deleted)", half, c.Records)
		}
	}
}

// floodProviders sends n ADD_PROVIDER messages from x to r on pid, one
// stream, for random keys, each naming x (as kad-dht requires), then a
// GET_PROVIDERS whose answer shows r has handled them all. It returns the
// keys.
func floodProviders(t *testing.T, x host.Host, r *node.Node, pid protocol.ID, n int) [][]byte {
	t.Helper()
	s, err := x.NewStream(t.Context(), r.ID(), pid)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(2 * time.Minute))
	w := bufio.NewWriter(s)
	me := dhtpb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: x.ID(), Addrs: x.Addrs()}})
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = randomKey(t)
		m := dhtpb.NewMessage(dhtpb.Message_ADD_PROVIDER, keys[i], 0)
		m.ProviderPeers = me
		writeDelimited(t, w, m)
	}
	writeDelimited(t, w, dhtpb.NewMessage(dhtpb.Message_GET_PROVIDERS, keys[0], 0))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(s)
	size, err := binary.ReadUvarint(br)
	if err != nil {
		t.Fatalf("%s: no answer to GET_PROVIDERS after the flood: %v", pid, err)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	var ans dhtpb.Message
	if err := proto.Unmarshal(b, &ans); err != nil {
		t.Fatal(err)
	}
	return keys
}

// honestMember is a DHT client in r's network that advertises and looks up
// as a kith member does (go-libp2p's routing discovery over kad-dht).
type honestMember struct {
	h host.Host
	d *drouting.RoutingDiscovery
}

func newHonestMember(t *testing.T, r *node.Node) honestMember {
	t.Helper()
	h, d := dhtClientOf(t, r)
	return honestMember{h, drouting.NewRoutingDiscovery(d)}
}

// finds reports whether m's lookups of ns name p within a minute. (An
// advertisement returns once its ADD_PROVIDER is written, maybe before the
// server has read it.)
func (m honestMember) finds(t *testing.T, ns string, p peer.ID) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		found, err := m.d.FindPeers(ctx, ns)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		ok := false
		for ai := range found {
			ok = ok || ai.ID == p
		}
		cancel()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		waitABit(t, 50*time.Millisecond)
	}
}

// RELIABILITY B15, provider records: one peer sends a kith relay (a DHT
// server in both halves) ADD_PROVIDER for 4 × MaxProviderRecordsPerPeer
// random keys on each half's protocol. Each half holds at most
// MaxProviderRecordsPerPeer of them and refuses the rest (control: a server
// without the caps, as kad-dht's own store, holds all 1024); an honest member's advertisement made during
// the flood is stored and found by a third peer; once the flooder has gone
// its peer scope on the relay is empty.
func TestDHTProviderFlood(t *testing.T) {
	const perHalf = 4 * node.MaxProviderRecordsPerPeer
	r := startRelay(t, nil)
	x, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.Connect(t.Context(), relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	before := chattest.Retained()
	start := time.Now()
	for _, p := range []protocol.ID{wanKad, lanKad} {
		floodProviders(t, x, r, p, perHalf)
	}
	took := time.Since(start)
	wan, lan := r.ProviderRecords()
	for half, c := range map[string]node.ProviderCounts{"wan": wan, "lan": lan} {
		// kad-dht writes in batches of 256: all 1024 have reached the store.
		if c.Records != node.MaxProviderRecordsPerPeer || c.MaxPeer != node.MaxProviderRecordsPerPeer ||
			c.Refused != perHalf-node.MaxProviderRecordsPerPeer {
			t.Errorf("%s half after %d ADD_PROVIDER: %+v, want %d held and %d refused",
				half, perHalf, c, node.MaxProviderRecordsPerPeer, perHalf-node.MaxProviderRecordsPerPeer)
		}
	}
	for _, half := range []string{"wan", "lan"} {
		held := metricValue(t, r, "kith_dht_provider_records", "dht", half)
		refused := metricValue(t, r, "kith_dht_provider_records_refused_total", "dht", half)
		if held != node.MaxProviderRecordsPerPeer || refused != perHalf-node.MaxProviderRecordsPerPeer {
			t.Errorf("metrics of the %s half: %v records, %v refused", half, held, refused)
		}
	}
	grew := chattest.Retained() - before
	t.Logf("flood: 2 × %d ADD_PROVIDER in %v; relay holds wan %+v, lan %+v; live heap of the test process %+.1f MiB",
		perHalf, took.Round(time.Millisecond), wan, lan, grew/(1<<20))
	// Control: without the caps a server keeps every one (as kad-dht's
	// own store does).
	open := startRelayOpts(t, nil, node.WithProviderLimits(1<<30, 1<<30))
	if err := x.Connect(t.Context(), relayInfo(open)); err != nil {
		t.Fatal(err)
	}
	floodProviders(t, x, open, wanKad, perHalf)
	if c, _ := open.ProviderRecords(); c.Records != perHalf {
		t.Errorf("control: an uncapped server holds %d of the flooder's %d records", c.Records, perHalf)
	}
	x.Network().ClosePeer(open.ID())

	// An honest member advertises a room while the flooder is connected,
	// and another member finds it.
	ns := protocols.RoomRendezvous("lobby")
	alice, bob := newHonestMember(t, r), newHonestMember(t, r)
	if _, err := alice.d.Advertise(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if !bob.finds(t, ns, alice.h.ID()) {
		t.Fatal("an honest member's advertisement was not found during the flood")
	}
	if wan, _ := r.ProviderRecords(); wan.Peers != 1 && wan.Peers != 2 {
		t.Errorf("wan half: records of %d peers, want the flooder's (and alice's once written)", wan.Peers)
	}

	x.Network().ClosePeer(r.ID())
	rm := r.Host().Network().ResourceManager()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st network.ScopeStat
		if err := rm.ViewPeer(x.ID(), func(sc network.PeerScope) error { st = sc.Stat(); return nil }); err != nil {
			t.Fatal(err)
		}
		if st == (network.ScopeStat{}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the flooder left, its peer scope on the relay: %+v", st)
		}
		waitABit(t, 20*time.Millisecond)
	}
}

// B15 with many identities: 12 peers each send MaxProviderRecordsPerPeer
// records to a relay whose halves hold at most 2048 (WithProviderLimits),
// on its WAN half. The half never holds more than 2048; a member that advertised before
// the flood stays advertised (its renewal passes at the cap) and found.
// (A member new to a full server is refused until records expire: the cap
// trades that for bounded memory.)
func TestDHTProviderFloodSybils(t *testing.T) {
	const (
		sybils  = 12
		perPeer = node.MaxProviderRecordsPerPeer
		total   = 2048
	)
	r := startRelayOpts(t, nil, node.WithProviderLimits(perPeer, total))
	ns := protocols.RoomRendezvous("lobby")
	alice, bob := newHonestMember(t, r), newHonestMember(t, r)
	if _, err := alice.d.Advertise(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	most := 0
	for i := range sybils {
		x := bareHost(t)
		if err := x.Connect(t.Context(), relayInfo(r)); err != nil {
			t.Fatal(err)
		}
		floodProviders(t, x, r, wanKad, perPeer)
		x.Close()
		wan, _ := r.ProviderRecords()
		most = max(most, wan.Records)
		if wan.Records > total {
			t.Fatalf("after sybil %d the wan half holds %d records, cap %d", i+1, wan.Records, total)
		}
	}
	if _, err := alice.d.Advertise(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if !bob.finds(t, ns, alice.h.ID()) {
		t.Fatal("the advertisement made before the flood was lost")
	}
	key, err := mh.Sum([]byte(ns), mh.SHA2_256, -1) // routing discovery's key for ns
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasProviderRecord(0, key, alice.h.ID()) {
		t.Fatal("the advertisement made before the flood is not in the store")
	}
	wan, _ := r.ProviderRecords()
	t.Logf("%d sybils × %d records: the wan half holds %+v (most %d)", sybils, perPeer, wan, most)
	if wan.Records != total || wan.Refused < uint64(sybils*perPeer-total) {
		t.Errorf("wan half %+v, want %d held and at least %d refused", wan, total, sybils*perPeer-total)
	}
}

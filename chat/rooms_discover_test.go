package chat_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"go.uber.org/goleak"
)

// rdvNode is a room node whose service finds members through a discovery,
// with a log of what its rendezvous did.
type rdvNode struct {
	*roomNode
	log *rdvLog
}

func newRdvNode(t *testing.T, h host.Host, d discovery.Discovery, store *memRoomStore, opts ...chat.RoomOption) *rdvNode {
	t.Helper()
	n := newRdvPubSub(t, h)
	n.start(t, d, store, opts...)
	return n
}

// newRdvPubSub starts h's pubsub; start starts its room service.
func newRdvPubSub(t *testing.T, h host.Host) *rdvNode {
	t.Helper()
	n := &rdvNode{roomNode: &roomNode{h: h,
		events: make(chan chat.RoomEvent, 1<<14), rejects: make(chan rejected, 1<<14)}, log: newRdvLog()}
	n.trace = newNodeTracer(n.rejects)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := chat.NewPubSub(ctx, h, pubsub.WithRawTracer(n.trace))
	if err != nil {
		t.Fatal(err)
	}
	n.ps = ps
	return n
}

func (n *rdvNode) start(t *testing.T, d discovery.Discovery, store *memRoomStore, opts ...chat.RoomOption) {
	t.Helper()
	n.store = store
	var err error
	opts = append([]chat.RoomOption{chat.WithRoomEvents(func(e chat.RoomEvent) {
		n.mu.Lock()
		n.shown = append(n.shown, e)
		n.mu.Unlock()
		n.events <- e
	}),
		chat.WithRoomDiscovery(d), chat.WithRendezvousHook(n.log.add)}, opts...)
	if n.svc, err = chat.NewRooms(n.h, n.ps, store, chat.RoomConfig{}, opts...); err != nil {
		t.Fatal(err)
	}
	trackRoom(t, n.roomNode)
	t.Cleanup(func() { n.svc.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			evs, _ := n.log.all()
			t.Logf("%s's rendezvous: %v", n.h.ID(), evs)
		}
	})
}

// rdvLog records the events of one service's rendezvous.
type rdvLog struct {
	mu      sync.Mutex
	events  []chat.RendezvousEvent
	changed chan struct{} // closed, and replaced, on every event
}

func newRdvLog() *rdvLog { return &rdvLog{changed: make(chan struct{})} }

func (l *rdvLog) add(e chat.RendezvousEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *rdvLog) all() ([]chat.RendezvousEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events), l.changed
}

// count counts the events of room of kind about p ("" for any peer) that
// succeeded.
func (l *rdvLog) count(room string, kind chat.RendezvousEvent, p peer.ID) int {
	evs, _ := l.all()
	n := 0
	for _, e := range evs {
		if e.Room == room && e.Kind == kind.Kind && (p == "" || e.Peer == p) && e.Err == nil {
			n++
		}
	}
	return n
}

// waitCount waits at most waitBound until count(room, kind, p) >= want.
func (l *rdvLog) waitCount(t testing.TB, room string, kind chat.RendezvousEvent, p peer.ID, want int) {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		_, changed := l.all()
		if l.count(room, kind, p) >= want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			evs, _ := l.all()
			t.Fatalf("room %q: %d %s events (peer %q) within %v, want %d; events: %v",
				room, l.count(room, kind, p), kind.Kind, p, waitBound, want, evs)
		}
	}
}

// Event kinds, as values count takes.
var (
	advertised = chat.RendezvousEvent{Kind: chat.RendezvousAdvertised}
	lookedUp   = chat.RendezvousEvent{Kind: chat.RendezvousLookup}
	found      = chat.RendezvousEvent{Kind: chat.RendezvousFound}
	dialled    = chat.RendezvousEvent{Kind: chat.RendezvousDialled}
	stopped    = chat.RendezvousEvent{Kind: chat.RendezvousStopped}
)

// newDHTHost starts a host with a kad-dht of kith's prefix in mode,
// bootstrapped to boot alone (none: the bootstrap host itself).
func newDHTHost(t *testing.T, mode dht.ModeOpt, boot *peer.AddrInfo) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h := newHost(t, nil)
	opts := []dht.Option{dht.Mode(mode), dht.ProtocolPrefix("/kith")}
	if boot != nil {
		opts = append(opts, dht.BootstrapPeers(*boot))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if boot == nil {
		return h, d
	}
	if err := h.Connect(t.Context(), *boot); err != nil {
		t.Fatal(err)
	}
	// Poll (the DHT reports no event) until identify and the DHT's check
	// of the bootstrap host have put it in the routing table.
	deadline := time.Now().Add(waitBound)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for d.RoutingTable().Find(boot.ID) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap host not in the routing table within %v", waitBound)
		}
		<-tick.C
	}
	return h, d
}

// fastRendezvous looks up again within a second or two, so that every
// member finds every other one soon.
var fastRendezvous = chat.WithRendezvousTiming(chat.RendezvousTiming{FindFirst: 100 * time.Millisecond,
	FindMax: 2 * time.Second, FindGap: 100 * time.Millisecond, AdvertiseRetry: 100 * time.Millisecond})

// Four hosts know only a bootstrap host, each through its own DHT. Hosts 1
// and 2 join "ops", host 3 joins it later, host 4 joins "other": the three
// members of "ops" find each other through the DHT, connect, and receive
// what 1 sends; none of them finds or dials 4. With the room hosts as DHT
// servers, DHT queries connect them to each other too; as DHT clients, they
// reach only the bootstrap host, so the rendezvous alone connects them.
func TestRoomRendezvousThroughDHT(t *testing.T) {
	nothingLost(t)
	for _, tt := range []struct {
		name string
		mode dht.ModeOpt
	}{{"dht-servers", dht.ModeServer}, {"dht-clients", dht.ModeClient}} {
		t.Run(tt.name, func(t *testing.T) { testRendezvousThroughDHT(t, tt.mode) })
	}
}

func testRendezvousThroughDHT(t *testing.T, mode dht.ModeOpt) {
	bh, _ := newDHTHost(t, dht.ModeServer, nil)
	boot := peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}
	var n [4]*rdvNode
	for i := range n {
		h, d := newDHTHost(t, mode, &boot)
		n[i] = newRdvNode(t, h, drouting.NewRoutingDiscovery(d), newMemRoomStore(), fastRendezvous)
	}
	n[3].join(t, "other", nil)
	n[0].join(t, "ops", nil)
	n[1].join(t, "ops", nil)
	n[0].waitPeers(t, "ops", n[1].h.ID())
	n[2].join(t, "ops", nil)

	members := n[:3]
	for _, a := range members {
		for _, b := range members {
			if a != b {
				a.log.waitCount(t, "ops", found, b.h.ID(), 1)
			}
		}
		a.waitPeers(t, "ops", others(a, members)...)
	}
	for _, a := range members {
		for _, b := range others(a, members) {
			if c := a.h.Network().Connectedness(b); c != network.Connected {
				t.Errorf("%s to %s: %v, want connected", a.h.ID(), b, c)
			}
		}
	}

	if _, err := n[0].svc.Send(t.Context(), "ops", "hello ops"); err != nil {
		t.Fatal(err)
	}
	n[1].expectMessage(t, n[0].h.ID(), "hello ops")
	n[2].expectMessage(t, n[0].h.ID(), "hello ops")

	// Host 4 looked up "other" and found nobody; no member found or dialled
	// it, and it is in no member's "ops" topic.
	n[3].log.waitCount(t, "other", lookedUp, "", 1)
	if c := n[3].log.count("other", found, ""); c != 0 {
		t.Errorf("host 4 found %d peers in room other, want 0", c)
	}
	for _, a := range members {
		evs, _ := a.log.all()
		for _, e := range evs {
			if e.Peer == n[3].h.ID() {
				t.Errorf("%s's rendezvous met host 4: %+v", a.h.ID(), e)
			}
		}
		if topic, _ := a.svc.Topic("ops"); slices.Contains(topic.ListPeers(), n[3].h.ID()) {
			t.Errorf("host 4 is in %s's ops topic", a.h.ID())
		}
	}
	if mode != dht.ModeClient {
		return
	}
	// Clients: every pair of members was connected by a dial of the
	// rendezvous, and host 4 is connected to none of them.
	for i, a := range members {
		for _, b := range members[i+1:] {
			if a.log.count("ops", dialled, b.h.ID())+b.log.count("ops", dialled, a.h.ID()) == 0 {
				t.Errorf("no rendezvous dial between %s and %s", a.h.ID(), b.h.ID())
			}
		}
		if c := a.h.Network().Connectedness(n[3].h.ID()); c != network.NotConnected {
			t.Errorf("%s to host 4: %v, want not connected", a.h.ID(), c)
		}
	}
}

// others lists the peer IDs of members other than n.
func others(n *rdvNode, members []*rdvNode) []peer.ID {
	var ids []peer.ID
	for _, m := range members {
		if m != n {
			ids = append(ids, m.h.ID())
		}
	}
	return ids
}

// memRendezvous is an in-memory rendezvous point: hosts advertise
// themselves under namespaces and look each other up, as through a DHT.
type memRendezvous struct {
	ttl time.Duration // what Advertise returns
	mu  sync.Mutex
	ads map[string]map[peer.ID]host.Host
	// fail is how many more Advertise calls fail.
	fail int
}

func newMemRendezvous(ttl time.Duration) *memRendezvous {
	return &memRendezvous{ttl: ttl, ads: map[string]map[peer.ID]host.Host{}}
}

// client is the Discovery of h.
func (r *memRendezvous) client(h host.Host) discovery.Discovery { return &memDiscovery{r: r, h: h} }

type memDiscovery struct {
	r *memRendezvous
	h host.Host
}

var errAdvertise = errors.New("advertise failed (test)")

func (d *memDiscovery) Advertise(_ context.Context, ns string, _ ...discovery.Option) (time.Duration, error) {
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	if d.r.fail > 0 {
		d.r.fail--
		return 0, errAdvertise
	}
	if d.r.ads[ns] == nil {
		d.r.ads[ns] = map[peer.ID]host.Host{}
	}
	d.r.ads[ns][d.h.ID()] = d.h
	return d.r.ttl, nil
}

// FindPeers returns every host advertised under ns, the caller included.
func (d *memDiscovery) FindPeers(_ context.Context, ns string, _ ...discovery.Option) (<-chan peer.AddrInfo, error) {
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	ch := make(chan peer.AddrInfo, len(d.r.ads[ns]))
	for _, h := range d.r.ads[ns] {
		ch <- peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	}
	close(ch)
	return ch, nil
}

// A room rejoined at start and one joined later both advertise; leaving
// one ends its rendezvous (and every goroutine its join started) before
// Leave returns, and rejoining it starts a new one; Close ends the other.
func TestRoomRendezvousStopsOnLeave(t *testing.T) {
	nothingLost(t)
	// Goroutines that start a moment after what started them, so that a
	// snapshot may miss them: identify's push loop (started with the host)
	// and room kept's history watcher. Neither hides a leak of room gone:
	// its history loop waits for its watcher, and would show.
	settling := []goleak.Option{
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"),
		goleak.IgnoreAnyFunction("github.com/kithnet/kith/chat.(*RoomService).watchJoins"),
	}
	r := newMemRendezvous(time.Hour)
	store := newMemRoomStore()
	kept, err := protocols.RoomTopic("kept", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SaveRoom(t.Context(), chat.Room{Name: "kept", Topic: kept, JoinedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, nil)
	n := newRdvPubSub(t, h)
	// The first end of room gone's rendezvous holds its report until
	// released: Leave must not return before.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := chat.WithRendezvousHook(func(e chat.RendezvousEvent) {
		n.log.add(e)
		if e.Room == "gone" && e.Kind == chat.RendezvousStopped {
			once.Do(func() { close(entered); <-release })
		}
	})
	start := goleak.IgnoreCurrent()
	n.start(t, r.client(h), store, hook)
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before Close, which waits for the rendezvous
	n.log.waitCount(t, "kept", advertised, "", 1)

	before := goleak.IgnoreCurrent()
	n.join(t, "gone", nil)
	n.log.waitCount(t, "gone", lookedUp, "", 1)
	left := make(chan error, 1)
	go func() { left <- n.svc.Leave(context.Background(), "gone") }()
	select {
	case <-entered:
	case <-time.After(waitBound):
		t.Fatal("room gone's rendezvous did not end on Leave")
	}
	select {
	case err := <-left:
		t.Fatalf("Leave returned (%v) before room gone's rendezvous ended", err)
	default:
	}
	unblock()
	if err := <-left; err != nil {
		t.Fatal(err)
	}
	if c := n.log.count("gone", stopped, ""); c != 1 {
		t.Fatalf("after Leave: %d stopped events of room gone, want 1", c)
	}
	goleak.VerifyNone(t, append(settling, before)...)
	ads := n.log.count("gone", advertised, "")

	// The topic was closed (its event handler was gone): joining again
	// works and advertises again.
	n.join(t, "gone", nil)
	n.log.waitCount(t, "gone", advertised, "", ads+1)

	if c := n.log.count("kept", stopped, ""); c != 0 {
		t.Fatalf("room kept: %d stopped events before Close, want 0", c)
	}
	n.svc.Close()
	for room, want := range map[string]int{"kept": 1, "gone": 2} { // gone: left, then closed
		if c := n.log.count(room, stopped, ""); c != want {
			t.Errorf("after Close: %d stopped events of room %s, want %d", c, room, want)
		}
	}
	goleak.VerifyNone(t, append(settling, start)...)
}

// Advertising retries after a failure, looks up again once it succeeds
// (the next scheduled lookup is an hour away), and renews before the TTL it
// was given runs out.
func TestRoomRendezvousRetriesAndRenews(t *testing.T) {
	nothingLost(t)
	const ttl = 300 * time.Millisecond
	r := newMemRendezvous(ttl)
	r.fail = 2
	h := newHost(t, nil)
	n := newRdvNode(t, h, r.client(h), newMemRoomStore(), chat.WithRendezvousTiming(chat.RendezvousTiming{
		FindFirst: time.Hour, FindMax: time.Hour, FindGap: 0, AdvertiseRetry: 10 * time.Millisecond}))
	n.join(t, "lobby", nil)
	n.log.waitCount(t, "lobby", advertised, "", 3) // after 2 failures: the first, then 2 renewals
	evs, _ := n.log.all()
	var errs int
	for _, e := range evs {
		if e.Kind == chat.RendezvousAdvertised && e.Err != nil {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("%d failed advertisements reported, want 2", errs)
	}
	if c := n.log.count("lobby", lookedUp, ""); c != 2 {
		t.Errorf("%d lookups, want 2: at join, and once advertising worked", c)
	}
	for _, ttl := range []time.Duration{0, time.Millisecond, ttl, 3 * time.Hour} {
		for range 100 {
			if d := chat.RenewAfter(ttl); ttl > 0 && (d >= ttl || d < ttl/2) {
				t.Fatalf("RenewAfter(%v) = %v, want in [ttl/2, ttl)", ttl, d)
			} else if ttl == 0 && d <= 0 {
				t.Fatalf("RenewAfter(0) = %v, want a positive default", d)
			}
		}
	}
}

// A member meets another through the rendezvous; when their connection
// drops, the room has no peer left and the member looks up again at once
// (its next lookup was an hour away), finds the other and reconnects. The
// other member runs no rendezvous and is advertised by hand, so that only
// one side dials: two members who both run one dial each other at once,
// and on loopback the two TCP dials may cross and both fail (the service
// spreads them over FindGap, which this test sets to 0).
func TestRoomRendezvousLooksUpWhenRoomEmpties(t *testing.T) {
	nothingLost(t)
	r := newMemRendezvous(time.Hour)
	b := newRoomNode(t, chat.RoomConfig{})
	room := b.join(t, "lobby", nil)
	if _, err := r.client(b.h).Advertise(t.Context(), protocols.RoomRendezvous(room.Topic)); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, nil)
	a := newRdvNode(t, h, r.client(h), newMemRoomStore(), chat.WithRendezvousTiming(chat.RendezvousTiming{
		FindFirst: time.Hour, FindMax: time.Hour, FindGap: 0, AdvertiseRetry: time.Hour}))
	a.join(t, "lobby", nil)
	a.log.waitCount(t, "lobby", dialled, b.h.ID(), 1)
	a.waitPeers(t, "lobby", b.h.ID())
	b.waitPeers(t, "lobby", a.h.ID())
	looks := a.log.count("lobby", lookedUp, "")

	if err := a.h.Network().ClosePeer(b.h.ID()); err != nil {
		t.Fatal(err)
	}
	a.log.waitCount(t, "lobby", lookedUp, "", looks+1)
	a.log.waitCount(t, "lobby", dialled, b.h.ID(), 2)
	a.waitPeers(t, "lobby", b.h.ID())
	b.waitPeers(t, "lobby", a.h.ID())
	if _, err := b.svc.Send(t.Context(), "lobby", "back"); err != nil {
		t.Fatal(err)
	}
	a.expectMessage(t, b.h.ID(), "back")
}

// WithRoomDiscovery's rendezvous namespace is protocols.RoomRendezvous of
// the room's topic: what a member advertises under is what another looks
// up.
func TestRoomRendezvousNamespace(t *testing.T) {
	nothingLost(t)
	r := newMemRendezvous(time.Hour)
	h := newHost(t, nil)
	n := newRdvNode(t, h, r.client(h), newMemRoomStore())
	room := n.join(t, "lobby", nil)
	n.log.waitCount(t, "lobby", advertised, "", 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	want := protocols.RoomRendezvous(room.Topic)
	if _, ok := r.ads[want][h.ID()]; !ok || len(r.ads) != 1 {
		t.Errorf("advertised under %v, want %s", keys(r.ads), want)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

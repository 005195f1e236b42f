package chat

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Rendezvous limits.
const (
	// RendezvousDials bounds the dials to found peers in progress at once,
	// over all rooms.
	RendezvousDials = 8
	// RendezvousDialTimeout bounds one dial to a found peer.
	RendezvousDialTimeout = 10 * time.Second
	// RendezvousAddrTTL is how long the addresses of a found peer stay in
	// the peerstore (a connection keeps them longer).
	RendezvousAddrTTL = 10 * time.Minute
	// rendezvousLookupTimeout bounds one lookup, and rendezvousMaxFound the
	// peers it returns.
	rendezvousLookupTimeout = time.Minute
	rendezvousMaxFound      = 100
	// rendezvousTTL is the advertisement lifetime assumed when the
	// discovery does not state one.
	rendezvousTTL = 10 * time.Minute
	// RendezvousAdvertiseTTL is the lifetime a room's advertisement asks
	// for (go-libp2p's routing discovery grants at most 3 hours, and kith's
	// DHT servers keep a record for twice that): the service renews it after
	// 7/8 of the lifetime the discovery grants, ±10%.
	RendezvousAdvertiseTTL = 3 * time.Hour
)

// rendezvousTiming is the schedule of a room's rendezvous (tests shorten
// or lengthen it).
type rendezvousTiming struct {
	// FindFirst is the wait before the second lookup; each later one waits
	// twice as long as the one before, up to FindMax.
	FindFirst, FindMax time.Duration
	// FindGap is the least time between two lookups: a room that lost its
	// last peer looks again at once (within FindGap, at random), but not
	// sooner than FindGap after the last lookup.
	FindGap time.Duration
	// AdvertiseRetry is the wait after a failed advertisement, doubled on
	// every failure up to FindMax.
	AdvertiseRetry time.Duration
}

var defaultRendezvousTiming = rendezvousTiming{FindFirst: 5 * time.Second, FindMax: 5 * time.Minute,
	FindGap: 5 * time.Second, AdvertiseRetry: 10 * time.Second}

// rendezvous is the service's DHT rendezvous: off while d is nil.
type rendezvous struct {
	d      discovery.Discovery
	timing rendezvousTiming
	dials  chan struct{} // a token per dial in progress
	hook   func(rendezvousEvent)

	mu      sync.Mutex
	running map[*joined]chan struct{} // closed when the room's rendezvous ends
}

// rendezvousEvent is what a room's rendezvous did (a test hook).
type rendezvousEvent struct {
	Room string
	Kind rendezvousKind
	Peer peer.ID // found or dialled
	Err  error   // advertise or dial failed
}

type rendezvousKind string

const (
	rendezvousAdvertised rendezvousKind = "advertised" // Err set when it failed
	rendezvousLookup     rendezvousKind = "lookup"     // a lookup starts
	rendezvousFound      rendezvousKind = "found"      // a lookup returned Peer (not us)
	rendezvousDialled    rendezvousKind = "dialled"    // we dialled Peer; Err when it failed
	rendezvousStopped    rendezvousKind = "stopped"    // the room's rendezvous ended
)

// WithRoomDiscovery makes members of a room find each other with d, with no
// address given (the node passes a routing discovery over its DHT). For
// every room it is in, the service advertises itself under the room's
// namespace (protocols.RoomRendezvous of its topic) and renews that before
// the TTL d returned runs out (retrying a failed advertisement after 10 s,
// then twice as long each time up to 5 minutes); it looks up the other
// members when it joins, then 5 s later, waiting twice as long each time up
// to every 5 minutes, and at once when the room loses its last peer (within
// 5 s, at random) or an advertisement succeeds after failing; it dials the members it
// finds that it is not connected to and knows an address of, from the
// lookup or its peerstore (RendezvousDials at a time, each for up to
// RendezvousDialTimeout), and GossipSub meets them over those
// connections. It stops when the room is left or the service closes.
func WithRoomDiscovery(d discovery.Discovery) RoomOption {
	return func(s *RoomService) {
		s.rdv.d = d
		s.rdv.dials = make(chan struct{}, RendezvousDials)
	}
}

// discover starts j's rendezvous, which ends with ctx (subscribe's
// context of j); undiscover waits for it.
func (s *RoomService) discover(ctx context.Context, j *joined) {
	if s.rdv.d == nil {
		return
	}
	done := make(chan struct{})
	s.rdv.mu.Lock()
	if s.rdv.running == nil {
		s.rdv.running = make(map[*joined]chan struct{})
	}
	s.rdv.running[j] = done
	s.rdv.mu.Unlock()
	s.wg.Go(func() {
		defer close(done)
		s.meet(ctx, j)
	})
}

// undiscover waits until j's rendezvous, whose context was cancelled,
// has ended: it holds an event handler of j's topic, which must be gone
// before the topic closes.
func (s *RoomService) undiscover(j *joined) {
	s.rdv.mu.Lock()
	done := s.rdv.running[j]
	delete(s.rdv.running, j)
	s.rdv.mu.Unlock()
	if done != nil {
		<-done
	}
}

// meet advertises j and looks up its members on schedule until ctx ends.
func (s *RoomService) meet(ctx context.Context, j *joined) {
	ns := protocols.RoomRendezvous(j.Topic)
	log := s.log.With("room", j.Name, "namespace", ns)
	defer s.rdv.report(rendezvousEvent{Room: j.Name, Kind: rendezvousStopped})
	emptied := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if ev, err := j.topic.EventHandler(); err != nil {
		log.Warn("rendezvous: no topic events; looking up on schedule only", "err", err)
	} else {
		wg.Go(func() { watchEmpty(ctx, j.topic, ev, emptied) })
	}

	tm := s.rdv.timing
	if tm == (rendezvousTiming{}) {
		tm = defaultRendezvousTiming
	}
	sc := newSchedule(tm)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Advertise before looking up, so that two members joining at once
		// find each other: the later lookup follows the earlier advert.
		if !time.Now().Before(sc.advAt) {
			ttl, err := s.rdv.d.Advertise(ctx, ns, discovery.TTL(RendezvousAdvertiseTTL))
			if ctx.Err() != nil {
				return
			}
			s.rdv.report(rendezvousEvent{Room: j.Name, Kind: rendezvousAdvertised, Err: err})
			if err != nil {
				log.Debug("rendezvous: advertise failed", "err", err, "retry", sc.advWait)
			}
			sc.advertised(ttl, err)
		}
		if !time.Now().Before(sc.findAt) {
			s.lookup(ctx, j.Name, ns, log)
			if ctx.Err() != nil {
				return
			}
			sc.lookedUp()
		}
		timer.Reset(time.Until(earlier(sc.advAt, sc.findAt)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-emptied:
			log.Debug("rendezvous: room has no peers left; looking up again")
			sc.findAt, sc.findWait = soon(sc.lastFind, tm.FindGap), tm.FindFirst
		}
	}
}

// schedule says when a room's rendezvous next advertises and looks up.
type schedule struct {
	tm                rendezvousTiming
	advAt, findAt     time.Time     // the next advertisement and lookup
	lastFind          time.Time     // the last lookup
	advWait, findWait time.Duration // the waits after the next failed advertisement, and the next lookup
}

func newSchedule(tm rendezvousTiming) *schedule {
	now := time.Now()
	return &schedule{tm: tm, advAt: now, findAt: now, advWait: tm.AdvertiseRetry, findWait: tm.FindFirst}
}

// advertised plans the next advertisement after one that returned ttl and
// err.
func (sc *schedule) advertised(ttl time.Duration, err error) {
	if err != nil {
		sc.advAt, sc.advWait = time.Now().Add(jitter(sc.advWait)), min(2*sc.advWait, sc.tm.FindMax)
		return
	}
	if sc.advWait > sc.tm.AdvertiseRetry {
		// The discovery works again (a DHT that had no peers now has
		// some): the last lookups likely failed too, so look up soon.
		sc.findAt, sc.findWait = earlier(sc.findAt, soon(sc.lastFind, sc.tm.FindGap)), sc.tm.FindFirst
	}
	sc.advAt, sc.advWait = time.Now().Add(renewAfter(ttl)), sc.tm.AdvertiseRetry
}

// lookedUp plans the next lookup after one that just ended.
func (sc *schedule) lookedUp() {
	sc.lastFind = time.Now()
	sc.findAt, sc.findWait = sc.lastFind.Add(jitter(sc.findWait)), min(2*sc.findWait, sc.tm.FindMax)
}

// lookup finds the members advertised under ns and dials those we are not
// connected to; it returns when the dials have ended.
func (s *RoomService) lookup(ctx context.Context, room, ns string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, rendezvousLookupTimeout)
	defer cancel()
	s.rdv.report(rendezvousEvent{Room: room, Kind: rendezvousLookup})
	found, err := s.rdv.d.FindPeers(ctx, ns, discovery.Limit(rendezvousMaxFound))
	if err != nil {
		log.Debug("rendezvous: lookup failed", "err", err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	seen := map[peer.ID]bool{s.h.ID(): true}
	n := 0
	for p := range found {
		if n == rendezvousMaxFound {
			break // a discovery that ignores the limit; cancel ends it
		}
		if p.ID == "" || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		n++
		s.rdv.report(rendezvousEvent{Room: room, Kind: rendezvousFound, Peer: p.ID})
		if s.h.Network().Connectedness(p.ID) == network.Connected {
			continue
		}
		if len(p.Addrs) == 0 && len(s.h.Peerstore().Addrs(p.ID)) == 0 {
			// An advertisement outlives its member by up to 6 hours on a
			// kith DHT server (48 hours on kad-dht's defaults), the
			// member's addresses do not: DHT servers forget those of peers
			// gone for a few minutes (kith's node does). Dialling one
			// would ask the DHT for it first (a routed host does), a
			// lookup per member that left, at every lookup.
			s.rdv.report(rendezvousEvent{Room: room, Kind: rendezvousDialled, Peer: p.ID, Err: errNoAddrs})
			continue
		}
		select {
		case s.rdv.dials <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-s.rdv.dials }()
			err := s.dial(ctx, p)
			s.rdv.report(rendezvousEvent{Room: room, Kind: rendezvousDialled, Peer: p.ID, Err: err})
			if err != nil {
				log.Debug("rendezvous: dial failed", "peer", p.ID, "err", err)
			}
		})
	}
	log.Debug("rendezvous: looked up", "found", n)
}

// errNoAddrs: a found member of whom no address is known is not dialled.
var errNoAddrs = errors.New("chat: no address known")

// dial connects to p at the addresses the lookup or the peerstore gave,
// for at most RendezvousDialTimeout, keeping them for RendezvousAddrTTL.
// It dials the network directly, not through the host's Connect: a routed
// host (kith's node gives one) asks its routing for the peer when the dial
// fails, and a member found at dead addresses has most often left, so
// every lookup walked the DHT for each member that had left in the last
// minutes, and those walks dialled other departed peers (TestSoakChurn's
// profiles, build tag soak). A member alive at new addresses is found with
// them by a later lookup, or dials us.
func (s *RoomService) dial(ctx context.Context, p peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, RendezvousDialTimeout)
	defer cancel()
	s.h.Peerstore().AddAddrs(p.ID, p.Addrs, RendezvousAddrTTL)
	_, err := s.h.Network().DialPeer(ctx, p.ID)
	return err
}

// watchEmpty signals emptied whenever a peer leaves topic and none is
// left, until ctx ends; then it cancels ev.
func watchEmpty(ctx context.Context, topic *pubsub.Topic, ev *pubsub.TopicEventHandler, emptied chan<- struct{}) {
	defer ev.Cancel()
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if e.Type == pubsub.PeerLeave && len(topic.ListPeers()) == 0 {
			select {
			case emptied <- struct{}{}:
			default:
			}
		}
	}
}

func (r *rendezvous) report(e rendezvousEvent) {
	if r.hook != nil {
		r.hook(e)
	}
}

// soon is when to look up again after the room lost its last peer: at a
// random moment within gap from now, and at least gap after the last
// lookup. The other members lost their peers at the same moment; were all
// to dial each other at once, two TCP dials could cross (a simultaneous
// open) and both fail.
func soon(last time.Time, gap time.Duration) time.Time {
	at := time.Now()
	if l := last.Add(gap); l.After(at) {
		at = l
	}
	if gap > 0 {
		at = at.Add(rand.N(gap))
	}
	return at
}

// renewAfter is when to renew an advertisement that lives ttl: after 7/8
// of it (less the jitter), so that it never lapses.
func renewAfter(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = rendezvousTTL
	}
	return jitter(ttl - ttl/8)
}

// jitter spreads d by ±10%, so that members who joined together do not
// all look up at the same moment.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - d/10 + rand.N(d/5)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

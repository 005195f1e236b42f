//go:build soak

package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

// The churning room of TestSoakChurn.
const (
	churnNodes  = 20              // live at any time
	churnStable = 5               // never leave: node 0 (everyone's bootstrap node) and 4 more
	churnEvery  = 5 * time.Second // one leaves and a new one joins; one small transfer starts
	churnChat   = 2 * time.Second // each live node sends a room message this often
	churnFile   = 32 << 10        // bytes of each transfer
	churnRoom   = "churn"
)

// TestSoakChurn is row L9 of RELIABILITY.md's load table: 20 real nodes in
// one process on loopback (TCP and QUIC, SQLite stores, DHT, rooms, files),
// all in one open room, each sending a room message every 2 s; every 5 s
// one of the 15 churning nodes leaves for good (Close, its home deleted)
// and a new one (new identity, new home) joins: it bootstraps from node 0,
// dials 3 random live nodes and joins the room; and one small transfer
// (32 KiB) starts between two live churning nodes that befriend each other
// for it (the receiver trusts the sender and auto-accepts; churning nodes
// only, so that no node's contacts, which a node keeps for good, grow for
// ever). It runs for KITH_SOAK_DURATION (30 s in CI; `just soak` runs 30
// min, a nightly run 24 h); a node in a transfer is not picked to leave.
//
// It samples runtime/metrics (goroutines, and the live heap right after a
// forced GC: what the nodes hold, not what a busy GC cycle also marked)
// every second, or every 10 s in runs of 5 min or more, and, after a
// warm-up (half the run, at most 16 min: what a node keeps of a departed
// peer lasts up to 10 min, pubsub's score of it), fits a least-squares line
// through each. The criterion, judged in runs with at least 15 min after
// the warm-up (30 min and more), is that neither grows by more than 1% of
// its mean per hour beyond two standard errors of the slope; shorter runs
// report the slopes only, since their caches are still filling. Every 5 s
// it checks each live node's peerstore against a bound (checkPeerstores):
// the live nodes, its contacts, and the departed nodes that left, or were
// last in a live node's routing table or contacts, within heldWindow (8
// min). It requires every transfer to finish with the file intact; every
// message a stable node sent stored by every stable node (history repairs
// what churn lost); and, once every node is closed, no goroutine left
// behind (goleak.VerifyNone). With KITH_SOAK_PROFILE set to a directory it
// writes heap and goroutine profiles there, from the warm-up on every 5
// minutes, and every sample to samples.csv (churnProfileEnv); with
// KITH_SOAK_LOG set to a directory, the stable nodes' logs at info level
// (churnLogEnv).
func TestSoakChurn(t *testing.T) {
	d := chattest.SoakDuration(t)
	baseline := goleak.IgnoreCurrent()
	c := &churn{t: t, root: t.TempDir(), rng: rand.New(rand.NewPCG(7, 8))}
	defer c.closeAll()
	for range churnNodes {
		c.add()
	}
	every := time.Second
	if d >= 5*time.Minute {
		every = 10 * time.Second
	}
	// Warm-up: half the run, at most 16 min. A node keeps what it knows
	// of a departed peer for up to 10 min (pubsub's score, RetainScore);
	// its peerstore 4 min (node.PruneAfter + 2 node.PruneEvery), its LAN
	// routing table about 5 (node's lanRefresh), pubsub's seen messages 3.
	warm := d / 2
	if d >= 32*time.Minute {
		warm = 16 * time.Minute
	}
	sampler := chattest.StartSampler(every, nil, chattest.RetainedHeap())
	defer sampler.Stop()
	t.Logf("L9: %d nodes (%d stable), churn and a %d KiB transfer every %v, a room message per node every %v, for %v; samples every %v, warm-up %v",
		churnNodes, churnStable, churnFile>>10, churnEvery, churnChat, d, every, warm)

	start := time.Now()
	end := start.Add(d)
	prof := os.Getenv(churnProfileEnv)
	if prof != "" {
		// The default rate (one sample per 512 KiB) leaves a few MiB of
		// growth in the noise; sample every 16 KiB.
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = churnProfileRate
	}
	var nextProfile time.Duration = warm
	tick := time.NewTicker(churnEvery)
	for time.Now().Before(end) {
		<-tick.C
		c.checkPeerstores()
		c.checkMembers(time.Since(start))
		c.replaceOne()
		c.transferOne()
		if at := time.Since(start); prof != "" && at >= nextProfile {
			writeProfiles(t, prof, fmt.Sprintf("%02dm", int(nextProfile.Minutes())))
			nextProfile += churnProfileEvery
		}
	}
	tick.Stop()
	if prof != "" {
		writeProfiles(t, prof, "end")
		t.Logf("L9: heap and goroutine profiles in %s, from the warm-up on every %v; what grew after the warm-up: go tool pprof -sample_index=inuse_space -base %s -top %s",
			prof, churnProfileEvery, filepath.Join(prof, fmt.Sprintf("heap-%02dm.pprof", int(warm.Minutes()))), filepath.Join(prof, "heap-end.pprof"))
	}
	sampler.Stop()
	c.transfers.Wait()
	c.stopChat()
	c.checkRoom()
	samples := sampler.Samples()
	if prof != "" {
		if err := chattest.WriteSamples(filepath.Join(prof, "samples.csv"), samples); err != nil {
			t.Errorf("samples: %v", err)
		}
	}
	c.report(samples, warm, d-warm >= 15*time.Minute)

	c.closeAll()
	goleak.VerifyNone(t, baseline,
		// A host's identify push loop ends a moment after its host closed.
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"))
}

// churnProfileEnv names a directory where TestSoakChurn writes heap
// profiles (after a GC, sampled every churnProfileRate bytes) and goroutine
// profiles at the end of the warm-up, every churnProfileEvery after it and
// at the end of the churn, so that a long run shows what grew and when.
const churnProfileEnv = "KITH_SOAK_PROFILE"

// churnLogEnv names a directory where TestSoakChurn writes each stable
// node's log at info level (n0.log, ...): a failed run's history rounds
// and refusals are there. Churning nodes stay quiet (hundreds of them).
const churnLogEnv = "KITH_SOAK_LOG"

// churnProfileRate is runtime.MemProfileRate while TestSoakChurn profiles.
const churnProfileRate = 16 << 10

// churnProfileEvery is how often TestSoakChurn profiles after the warm-up.
const churnProfileEvery = 5 * time.Minute

// writeProfiles writes heap-<tag>.pprof (after a GC) and
// goroutine-<tag>.pprof to dir.
func writeProfiles(t *testing.T, dir, tag string) {
	runtime.GC()
	for _, kind := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(dir, kind+"-"+tag+".pprof"))
		if err != nil {
			t.Errorf("%s profile: %v", kind, err)
			return
		}
		err = pprof.Lookup(kind).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Errorf("%s profile: %v", kind, err)
		}
	}
}

// churn is the changing set of nodes and what the test saw them do.
type churn struct {
	t    *testing.T
	root string
	rng  *rand.Rand

	mu        sync.Mutex
	live      []*churnNode
	started   int
	departed  map[peer.ID]time.Time // when each churned node left
	lastHeld  map[peer.ID]time.Time // when a departed node was last in a live node's routing table or contacts
	transfers sync.WaitGroup
	moved     int // transfers done
	fileSeq   int
	psMax     int    // the largest peerstore seen
	psOver    int    // peerstore checks over the bound
	psWorst   string // the last of them
	provMax   int    // the most provider records a live node held (both DHT halves)
	provOver  int    // provider-record checks over the bound
	recentMax int    // the most departed nodes the bound allowed for
	redials   int    // a joining node's dials that failed and were tried again
	rtMax     int    // the most departed nodes in live nodes' routing tables at once
	sentBy    map[peer.ID][]string
	unlisted  map[[2]int]bool // stable pairs (a, b), connected, where a's router does not list b in the room
}

type churnNode struct {
	n      *node.Node
	name   string // its contact name on others
	home   string
	stable bool
	busy   int // transfers in flight
	stop   chan struct{}
	done   chan struct{}
}

// add starts a new node, connects it and joins it to the room.
func (c *churn) add() *churnNode {
	t := c.t
	c.mu.Lock()
	i := c.started
	c.started++
	c.mu.Unlock()
	home, err := os.MkdirTemp(c.root, "node")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	cfg := node.Config{Home: home}
	cfg.Network.Listen = nodetest.Loopback
	cfg.Network.MDNS, cfg.Network.PortMapping = &off, &off
	cfg.Files.AutoAccept = node.AutoAcceptTrusted
	cfg.Files.DownloadDir = node.DirPath(filepath.Join(home, "in"))
	if i > 0 {
		cfg.Network.Bootstrap = nodetest.P2PAddrs(c.live[0].n)
	}
	// Quiet: 20 nodes' debug logs over 30 min would drown the figures.
	log := slog.New(slog.DiscardHandler)
	if dir := os.Getenv(churnLogEnv); dir != "" && i < churnStable {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("n%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := node.New(cfg, node.WithLogger(log))
	if err != nil {
		t.Fatalf("start node %d: %v", i, err)
	}
	cn := &churnNode{n: n, name: fmt.Sprintf("n%d", i), home: home, stable: i < churnStable,
		stop: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	others := slices.Clone(c.live)
	c.live = append(c.live, cn)
	c.mu.Unlock()
	for _, j := range c.rng.Perm(len(others))[:min(3, len(others))] {
		retries, err := joinConnect(t.Context(), n, others[j].n)
		if err != nil {
			t.Errorf("node %d: connect: %v", i, err)
		}
		c.mu.Lock()
		c.redials += retries
		c.mu.Unlock()
	}
	if _, err := n.JoinRoom(t.Context(), churnRoom, nil); err != nil {
		t.Fatalf("node %d: join: %v", i, err)
	}
	go c.chat(cn)
	return cn
}

// joinConnect connects n to o, trying again for up to a minute, and
// returns how many tries failed: a dial between two live nodes on a loaded
// machine sometimes fails (and the swarm then refuses to redial for a few
// seconds), as one of a new node's first dials did in a 30-minute run.
func joinConnect(ctx context.Context, n, o *node.Node) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for failed := 0; ; failed++ {
		err := n.Host().Connect(ctx, peer.AddrInfo{ID: o.ID(), Addrs: o.Host().Addrs()})
		if err == nil || time.Now().After(deadline) {
			return failed, err
		}
		time.Sleep(time.Second) // the pace of the retries, within the deadline
	}
}

// chat sends a room message every churnChat until the node is stopped.
func (c *churn) chat(cn *churnNode) {
	defer close(cn.done)
	tk := time.NewTicker(churnChat)
	defer tk.Stop()
	for k := 0; ; k++ {
		select {
		case <-cn.stop:
			return
		case <-tk.C:
		}
		text := fmt.Sprintf("%s says %d", cn.name, k)
		if _, err := cn.n.SendRoom(context.Background(), churnRoom, text); err != nil {
			c.t.Errorf("%s: send: %v", cn.name, err)
			continue
		}
		if cn.stable {
			c.mu.Lock()
			if c.sentBy == nil {
				c.sentBy = map[peer.ID][]string{}
			}
			c.sentBy[cn.n.ID()] = append(c.sentBy[cn.n.ID()], text)
			c.mu.Unlock()
		}
	}
}

// replaceOne closes a random churning node that has no transfer in
// flight, deletes its home, and starts a new one.
func (c *churn) replaceOne() {
	c.mu.Lock()
	var cands []int
	for i, cn := range c.live {
		if !cn.stable && cn.busy == 0 {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		c.mu.Unlock()
		c.add()
		return
	}
	i := cands[c.rng.IntN(len(cands))]
	gone := c.live[i]
	c.live = slices.Delete(c.live, i, i+1)
	c.mu.Unlock()
	c.stopNode(gone)
	c.mu.Lock()
	if c.departed == nil {
		c.departed = map[peer.ID]time.Time{}
	}
	c.departed[gone.n.ID()] = time.Now()
	c.mu.Unlock()
	c.add()
}

func (c *churn) stopNode(cn *churnNode) {
	close(cn.stop)
	<-cn.done
	if err := cn.n.Close(); err != nil {
		c.t.Errorf("%s: close: %v", cn.name, err)
	}
	os.RemoveAll(cn.home)
}

// transferOne starts a 32 KiB transfer between two random live nodes and
// checks it in the background.
func (c *churn) transferOne() {
	t := c.t
	c.mu.Lock()
	var churning []*churnNode
	for _, cn := range c.live {
		if !cn.stable {
			churning = append(churning, cn)
		}
	}
	p := c.rng.Perm(len(churning))
	from, to := churning[p[0]], churning[p[1]]
	from.busy++
	to.busy++
	c.mu.Unlock()
	c.contact(from, to)
	c.contact(to, from)
	if err := to.n.TrustContact(t.Context(), from.name, true); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.fileSeq++
	name := fmt.Sprintf("f%d.bin", c.fileSeq)
	c.mu.Unlock()
	dir, err := os.MkdirTemp(c.root, "src")
	if err != nil {
		t.Fatal(err)
	}
	src := writeRandom(t, dir, name, churnFile)
	events, cancel := from.n.Events().Subscribe()
	sent, err := from.n.SendFiles(t.Context(), to.name, []string{src})
	if err != nil {
		cancel()
		t.Fatalf("%s → %s: send: %v", from.name, to.name, err)
	}
	c.transfers.Go(func() {
		defer os.RemoveAll(dir)
		defer cancel()
		defer func() {
			c.mu.Lock()
			from.busy--
			to.busy--
			c.mu.Unlock()
		}()
		bound := time.NewTimer(time.Minute)
		defer bound.Stop()
		for {
			select {
			case ev := <-events:
				if ev.Type != node.EventTransfer || ev.Transfer.ID != sent.ID {
					continue
				}
				switch ev.Transfer.State {
				case "done":
					if got, err := os.ReadFile(filepath.Join(to.home, "in", name)); err != nil {
						t.Errorf("%s → %s: %v", from.name, to.name, err)
					} else if want, _ := os.ReadFile(src); string(got) != string(want) {
						t.Errorf("%s → %s: the file differs", from.name, to.name)
					}
					c.mu.Lock()
					c.moved++
					c.mu.Unlock()
					return
				case "failed", "rejected":
					t.Errorf("%s → %s: transfer %s", from.name, to.name, ev.Transfer.State)
					return
				}
			case <-bound.C:
				t.Errorf("%s → %s: transfer not done after a minute", from.name, to.name)
				return
			}
		}
	})
}

// contact makes b a contact of a, unless it is one already.
func (c *churn) contact(a, b *churnNode) {
	cs, err := a.n.Contacts(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	if slices.ContainsFunc(cs, func(ci node.ContactInfo) bool { return ci.Name == b.name }) {
		return
	}
	if _, err := a.n.AddContact(c.t.Context(), b.name, b.n.Identity().Ticket); err != nil {
		c.t.Fatalf("%s adds %s: %v", a.name, b.name, err)
	}
}

// heldWindow bounds how long a live node may hold a departed one: its
// pruner forgets a peer at most node.PruneAfter + 2 node.PruneEvery
// (4 min) after it was last connected or, for a peer it learnt of
// without connecting (a DHT answer, which carries the addresses the
// answering node holds), after it learnt of it. It learns of a departed
// node while some node holds its addresses: for 4 minutes after it left,
// while the node is in some routing table (the DHT keeps a peer there
// until it finds it gone, and the pruner keeps what the table holds) or
// some node's contacts (kept for good), and for 4 minutes after the last
// did: twice 4 min.
var heldWindow = 2 * (node.PruneAfter + 2*node.PruneEvery)

// checkPeerstores checks every live node's peerstore against its bound:
// the live nodes, its contacts (kept for good), the departed nodes that
// left, or were last in a live node's routing table or contacts, within
// heldWindow, and 5 (itself, and slack).
func (c *churn) checkPeerstores() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.lastHeld == nil {
		c.lastHeld = map[peer.ID]time.Time{}
	}
	contacts := map[*churnNode]int{}
	inRT := map[peer.ID]bool{} // departed nodes in a live node's routing table now
	for _, cn := range c.live {
		var held []peer.ID
		for _, rt := range []*dht.IpfsDHT{cn.n.DHT().LAN, cn.n.DHT().WAN} {
			for _, p := range rt.RoutingTable().ListPeers() {
				if _, gone := c.departed[p]; gone {
					inRT[p] = true
				}
				held = append(held, p)
			}
		}
		cs, err := cn.n.Contacts(context.Background())
		if err != nil {
			c.t.Errorf("%s: contacts: %v", cn.name, err)
		}
		contacts[cn] = len(cs)
		for _, ci := range cs {
			if p, err := peer.Decode(ci.PeerID); err == nil {
				held = append(held, p)
			}
		}
		for _, p := range held {
			if _, gone := c.departed[p]; gone {
				c.lastHeld[p] = now
			}
		}
	}
	c.rtMax = max(c.rtMax, len(inRT))
	recent := 0
	for p, at := range c.departed {
		if now.Sub(at) < heldWindow || now.Sub(c.lastHeld[p]) < heldWindow {
			recent++
		}
	}
	c.recentMax = max(c.recentMax, recent)
	// A node holds a record per member that advertised the room within
	// the provider validity (and the cleanup interval), in each half at
	// most: the live nodes and those that left within that window.
	advertised := len(c.live)
	for _, at := range c.departed {
		if now.Sub(at) < node.ProviderValidity+node.ProviderCleanup {
			advertised++
		}
	}
	for _, cn := range c.live {
		wan, lan := cn.n.ProviderRecords()
		c.provMax = max(c.provMax, wan.Records+lan.Records)
		if wan.Records > advertised || lan.Records > advertised {
			c.provOver++
			c.t.Errorf("%s holds provider records wan %+v, lan %+v, over the %d members that advertised within %v",
				cn.name, wan, lan, advertised, node.ProviderValidity+node.ProviderCleanup)
		}
	}
	for _, cn := range c.live {
		size := len(cn.n.Host().Peerstore().Peers())
		c.psMax = max(c.psMax, size)
		if bound := len(c.live) + recent + contacts[cn] + 5; size > bound {
			c.psOver++
			c.psWorst = fmt.Sprintf("%s: %d peers in its peerstore, over the bound %d (%d live, %d departed within %v of leaving or of being held, %d contacts)",
				cn.name, size, bound, len(c.live), recent, heldWindow, contacts[cn])
		}
	}
}

// checkMembers logs each time a stable node's router stops, or starts
// again, listing another stable node it is connected to in the room's
// topic: one that does not forwards it nothing and serves it no history
// (a pubsub subscription forgotten), which explainMissing's figures alone
// cannot date.
func (c *churn) checkMembers(at time.Duration) {
	c.mu.Lock()
	stable := slices.DeleteFunc(slices.Clone(c.live), func(cn *churnNode) bool { return !cn.stable })
	if c.unlisted == nil {
		c.unlisted = map[[2]int]bool{}
	}
	defer c.mu.Unlock()
	for i, a := range stable {
		peers := a.n.RoomPeers(churnRoom)
		for k, b := range stable {
			if i == k {
				continue
			}
			pair := [2]int{i, k}
			un := a.n.Host().Network().Connectedness(b.n.ID()) == network.Connected && !slices.Contains(peers, b.n.ID())
			if un != c.unlisted[pair] {
				c.t.Logf("L9: at %v %s, connected to %s, lists it in the topic: %v", at.Round(time.Second), a.name, b.name, !un)
				c.unlisted[pair] = un
			}
		}
	}
}

// stopChat stops every node's room messages.
func (c *churn) stopChat() {
	c.mu.Lock()
	live := slices.Clone(c.live)
	c.mu.Unlock()
	for _, cn := range live {
		close(cn.stop)
		<-cn.done
	}
}

// checkRoom waits, at most 30 s, until every stable node stores every
// message the stable nodes sent.
func (c *churn) checkRoom() {
	t := c.t
	c.mu.Lock()
	want := 0
	for _, texts := range c.sentBy {
		want += len(texts)
	}
	stable := slices.DeleteFunc(slices.Clone(c.live), func(cn *churnNode) bool { return !cn.stable })
	c.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, cn := range stable {
			ms, err := cn.n.RoomMessages(t.Context(), churnRoom, 0)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, m := range ms {
				have[m.From+" "+m.Text] = true
			}
			for author, texts := range c.sentBy {
				for _, text := range texts {
					if !have[author.String()+" "+text] {
						missing++
					}
				}
			}
		}
		if missing == 0 {
			t.Logf("L9: every stable node stores the %d messages the stable nodes sent", want)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d deliveries of the stable nodes' %d messages missing on stable nodes 30 s after the chat stopped", missing, want)
			c.explainMissing(stable)
			return
		}
		time.Sleep(200 * time.Millisecond) // a poll interval, not a synchronisation
	}
}

// explainMissing logs, for each stable node and author, the messages it
// lacks, whether the two are connected, how many members it sees in the
// room's topic, and whether each lists the other there, to tell a lost
// delivery from a member cut off (pubsub forgetting a subscription).
func (c *churn) explainMissing(stable []*churnNode) {
	t := c.t
	byID := map[peer.ID]*churnNode{}
	for _, cn := range stable {
		byID[cn.n.ID()] = cn
	}
	for _, cn := range stable {
		ms, err := cn.n.RoomMessages(t.Context(), churnRoom, 0)
		if err != nil {
			t.Error(err)
			return
		}
		have := map[string]bool{}
		for _, m := range ms {
			have[m.From+" "+m.Text] = true
		}
		members := -1
		if rs, err := cn.n.Rooms(t.Context()); err == nil && len(rs) == 1 {
			members = rs[0].Members
		}
		for author, texts := range c.sentBy {
			var lack []int
			for i, text := range texts {
				if !have[author.String()+" "+text] {
					lack = append(lack, i)
				}
			}
			if len(lack) == 0 {
				continue
			}
			an := byID[author]
			t.Logf("L9: %s (%d members in the topic) lacks %d of %s's %d messages, #%d to #%d; connected: %v; "+
				"%s lists %s in the topic: %v, and %s lists %s: %v",
				cn.name, members, len(lack), an.name, len(texts), lack[0], lack[len(lack)-1],
				cn.n.Host().Network().Connectedness(author),
				cn.name, an.name, slices.Contains(cn.n.RoomPeers(churnRoom), author),
				an.name, cn.name, slices.Contains(an.n.RoomPeers(churnRoom), cn.n.ID()))
		}
	}
}

// report fits the samples after warm, and checks them when judge is set.
func (c *churn) report(samples []chattest.Sample, warm time.Duration, judge bool) {
	t := c.t
	gor := chattest.Fit(samples, warm, func(s chattest.Sample) float64 { return s.Goroutines })
	heap := chattest.Fit(samples, warm, func(s chattest.Sample) float64 { return s.Retained })
	paced := chattest.Fit(samples, warm, func(s chattest.Sample) float64 { return s.LiveHeap })
	c.mu.Lock()
	t.Logf("L9: %d nodes started (%d of their first dials tried again), %d left; %d transfers done; largest peerstore %d peers (%d checks over the bound; it allowed for at most %d departed nodes); at most %d departed nodes in live routing tables at once; most provider records on a node %d (%d checks over the bound)",
		c.started, c.redials, len(c.departed), c.moved, c.psMax, c.psOver, c.recentMax, c.rtMax, c.provMax, c.provOver)
	if c.psOver > 0 {
		t.Errorf("%d peerstore checks over the bound; the last: %s", c.psOver, c.psWorst)
	}
	c.mu.Unlock()
	c.mu.Lock()
	live := slices.Clone(c.live)
	c.mu.Unlock()
	for _, cn := range live {
		if cn.stable {
			t.Logf("L9: %s's router dropped room messages: validation queue full %.0f, throttled %.0f, reader too slow %.0f; RPCs dropped for peers with a full queue %.0f",
				cn.name, metricValue(t, cn.n, "kith_room_messages_dropped_total", "reason", "validation_queue_full"),
				metricValue(t, cn.n, "kith_room_messages_dropped_total", "reason", "validation_throttled"),
				metricValue(t, cn.n, "kith_room_messages_dropped_total", "reason", "reader_too_slow"),
				metricTotal(t, cn.n, "kith_room_rpcs_dropped_total"))
		}
	}
	t.Logf("L9: goroutines after warm-up: %v", gor)
	t.Logf("L9: live heap after a forced GC, after warm-up: %v (mean %.0f MiB)", heap, heap.Mean/(1<<20))
	t.Logf("L9: live heap at the pacer's GCs (also what was allocated while they marked), after warm-up, not judged: %v (mean %.0f MiB)", paced, paced.Mean/(1<<20))
	if !judge {
		t.Logf("L9: a run this short ends before the caches fill (pubsub's seen messages live 2 min, its score of a departed "+
			"peer 10 min): the slopes above are not judged; %s=30m judges them", chattest.SoakDurationEnv)
		return
	}
	if gor.Growing(1) {
		t.Errorf("goroutines grow by %.2f ± %.2f %%/h, want ≤ 1%%/h", gor.PctPerHour(), gor.PctErrPerHour())
	}
	if heap.Growing(1) {
		t.Errorf("live heap grows by %.2f ± %.2f %%/h, want ≤ 1%%/h", heap.PctPerHour(), heap.PctErrPerHour())
	}
}

// closeAll closes every live node (safe to call twice).
func (c *churn) closeAll() {
	c.mu.Lock()
	live := c.live
	c.live = nil
	c.mu.Unlock()
	for _, cn := range live {
		select {
		case <-cn.stop:
		default:
			close(cn.stop)
		}
		<-cn.done
		cn.n.Close()
	}
}

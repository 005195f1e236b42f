package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The history client's knobs.
const (
	// historyAsk is how many members one round asks, in turn, before it
	// gives up until the next retry.
	historyAsk = 3
	// historyMaxBad is how many messages of one answer may fail
	// verification before the peer is cut off (its stream reset) and
	// another member asked.
	historyMaxBad = 3
	// historyShun is how long a peer cut off is not asked again.
	historyShun = 10 * time.Minute
	// historyRetryMin and historyRetryMax bound the back-off after a round
	// in which no member answered (a member may refuse at first because its
	// pubsub has not seen our subscription yet).
	historyRetryMin = time.Second
	historyRetryMax = time.Minute
	// historyRefusedFast is how many rounds in a row in which every member
	// asked answered NOT_ALLOWED are retried historyRetryMin apart, before
	// the back-off doubles: a member refuses us until its router has seen
	// our subscription, which takes a heartbeat or two, or seconds under
	// load; doubling from the first refusal left a returning member
	// waiting up to a minute for its backfill.
	historyRefusedFast = 30
	// historyMaxGone bounds the peers watchJoins remembers as gone from a
	// room, to ask when they come back.
	historyMaxGone = 1024
	// historySyncRounds is how many exchanges one sync has with a member
	// (each brings at most MaxHistoryMessages, from kith historyAnswerMax):
	// a member that keeps answering "more" with new messages (anyone may
	// sign messages for an open room with fresh keys) cannot keep us asking.
	// What is left is asked for historyRetryMax later.
	historySyncRounds = 50
	// historyOnJoin is RoomConfig.HistoryOnJoin's default.
	historyOnJoin = 500
)

// errCutOff: a history server sent too many messages that fail
// verification, or more than it was asked for.
var errCutOff = errors.New("chat: history peer cut off")

// history is a room's history client state: what to ask, and whom first.
type history struct {
	gap    chan struct{} // a gap was seen, or the room is back: sync (capacity 1, coalescing)
	joined chan struct{} // a peer joined the topic (capacity 1)
	done   chan struct{} // closed when the client has stopped

	mu      sync.Mutex
	hint    peer.ID // the peer to ask first: the forwarder of a gap, a new peer
	shunned map[peer.ID]time.Time
	// owed are members to ask whatever the others answer: they may hold
	// messages nobody else has (they wrote while cut off from the room),
	// which no gap shows until they write again. A member is owed a sync
	// when it comes back to the topic after leaving it, and when its
	// history request shows it holds more than we do.
	owed map[peer.ID]bool

	// joining: we hold nothing of the room and took nothing of it before;
	// the next answer is its recent past (joinHistory). floor: the clock
	// below which we want nothing (0: we want everything), the oldest of
	// what we took when we joined.
	joining atomic.Bool
	floor   atomic.Int64
}

// beforeJoin says whether the seqs of an author below a message, of whom
// we hold up to hw, are history we do not want: we hold nothing of the
// author, and we joined the room taking only its recent past (or are
// taking it). Those seqs are not a gap.
func (h *history) beforeJoin(hw uint64) bool {
	return hw == 0 && h.recentOnly()
}

// recentOnly says whether we want the room's recent past only: we took it
// when we joined (floor set), or are taking it.
func (h *history) recentOnly() bool { return h.joining.Load() || h.floor.Load() > 0 }

// wantedGaps leaves out of gaps those we do not want when we want the
// room's recent past only (recent): each author's seqs before the first we
// hold (RoomConfig.HistoryOnJoin).
func wantedGaps(gaps []Gap, recent bool) []Gap {
	if !recent {
		return gaps
	}
	return slices.DeleteFunc(gaps, func(g Gap) bool { return g.From == 1 })
}

func newHistory() *history {
	return &history{gap: make(chan struct{}, 1), joined: make(chan struct{}, 1), done: make(chan struct{}),
		shunned: map[peer.ID]time.Time{}, owed: map[peer.ID]bool{}}
}

// owe makes p a member to ask in the next sync, and wakes the client.
func (h *history) owe(p peer.ID) {
	h.mu.Lock()
	if len(h.owed) < historyMaxGone {
		h.owed[p] = true
	}
	h.mu.Unlock()
	wake(h.gap)
}

// owes lists the members owed a sync.
func (h *history) owes() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Keys(h.owed))
}

// paid records that p answered a sync in full (or is no longer there).
func (h *history) paid(p peer.ID) {
	h.mu.Lock()
	delete(h.owed, p)
	h.mu.Unlock()
}

// wantRepair asks j's history client to repair a gap, asking p first. Gaps
// seen while a request is in flight are coalesced into the next one.
func (s *RoomService) wantRepair(j *joined, p peer.ID) {
	j.hist.setHint(p, true)
	wake(j.hist.gap)
}

func (h *history) setHint(p peer.ID, replace bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if replace || h.hint == "" {
		h.hint = p
	}
}

func (h *history) takeHint() peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.hint
	h.hint = ""
	return p
}

// shun stops asking p for historyShun. Entries past their time go, so
// that peers cut off and never seen again are not kept.
func (h *history) shun(p peer.ID, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	maps.DeleteFunc(h.shunned, func(_ peer.ID, until time.Time) bool { return now.After(until) })
	h.shunned[p] = now.Add(historyShun)
}

func (h *history) isShunned(p peer.ID, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.shunned[p]
	if ok && now.After(until) {
		delete(h.shunned, p)
		return false
	}
	return ok
}

// historyLoop runs j's history client until ctx ends: it backfills once a
// member is there (at join, and at every start since rooms are rejoined),
// then again whenever a peer joins after the room had lost its last, and
// repairs gaps as they are seen. A round in which no member answered
// is retried with back-off, and at once when a peer joins. It closes
// j.hist.done once it and its topic event handler have stopped (a topic
// with a live handler cannot be closed).
func (s *RoomService) historyLoop(ctx context.Context, j *joined) {
	defer close(j.hist.done)
	ev, err := j.topic.EventHandler()
	if err != nil {
		s.log.Warn("history: topic events", "room", j.Name, "err", err)
		return
	}
	var watch sync.WaitGroup
	defer watch.Wait()
	watch.Go(func() { s.watchJoins(ctx, j, ev) })
	need, backoff := true, historyRetry{max: s.cfg.HistoryRetryMax}
	var retry, later <-chan time.Time // later: the rest of a sync cut short
	for {
		if need && retry == nil {
			r := s.syncHistory(ctx, j)
			if ctx.Err() != nil {
				return
			}
			var wait, resume time.Duration
			need, wait, resume = backoff.after(r)
			if wait > 0 {
				retry = time.After(wait)
			}
			if resume > 0 {
				later = time.After(resume)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-j.hist.gap:
			need = true
		case <-j.hist.joined:
			retry = nil // a new member: ask now
		case <-retry:
			retry = nil
		case <-later:
			need, later = true, nil
		}
	}
}

// historyRetry is historyLoop's back-off between syncs.
type historyRetry struct {
	max     time.Duration // RoomConfig.HistoryRetryMax
	delay   time.Duration // the next back-off (0: historyRetryMin)
	refused int           // syncRefused results in a row
}

// after says what follows a sync that ended with r: whether a sync is
// still needed; if so, after how long it is retried (0: when a gap is seen
// or a member joins); and after how long a sync cut short resumes (0:
// none).
func (b *historyRetry) after(r syncResult) (need bool, retry, later time.Duration) {
	if r == syncRefused {
		b.refused++
	} else {
		b.refused = 0
	}
	b.delay = max(b.delay, historyRetryMin)
	switch r {
	case syncNobody: // the first member to join
		return true, 0, 0
	case syncDone:
		b.delay = historyRetryMin
		return false, 0, 0
	case syncGapsLeft: // the next gap seen or member to join
		b.delay = historyRetryMin
		return true, 0, 0
	case syncCut: // not sooner, even when a peer joins
		b.delay = historyRetryMin
		return false, 0, historyRetryMax
	case syncRefused:
		if b.refused <= historyRefusedFast {
			return true, historyRetryMin, 0
		}
	}
	wait := b.delay
	b.delay = min(2*b.delay, b.max)
	return true, wait, 0
}

// watchJoins turns the topic's PeerJoin events into hints and wake-ups of
// historyLoop. A peer that joins after the room lost its last peer (we
// were cut off, or the others away for hours) also asks for a sync: the
// room may have spoken meanwhile, and without a later message from the
// same author no gap would show it. (The first peers need none: historyLoop
// syncs at the start until a member answers.) A peer that comes back after
// leaving the topic is owed a sync the other way: what it wrote while cut
// off from us reached nobody, and no gap shows it until it writes again
// (RELIABILITY F3, node/natlab TestF3PartitionThenHeal).
func (s *RoomService) watchJoins(ctx context.Context, j *joined, ev *pubsub.TopicEventHandler) {
	defer ev.Cancel()
	peers := map[peer.ID]bool{} // the topic's peers now, at most our connections'
	gone := map[peer.ID]bool{}  // peers that left, at most historyMaxGone
	emptied := false
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if e.Type != pubsub.PeerJoin {
			j.reann.left(e.Peer)
			delete(peers, e.Peer)
			if len(gone) < historyMaxGone {
				gone[e.Peer] = true
			}
			j.hist.paid(e.Peer) // asked again if it comes back
			emptied = emptied || len(peers) == 0
			continue
		}
		peers[e.Peer] = true
		j.hist.setHint(e.Peer, false)
		if gone[e.Peer] {
			delete(gone, e.Peer)
			j.hist.owe(e.Peer)
		}
		if emptied {
			emptied = false
			wake(j.hist.gap)
		}
		wake(j.hist.joined)
	}
}

// wake signals c, a channel of capacity 1, unless a signal is pending.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// syncResult is how a sync ended.
type syncResult int

const (
	syncNobody   syncResult = iota // no member to ask is known yet
	syncFailed                     // no member asked answered in full
	syncDone                       // a member answered in full, and no gap is left
	syncCut                        // a member answered historySyncRounds times and had more
	syncAgain                      // gaps are left, and the round repaired some or a member did not answer
	syncGapsLeft                   // every member asked answered in full, and none had what the gaps lack
	syncRefused                    // every member asked answered NOT_ALLOWED (it may not see us subscribed yet)
)

// syncHistory asks up to historyAsk members in turn, the hinted one
// first, until one answers in full and no gap is left. A member that
// answered in full may lack what we lack (the forwarder of a gap often
// missed the same messages), so a gap left after its answer is asked of
// the next member, and, while rounds repair something or a member asked
// did not answer (it may not know us yet), in another round with back-off
// (syncAgain): ending at the first answer left gaps other members could
// fill unrepaired until the next gap was seen (TestSoakRoomOverload, build
// tag soak). A gap that every member asked answered without narrowing
// waits for the next gap seen or the next member to join (syncGapsLeft,
// TestHistoryGapFromNextMember): retrying it on a timer would have members
// hand over, again and again, what they hold after a hole that may never
// close (messages sent before anyone still here joined).
func (s *RoomService) syncHistory(ctx context.Context, j *joined) syncResult {
	r := s.syncMembers(ctx, j)
	if !s.syncOwed(ctx, j) && (r == syncDone || r == syncGapsLeft) {
		return syncAgain
	}
	return r
}

// syncOwed asks every member owed a sync (history.owed) that is still in
// the topic, and reports whether all of them answered in full; one that
// did not stays owed, for the next round.
func (s *RoomService) syncOwed(ctx context.Context, j *joined) bool {
	all := true
	for _, p := range j.hist.owes() {
		if ctx.Err() != nil {
			return false
		}
		if !slices.Contains(j.topic.ListPeers(), p) || j.hist.isShunned(p, s.now()) {
			j.hist.paid(p) // gone again: owed again if it comes back
			continue
		}
		_, cut, err := s.fetchFrom(ctx, j, p)
		s.answeredOrRefused(ctx, j, p, err)
		switch {
		case err == nil && !cut:
			j.hist.paid(p)
		case err == nil: // the rest comes with the next round
			all = false
		default:
			all = false
			if errors.Is(err, errCutOff) {
				j.hist.shun(p, s.now())
				j.hist.paid(p)
			}
			if ctx.Err() == nil {
				s.log.Info("history: member back did not answer", "room", j.Name, "peer", p, "err", err)
			}
		}
	}
	return all
}

// syncMembers asks up to historyAsk members in turn, the hinted one first,
// until one answers in full and no gap is left (see syncHistory).
func (s *RoomService) syncMembers(ctx context.Context, j *joined) syncResult {
	hint := j.hist.takeHint()
	cands := j.topic.ListPeers()
	if hint != "" {
		cands = append([]peer.ID{hint}, slices.DeleteFunc(cands, func(p peer.ID) bool { return p == hint })...)
	}
	asked, stored, answered, failed, refused := 0, 0, false, false, 0
	for _, p := range cands {
		if asked == historyAsk || ctx.Err() != nil {
			break
		}
		if p == s.h.ID() || j.hist.isShunned(p, s.now()) {
			continue
		}
		asked++
		n, cut, err := s.fetchFrom(ctx, j, p)
		stored += n
		s.answeredOrRefused(ctx, j, p, err)
		switch {
		case err == nil && cut:
			s.log.Info("history: more to fetch later", "room", j.Name, "peer", p, "rounds", historySyncRounds)
			return syncCut
		case err == nil:
			j.hist.paid(p)
			gaps, err := s.store.RoomGaps(ctx, j.Name)
			if err != nil || len(wantedGaps(gaps, j.hist.recentOnly())) == 0 {
				return syncDone
			}
			answered = true
			continue
		}
		failed = true
		if isRefusal(err) {
			refused++
		}
		if errors.Is(err, errCutOff) {
			j.hist.shun(p, s.now())
		}
		if ctx.Err() == nil {
			s.log.Info("history: member did not answer", "room", j.Name, "peer", p, "err", err)
		}
	}
	switch {
	case answered && (stored > 0 || failed):
		return syncAgain
	case answered:
		return syncGapsLeft
	case asked == 0:
		return syncNobody
	case refused == asked:
		return syncRefused
	}
	return syncFailed
}

// isRefusal says whether err is a member's NOT_ALLOWED answer to our
// history request: it does not see us subscribed to the room.
func isRefusal(err error) bool {
	re, ok := errors.AsType[*protocols.RemoteError](err)
	return ok && re.Code == protocols.CodeNotAllowed
}

// answeredOrRefused counts p's answer (err nil) or refusal towards
// re-announcing our subscription (rooms_reannounce.go).
func (s *RoomService) answeredOrRefused(ctx context.Context, j *joined, p peer.ID, err error) {
	switch {
	case err == nil:
		j.reann.answered(p)
	case isRefusal(err):
		s.refusedBy(ctx, j, p)
	}
}

// fetchFrom asks p for what we lack, again while it says there is more and
// a round stored something, for at most historySyncRounds rounds; cut says
// that it stopped there, stored how many messages it stored.
//
// A room new to us (history.joining) is asked for its newest messages
// first, until we took RoomConfig.HistoryOnJoin of them or the member has
// no more (joinHistory).
func (s *RoomService) fetchFrom(ctx context.Context, j *joined, p peer.ID) (stored int, cut bool, err error) {
	for range historySyncRounds {
		have, err := s.haves(ctx, j)
		if err != nil {
			return stored, false, err
		}
		joining := j.hist.joining.Load()
		r, err := s.fetch(ctx, j, p, have, joining, s.cfg.HistoryOnJoin-stored)
		stored += r.stored
		if r.stored > 0 || r.bad > 0 {
			s.log.Info("history received", "room", j.Name, "peer", p,
				"stored", r.stored, "duplicates", r.got-r.stored-r.bad, "dropped", r.bad)
		}
		if joining && err == nil && (!r.more || r.stored == 0 || stored >= s.cfg.HistoryOnJoin) {
			return stored, false, s.joinHistory(ctx, j, stored, r.more)
		}
		if err != nil || !r.more || r.stored == 0 {
			return stored, false, err
		}
	}
	return stored, true, nil
}

// joinHistory ends the taking of a new room's recent past, which brought
// took messages: when the member had older ones (older), what is older
// than the oldest message we hold is not wanted, then or later (the
// room's floor, kept in the store); otherwise we hold the room's whole
// history and want all of it.
func (s *RoomService) joinHistory(ctx context.Context, j *joined, took int, older bool) error {
	if older {
		oldest, err := s.store.RoomMessages(ctx, RoomFilter{Room: j.Name, Limit: 1, Oldest: true})
		if err != nil {
			return fmt.Errorf("chat: history: %w", err)
		}
		if len(oldest) == 1 && oldest[0].Clock > 0 {
			if err := s.store.SetRoomFloor(ctx, j.Name, oldest[0].Clock); err != nil {
				return fmt.Errorf("chat: history: %w", err)
			}
			j.hist.floor.Store(oldest[0].Clock)
		}
	}
	if err := s.store.SetRoomJoining(ctx, j.Name, false); err != nil {
		return fmt.Errorf("chat: history: %w", err)
	}
	j.hist.joining.Store(false)
	s.log.Info("history: took the room's recent past", "room", j.Name, "messages", took, "older_left", older)
	return nil
}

// haves returns, for every author of j we hold messages of, the prefix of
// seqs 1..n we hold without a gap, and the ranges we hold above it (at most
// MaxHistoryAuthors authors, and MaxHistoryHeld ranges in all: each
// author's first range, then each one's second, and so on). Without the
// ranges a member that lacked one old message of an author was sent
// everything of that author above it, again in every round, and once such
// messages filled an answer (historyAnswerMax) nothing newer was repaired:
// in TestSoakChurn (build tag soak) the bootstrap node lacked 174 of each
// stable author's last 250 messages for good.
func (s *RoomService) haves(ctx context.Context, j *joined) ([]protocols.HistoryHave, error) {
	ours, err := s.holding(ctx, j)
	if err != nil {
		return nil, err
	}
	var out []protocols.HistoryHave
	for _, a := range slices.Sorted(maps.Keys(ours.hw)) {
		if len(out) == protocols.MaxHistoryAuthors {
			break // the rest come in full; duplicates are dropped
		}
		out = append(out, protocols.HistoryHave{Author: a, Through: ours.through(a)})
	}
	for k, held := 0, 0; held < protocols.MaxHistoryHeld; k++ {
		added := false
		for i := range out {
			gs := ours.gaps[out[i].Author]
			if k >= len(gs) || held == protocols.MaxHistoryHeld {
				continue
			}
			end := ours.hw[out[i].Author] // what we hold after gap k: up to the next gap or our high-water mark
			if k+1 < len(gs) {
				end = gs[k+1].From - 1
			}
			out[i].Held = append(out[i].Held, protocols.HistoryRange{From: gs[k].To + 1, To: end})
			held++
			added = true
		}
		if !added {
			break
		}
	}
	return out, nil
}

// holding is what we hold of a room: each author's high-water mark, and
// the gaps below it, by From.
type holding struct {
	hw   map[peer.ID]uint64
	gaps map[peer.ID][]Gap
}

func (s *RoomService) holding(ctx context.Context, j *joined) (holding, error) {
	hw, err := s.store.HighWaters(ctx, j.Name)
	if err != nil {
		return holding{}, err
	}
	gaps, err := s.store.RoomGaps(ctx, j.Name)
	if err != nil {
		return holding{}, err
	}
	h := holding{hw: hw, gaps: map[peer.ID][]Gap{}}
	for _, g := range gaps {
		h.gaps[g.Author] = append(h.gaps[g.Author], g)
	}
	return h, nil
}

// through is the last seq n of a such that we hold all of 1..n.
func (h holding) through(a peer.ID) uint64 {
	if gs := h.gaps[a]; len(gs) > 0 {
		return gs[0].From - 1
	}
	return h.hw[a]
}

// holdsMore reports whether a requester's haves show that it holds
// messages of j that we lack: some author's prefix longer than ours, or a
// held range above our high-water mark or across one of our gaps.
func (s *RoomService) holdsMore(ctx context.Context, j *joined, have []protocols.HistoryHave) bool {
	if len(have) == 0 {
		return false
	}
	ours, err := s.holding(ctx, j)
	if err != nil {
		return false
	}
	if j.hist.recentOnly() { // what is before our floor we do not want
		for a, gs := range ours.gaps {
			ours.gaps[a] = wantedGaps(gs, true)
		}
	}
	for _, h := range have {
		if h.Through > ours.through(h.Author) {
			return true
		}
		gs := ours.gaps[h.Author]
		for _, r := range h.Held {
			if r.To > ours.hw[h.Author] || slices.ContainsFunc(gs, func(g Gap) bool { return r.From <= g.To && g.From <= r.To }) {
				return true
			}
		}
	}
	return false
}

// fetchResult counts one exchange's messages.
type fetchResult struct {
	more             bool
	got, stored, bad int
}

// fetch runs one /kith/history/1.0.0 exchange with p: it verifies every
// message of the answer and stores those that pass.
//
// With latest it asks for the newest messages we lack, at most want of
// them; otherwise the oldest, none older than the room's floor.
func (s *RoomService) fetch(ctx context.Context, j *joined, p peer.ID, have []protocols.HistoryHave, latest bool, want int) (fetchResult, error) {
	var r fetchResult
	ctx, cancel := context.WithTimeout(ctx, historyExchange)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "history"), p, protocols.HistoryProtocol)
	if err != nil {
		return r, fmt.Errorf("chat: open history stream: %w", err)
	}
	if err := st.Scope().SetService(HistoryServiceName); err != nil {
		st.Reset()
		return r, fmt.Errorf("chat: history stream: %w", err)
	}
	if err := st.Scope().ReserveMemory(protocols.MaxHistoryFrame, network.ReservationPriorityAlways); err != nil {
		st.Reset()
		return r, fmt.Errorf("chat: history stream: %w", err)
	}
	defer st.Scope().ReleaseMemory(protocols.MaxHistoryFrame)
	defer closeOnCtx(ctx, st)()
	st.SetDeadline(time.Now().Add(s.cfg.HistoryFirstFrame))
	req := &protocols.HistoryRequest{Topic: j.Topic, Have: have, Max: protocols.MaxHistoryMessages}
	if latest {
		req.Latest, req.Max = true, min(max(want, 1), protocols.MaxHistoryMessages)
	} else if f := j.hist.floor.Load(); f > 0 {
		req.Since = uint64(f)
	}
	if err := protocols.NewHistoryWriter(st).Write(protocols.HistoryFrame{Request: req}); err != nil {
		st.Reset()
		return r, err
	}
	st.CloseWrite()
	rd := protocols.NewHistoryReader(st)
	for {
		f, err := rd.Read(protocols.MaxHistoryFrame)
		if errors.Is(err, io.EOF) {
			err = errors.New("chat: history stream ended without End")
		}
		switch {
		case err != nil:
			st.Reset()
			return r, err
		case f.Error != nil:
			st.Close()
			return r, f.Error
		case f.End != nil:
			st.Close()
			r.more = f.End.More
			return r, nil
		case f.Batch == nil:
			st.Reset()
			return r, fmt.Errorf("%w: it sent a request", errCutOff)
		}
		if err := s.takeBatch(ctx, j, f.Batch.Messages, &r); err != nil {
			st.Reset()
			return r, err
		}
		st.SetReadDeadline(time.Now().Add(s.cfg.HistoryIdle))
	}
}

// takeBatch verifies the messages of one batch and stores those that pass,
// in one write (a backfill brings thousands: one write each made them as
// many disk syncs).
func (s *RoomService) takeBatch(ctx context.Context, j *joined, raws [][]byte, r *fetchResult) error {
	r.got += len(raws)
	if r.got > protocols.MaxHistoryMessages {
		return fmt.Errorf("%w: it sent %d messages, more than the %d asked for", errCutOff, r.got, protocols.MaxHistoryMessages)
	}
	ms := make([]RoomMessage, 0, len(raws))
	floor := j.hist.floor.Load()
	for _, raw := range raws {
		m, err := verifyHistory(j, raw, s.now())
		if errors.Is(err, protocols.ErrRoomClockAhead) {
			s.log.Debug("history message dropped", "room", j.Name, "err", err)
			continue // not the server's fault: see errHistoryMessage
		}
		if err == nil && m.Clock < floor {
			continue // older than we want: a server that reads no since sends it
		}
		if err != nil {
			r.bad++
			s.log.Debug("history message dropped", "room", j.Name, "err", err)
			if r.bad >= historyMaxBad {
				return fmt.Errorf("%w: %d messages failed verification", errCutOff, r.bad)
			}
			continue
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil
	}
	hw := map[peer.ID]uint64{} // each author's high-water mark before the batch, then as it stored
	for _, m := range ms {
		if _, ok := hw[m.Author]; ok {
			continue
		}
		h, err := s.store.HighWater(ctx, j.Name, m.Author)
		if err != nil {
			return fmt.Errorf("chat: store history messages: %w", err)
		}
		hw[m.Author] = h
	}
	for _, m := range ms {
		j.held.raise(m.Author, m.Seq)
	}
	added, err := s.store.AddRoomMessages(ctx, ms)
	if err != nil {
		return fmt.Errorf("chat: store history messages: %w", err)
	}
	for i, m := range ms {
		if !added[i] {
			continue
		}
		r.stored++
		// A backfilled message past a hole (the member that answered
		// lacks what comes before it) is a gap as one received live is:
		// reported, and repaired from another member in another round.
		// Unreported, the hole showed nowhere, since later messages then
		// arrive right after the new high-water mark (TestSoakRoomOverload,
		// build tag soak).
		if m.Seq > hw[m.Author]+1 && !j.hist.beforeJoin(hw[m.Author]) {
			s.notify(RoomEvent{Room: j.Name, Gap: &Gap{Author: m.Author, From: hw[m.Author] + 1, To: m.Seq - 1}})
			wake(j.hist.gap)
		}
		hw[m.Author] = max(hw[m.Author], m.Seq)
		s.notify(RoomEvent{Room: j.Name, Message: &ms[i], Backfilled: true})
	}
	return nil
}

package chat

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// HistoryServiceName names the room history service in the resource
// manager.
const HistoryServiceName = "kith.history"

// Timeouts of /kith/history/1.0.0 streams, as for direct messages: the
// first frame (the request, or the first answer) within historyFirstFrame,
// each later frame within historyIdle.
const (
	historyFirstFrame = 30 * time.Second
	historyIdle       = 60 * time.Second
	// historyExchange bounds a whole exchange, on either side, however
	// busily a slow peer trickles frames.
	historyExchange = 5 * time.Minute
	// historyWriteGroup is how many messages the server writes under one
	// write deadline: at most about 768 KiB, one batch.
	historyWriteGroup = 32
	// historyAnswerMax is the most messages the server sends in one answer,
	// whatever the request's max_messages: it holds them in memory, each
	// up to MaxHistoryRawMessage. HistoryEnd.more sends the requester back
	// for the rest.
	historyAnswerMax = 128
	// historyMemory is what a served history stream reserves: the request,
	// the messages of one answer and the frame it builds.
	historyMemory = protocols.MaxHistoryRequest + (historyAnswerMax+1)*protocols.MaxHistoryRawMessage +
		protocols.MaxHistoryFrame
)

// HistoryLimits adds the resource-manager limits of the room history
// service: a member asks one peer at a time per room, so a peer holds at
// most a few history streams, each until its deadline; a served stream
// reserves about 4.3 MiB (historyMemory), a requested one 1 MiB.
func HistoryLimits(l *rcmgr.ScalingLimitConfig) {
	all := rcmgr.BaseLimit{StreamsInbound: 32, StreamsOutbound: 32, Streams: 64, Memory: 160 << 20}
	more := rcmgr.BaseLimitIncrease{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 32 << 20}
	perPeer := rcmgr.BaseLimit{StreamsInbound: 4, StreamsOutbound: 4, Streams: 8, Memory: 24 << 20}
	l.AddServiceLimit(HistoryServiceName, all, more)
	l.AddServicePeerLimit(HistoryServiceName, perPeer, rcmgr.BaseLimitIncrease{})
	// The protocol scopes are charged too, and go-libp2p's defaults for a
	// protocol's peer (16 MiB) would refuse a peer's fourth served stream.
	l.AddProtocolLimit(protocols.HistoryProtocol, all, more)
	l.AddProtocolPeerLimit(protocols.HistoryProtocol, perPeer, rcmgr.BaseLimitIncrease{})
}

// serveHistory answers one /kith/history/1.0.0 request (section "Room
// history" of package protocols).
//
// It serves a room only to a peer that pubsub shows subscribed to the
// room's topic now, and only a room we are in; anything else is
// NOT_ALLOWED, the same answer for a room we are not in as for one the
// peer is not in. That is enough: history hands on only what the topic
// carried, which any subscriber receives anyway. A private room's payloads
// are sealed with its key, so a subscriber without the secret reads nothing
// of them, and its topic is a hash of the key, so only someone who holds
// the key or watched the topic knows what to ask for.
func (s *RoomService) serveHistory(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	if err := st.Scope().SetService(HistoryServiceName); err != nil {
		s.log.Debug("history stream refused by resource manager", "err", err)
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(historyMemory, network.ReservationPriorityAlways); err != nil {
		s.log.Debug("history stream: no memory", "err", err)
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(historyMemory)
	ctx, cancel := context.WithTimeout(s.ctx, historyExchange)
	defer cancel()
	defer closeOnCtx(ctx, st)()
	p := st.Conn().RemotePeer()
	w := protocols.NewHistoryWriter(st)
	st.SetDeadline(time.Now().Add(s.cfg.HistoryFirstFrame))
	f, err := protocols.NewHistoryReader(st).Read(protocols.MaxHistoryRequest)
	switch {
	case errors.Is(err, io.EOF) || timedOut(err):
		st.Reset()
		return
	case err != nil:
		s.log.Debug("history request refused", "peer", p, "err", err)
		historyFail(st, w, protocols.ErrorCodeFor(err), err.Error())
		return
	case f.Request == nil:
		historyFail(st, w, protocols.CodeUnexpected, "expected a request")
		return
	}
	j := s.roomOfTopic(f.Request.Topic)
	if j == nil || !slices.Contains(j.topic.ListPeers(), p) {
		s.log.Debug("history refused: not a member", "peer", p)
		historyFail(st, w, protocols.CodeNotAllowed, "not a member of this room")
		return
	}
	s.answerHistory(ctx, st, w, p, j, f.Request)
	// A requester that holds more than we do (it wrote, or heard, what
	// never reached us: it was cut off, RELIABILITY F3) is asked in turn.
	if s.holdsMore(ctx, j, f.Request.Have) {
		s.log.Debug("history: the requester holds messages we lack; asking it", "room", j.Name, "peer", p)
		j.hist.owe(p)
	}
}

// answerHistory writes what j holds that the request's haves lack (above
// through, outside the held ranges), in room order, up to its Max or
// historyAnswerMax, then End.
func (s *RoomService) answerHistory(ctx context.Context, st network.Stream, w *protocols.HistoryWriter, p peer.ID,
	j *joined, req *protocols.HistoryRequest) {
	above := make(map[peer.ID]uint64, len(req.Have))
	held := map[peer.ID][]protocols.HistoryRange{}
	for _, h := range req.Have {
		above[h.Author] = h.Through
		if len(h.Held) > 0 {
			held[h.Author] = h.Held
		}
	}
	// The oldest above the haves (none older than since), so that a
	// requester asking again moves forward, or with latest the newest; one
	// more than asked tells whether there is more.
	limit := min(req.Max, historyAnswerMax)
	ms, err := s.store.RoomMessages(ctx, RoomFilter{Room: j.Name, Above: above, Held: held, Signed: true,
		Limit: limit + 1, Oldest: !req.Latest, ClockAtLeast: int64(min(req.Since, math.MaxInt64))})
	if err != nil {
		s.log.Warn("history: read room messages", "room", j.Name, "err", err)
		historyFail(st, w, protocols.CodeInternal, "could not read the room's messages")
		return
	}
	more := len(ms) > limit
	if more && req.Latest {
		ms = ms[len(ms)-limit:] // the newest limit, oldest first
	}
	ms = ms[:min(len(ms), limit)]
	raws := make([][]byte, 0, len(ms))
	for _, m := range ms {
		if len(m.Raw) <= protocols.MaxHistoryRawMessage {
			raws = append(raws, m.Raw)
		}
	}
	for g := range slices.Chunk(raws, historyWriteGroup) {
		st.SetWriteDeadline(time.Now().Add(s.cfg.HistoryIdle))
		if err := w.WriteMessages(g); err != nil {
			s.log.Debug("history answer broken", "peer", p, "err", err)
			st.Reset()
			return
		}
	}
	st.SetWriteDeadline(time.Now().Add(s.cfg.HistoryIdle))
	if err := w.Write(protocols.HistoryFrame{End: &protocols.HistoryEnd{More: more}}); err != nil {
		st.Reset()
		return
	}
	st.Close()
	s.log.Debug("history served", "room", j.Name, "peer", p, "messages", len(raws), "more", more)
}

// historyFail sends a coded error and closes the stream.
func historyFail(st network.Stream, w *protocols.HistoryWriter, code protocols.ErrorCode, msg string) {
	st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := w.Write(protocols.HistoryFrame{Error: &protocols.RemoteError{Code: code, Message: protocols.ErrorHint(msg)}})
	if err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// roomOfTopic returns the room we are in whose topic is topic, or nil.
func (s *RoomService) roomOfTopic(topic string) *joined {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.rooms {
		if j.Topic == topic {
			return j
		}
	}
	return nil
}

// enter registers a stream handler with the WaitGroup unless the service
// is closing.
func (s *RoomService) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// closeOnCtx resets st when ctx ends; the returned func undoes it.
func closeOnCtx(ctx context.Context, st network.Stream) func() bool {
	return context.AfterFunc(ctx, func() { st.Reset() })
}

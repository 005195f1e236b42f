package node

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	gproto "google.golang.org/protobuf/proto"
)

// go-libp2p v0.51's relay applies one limit to every circuit. kith gives
// allowed peers the operator's limits and everyone else go-libp2p's default
// (2 min, 128 KiB: enough to coordinate hole punching) by running two relay
// instances on one host and routing each hop request to one of them:
// RESERVE by who reserves, CONNECT by its destination (whose reservation
// lives in that instance). A CONNECT to an allowed peer gets the operator's
// limits; every circuit to a stranger gets the default ones.

// maxHopMessage is go-libp2p's own cap on a hop message.
const maxHopMessage = 4096

// splitRelay is the two relay instances and the hop handler that routes
// between them.
type splitRelay struct {
	h                     host.Host
	allowed               func(peer.ID) bool
	colleagues, strangers *relayv2.Relay
	colleagueHop          network.StreamHandler
	strangerHop           network.StreamHandler
	wrap                  func(host.Host, network.Stream) network.Stream // tests: see options.hopWrap
}

// newSplitRelay starts both instances and serves the hop protocol.
func newSplitRelay(h host.Host, allowed func(peer.ID) bool, colleagues, strangers []relayv2.Option,
	wrap func(host.Host, network.Stream) network.Stream) (*splitRelay, error) {
	s := &splitRelay{h: h, allowed: allowed, wrap: wrap}
	ch, sh := &handlerCapture{Host: h}, &handlerCapture{Host: h}
	var err error
	if s.colleagues, err = relayv2.New(ch, colleagues...); err != nil {
		return nil, err
	}
	if s.strangers, err = relayv2.New(sh, strangers...); err != nil {
		s.colleagues.Close()
		return nil, err
	}
	s.colleagueHop, s.strangerHop = ch.hop, sh.hop
	if s.colleagueHop == nil || s.strangerHop == nil {
		s.Close()
		return nil, errors.New("node: relay service registered no hop handler")
	}
	h.SetStreamHandler(proto.ProtoIDv2Hop, s.handleHop)
	return s, nil
}

// Close stops serving and closes both instances.
func (s *splitRelay) Close() error {
	s.h.RemoveStreamHandler(proto.ProtoIDv2Hop)
	return errors.Join(s.colleagues.Close(), s.strangers.Close())
}

// handleHop reads the request's first message, then hands the stream, with
// that message replayed, to the instance the request belongs to.
func (s *splitRelay) handleHop(st network.Stream) {
	st.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReaderSize(st, maxHopMessage+binary.MaxVarintLen64)
	raw, msg, err := peekHop(br)
	if err != nil {
		st.Reset()
		return
	}
	target := st.Conn().RemotePeer() // RESERVE: the one reserving
	if msg.GetType() == pbv2.HopMessage_CONNECT {
		if id, err := peer.IDFromBytes(msg.GetPeer().GetId()); err == nil {
			target = id
		}
	}
	var replay network.Stream = &replayStream{Stream: st, r: io.MultiReader(bytes.NewReader(raw), br)}
	if s.wrap != nil && msg.GetType() == pbv2.HopMessage_RESERVE {
		replay = s.wrap(s.h, replay)
	}
	if s.allowed(target) {
		s.colleagueHop(replay)
	} else {
		s.strangerHop(replay)
	}
}

// peekHop reads one length-prefixed HopMessage and returns its raw bytes.
func peekHop(br *bufio.Reader) ([]byte, *pbv2.HopMessage, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, nil, err
	}
	if n > maxHopMessage {
		return nil, nil, fmt.Errorf("node: hop message of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, nil, err
	}
	var msg pbv2.HopMessage
	if err := gproto.Unmarshal(body, &msg); err != nil {
		return nil, nil, err
	}
	return append(binary.AppendUvarint(nil, n), body...), &msg, nil
}

// handlerCapture is the host a relay instance is given: everything is the
// real host's, except that the hop handler the instance registers is kept
// for splitRelay to call instead of being registered.
type handlerCapture struct {
	host.Host
	hop network.StreamHandler
}

func (c *handlerCapture) SetStreamHandler(pid protocol.ID, h network.StreamHandler) {
	if pid == proto.ProtoIDv2Hop {
		c.hop = h
		return
	}
	c.Host.SetStreamHandler(pid, h)
}

func (c *handlerCapture) RemoveStreamHandler(pid protocol.ID) {
	if pid != proto.ProtoIDv2Hop {
		c.Host.RemoveStreamHandler(pid)
	}
}

// replayStream is a stream whose reads first return bytes already read.
type replayStream struct {
	network.Stream
	r io.Reader
}

func (s *replayStream) Read(p []byte) (int, error) { return s.r.Read(p) }

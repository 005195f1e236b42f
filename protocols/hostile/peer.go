package hostile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Attacker opens streams from a libp2p host and writes what a test asks.
type Attacker struct {
	h host.Host
}

// New returns an attacker that uses h, a host the test owns and closes.
func New(h host.Host) *Attacker { return &Attacker{h: h} }

// Host is the attacker's host: its ID is the peer its victims see.
func (a *Attacker) Host() host.Host { return a.h }

// Open connects to p (whose addresses the attacker's peerstore must hold,
// or whom it must be connected to already), opens a stream and negotiates
// id eagerly. An ID p does not speak fails with an error matching
// multistream.ErrNotSupported[protocol.ID]; p may also reset the stream
// when its resource manager refuses it.
func (a *Attacker) Open(ctx context.Context, p peer.ID, id protocol.ID) (*Stream, error) {
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return nil, fmt.Errorf("hostile: connect to %s: %w", p, err)
	}
	st, err := a.h.Network().NewStream(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("hostile: open a stream to %s: %w", p, err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if err := msmux.SelectProtoOrFail(id, st); err != nil {
		st.Reset()
		return nil, fmt.Errorf("hostile: negotiate %s with %s: %w", id, p, err)
	}
	st.SetDeadline(time.Time{})
	if err := st.SetProtocol(id); err != nil {
		st.Reset()
		return nil, fmt.Errorf("hostile: stream protocol %s: %w", id, err)
	}
	return &Stream{Stream: st}, nil
}

// Replay opens a new stream to p on id and writes frame, captured earlier,
// as it is; it then closes its write side, as a sender with nothing more
// to send does.
func (a *Attacker) Replay(ctx context.Context, p peer.ID, id protocol.ID, frame []byte) (*Stream, error) {
	st, err := a.Open(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if err := st.Send(frame); err != nil {
		st.Reset()
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("hostile: close write side: %w", err)
	}
	return st, nil
}

// Stream is a negotiated stream on which the attacker writes raw bytes.
type Stream struct {
	network.Stream
}

// Send writes b as it is, in one Write.
func (s *Stream) Send(b []byte) error {
	if _, err := s.Write(b); err != nil {
		return fmt.Errorf("hostile: write %d bytes: %w", len(b), err)
	}
	return nil
}

// Answer is what the peer did after the attacker wrote.
type Answer struct {
	// Error is the Error frame the peer answered with, if it did.
	Error *protocols.RemoteError
	// Frame says that the peer answered with a frame other than an Error
	// (an Ack, an OfferAck, a Serving, a batch, an end).
	Frame bool
	// Err is why no frame was read: io.EOF when the peer closed the
	// stream cleanly, a reset (Reset), or a deadline (TimedOut).
	Err error
	// Elapsed is how long the answer took.
	Elapsed time.Duration
}

// Reset says that the peer reset the stream rather than answer.
func (a Answer) Reset() bool { return errors.Is(a.Err, network.ErrReset) }

// TimedOut says that the peer said nothing within the bound.
func (a Answer) TimedOut() bool { return errors.Is(a.Err, errTimedOut) }

var errTimedOut = errors.New("hostile: no answer within the bound")

// Answer reads one frame of the peer's answer with spec's real reader,
// waiting at most within.
func (s *Stream) Answer(spec Spec, within time.Duration) Answer {
	start := time.Now()
	s.SetReadDeadline(start.Add(within))
	defer s.SetReadDeadline(time.Time{})
	e, err := spec.ReadAnswer(s)
	a := Answer{Error: e, Frame: err == nil && e == nil, Elapsed: time.Since(start)}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		a.Err = io.EOF
	case isTimeout(err):
		a.Err = errTimedOut
	case errors.Is(err, network.ErrReset):
		a.Err = network.ErrReset
	default:
		a.Err = err
	}
	return a
}

// Drip is slowloris: it writes b one byte every interval, and stops when
// b is written, ctx ends, or the peer gives up on the stream (closes or
// resets it, seen by a read or a failed write). It returns how many bytes
// it wrote and when it stopped.
func (s *Stream) Drip(ctx context.Context, b []byte, interval time.Duration) (int, time.Duration) {
	start := time.Now()
	gone := s.watchPeer()
	t := time.NewTicker(interval)
	defer t.Stop()
	n := 0
	for ; n < len(b); n++ {
		select {
		case <-ctx.Done():
			return n, time.Since(start)
		case <-gone:
			return n, time.Since(start)
		case <-t.C:
		}
		if _, err := s.Write(b[n : n+1]); err != nil {
			return n, time.Since(start)
		}
	}
	return n, time.Since(start)
}

// Silent sends nothing and waits until the peer gives up on the stream or
// ctx ends. It says how long it waited and whether the peer gave up.
func (s *Stream) Silent(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-s.watchPeer():
		return time.Since(start), true
	case <-ctx.Done():
		return time.Since(start), false
	}
}

// watchPeer reads (and drops) what the peer sends, and closes the returned
// channel when it ends the stream: closes it, resets it, or sends an Error
// after which it closes.
func (s *Stream) watchPeer() <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		io.Copy(io.Discard, s)
	}()
	return gone
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

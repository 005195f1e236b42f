package chat

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// handle serves one incoming /kith/dm stream: it answers each message with
// an ack once stored, or with a coded error after which it closes.
func (s *DMService) handle(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	if err := st.Scope().SetService(DMServiceName); err != nil {
		s.log.Debug("dm stream refused by resource manager", "err", err)
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(2*protocols.MaxDMFrame, network.ReservationPriorityAlways); err != nil {
		s.log.Debug("dm stream: no memory", "err", err)
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(2 * protocols.MaxDMFrame)
	stop := closeOn(s, st)
	defer stop()
	p := st.Conn().RemotePeer()
	w := protocols.NewDMWriter(st)
	if !s.admit(st, w, p) {
		return
	}
	s.serve(st, p, w)
}

// serve reads messages until the sender closes or something is wrong. The
// policy, applied when the stream opened, is applied again to every later
// message: a sender may keep a stream open for a long time, and a peer
// blocked meanwhile must be refused at once.
func (s *DMService) serve(st network.Stream, p peer.ID, w *protocols.DMWriter) {
	r := protocols.NewDMReader(st)
	st.SetDeadline(time.Now().Add(s.cfg.FirstFrameTimeout))
	for first := true; ; first = false {
		f, err := r.Read()
		if errors.Is(err, io.EOF) || timedOut(err) {
			// Done, or silent past the deadline: with no message
			// unanswered there is nothing to refuse. An Error here could
			// cross a Message the sender has just written (on a stream it
			// kept) and be read as that message's refusal.
			st.Close()
			return
		}
		if err != nil {
			s.log.Debug("dm stream ended", "peer", p, "err", err)
			s.fail(st, w, protocols.ErrorCodeFor(err), err.Error())
			return
		}
		if f.Message == nil {
			s.fail(st, w, protocols.CodeUnexpected, "expected a message")
			return
		}
		if !first && !s.admit(st, w, p) {
			return
		}
		if !s.receive(st, p, w, f.Message) {
			return
		}
		st.SetDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
}

// receive stores one message, then acks it.
func (s *DMService) receive(st network.Stream, p peer.ID, w *protocols.DMWriter, dm *protocols.DMMessage) bool {
	if err := CheckText(dm.Text); err != nil {
		s.fail(st, w, protocols.CodeMalformed, err.Error())
		return false
	}
	m := Message{ID: dm.ID, Peer: p, Text: dm.Text, SentAt: dm.SentAt.UTC(), State: StateReceived}
	added, err := s.store.AddIncoming(s.ctx, m)
	if err != nil {
		s.log.Error("store incoming message", "peer", p, "err", err)
		s.fail(st, w, protocols.CodeInternal, "could not store the message")
		return false
	}
	// Shown before it is acked: once its sender says "delivered", the
	// message is on the receiver's event stream too.
	if added {
		s.log.Debug("message received", "peer", p, "id", m.ID)
		s.notify(m)
	}
	if err := w.Write(protocols.DMFrame{Ack: &protocols.DMAck{ID: dm.ID}}); err != nil {
		st.Reset()
		return false
	}
	return true
}

// admit applies the caller's policy to p, and refuses the stream's next
// message when p may not send.
func (s *DMService) admit(st network.Stream, w *protocols.DMWriter, p peer.ID) bool {
	code, err := s.authorize(p)
	if err == nil {
		return true
	}
	s.log.Debug("dm refused", "peer", p, "err", err)
	s.fail(st, w, code, err.Error())
	return false
}

// authorize applies the caller's policy to a sender.
func (s *DMService) authorize(p peer.ID) (protocols.ErrorCode, error) {
	if s.cfg.Authorize == nil {
		return 0, nil
	}
	err := s.cfg.Authorize(p)
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, ErrBlocked):
		return protocols.CodeBlocked, err
	default:
		return protocols.CodeNotAllowed, err
	}
}

// fail sends a coded error and closes the stream.
func (s *DMService) fail(st network.Stream, w *protocols.DMWriter, code protocols.ErrorCode, msg string) {
	st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := w.Write(protocols.DMFrame{Error: &protocols.RemoteError{Code: code, Message: protocols.ErrorHint(msg)}}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// timedOut says whether err is a deadline's.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeOn resets st when the service closes; the returned func undoes it.
func closeOn(s *DMService, st network.Stream) func() bool {
	return context.AfterFunc(s.ctx, func() { st.Reset() })
}

package files

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Limits adds the resource-manager limits of the files service: a peer may
// hold a few transfer streams at once, so a peer that opens streams and
// stalls holds no more than that, and only until the stream deadline.
func Limits(l *rcmgr.ScalingLimitConfig) {
	l.AddServiceLimit(ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 128, StreamsOutbound: 128, Streams: 256, Memory: 256 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 128 << 20})
	l.AddServicePeerLimit(ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{})
}

// stream is a files stream with its frame reader and writer.
type stream struct {
	network.Stream
	r *protocols.FilesReader
	w *protocols.FilesWriter
}

func newStream(st network.Stream) *stream {
	return &stream{Stream: st, r: protocols.NewFilesReader(st), w: protocols.NewFilesWriter(st)}
}

// openStream opens a files stream to p, in the service's resource scope.
func (s *Service) openStream(ctx context.Context, p peer.ID) (*stream, error) {
	st, err := s.h.NewStream(ctx, p, protocols.FilesProtocol)
	if err != nil {
		return nil, fmt.Errorf("files: open stream to %s: %w", p, err)
	}
	if err := st.Scope().SetService(ServiceName); err != nil {
		st.Reset()
		return nil, fmt.Errorf("files: stream to %s: %w", p, err)
	}
	return newStream(st), nil
}

// fail sends a coded error and closes the stream.
func (st *stream) fail(code protocols.ErrorCode, msg string) {
	st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := st.w.Write(protocols.FilesFrame{Error: &protocols.RemoteError{Code: code, Message: protocols.ErrorHint(msg)}}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// handle serves one incoming stream: an offer, a fetch or a rejection.
func (s *Service) handle(ns network.Stream) {
	if !s.enter() {
		ns.Reset()
		return
	}
	defer s.wg.Done()
	if err := ns.Scope().SetService(ServiceName); err != nil {
		s.log.Debug("files stream refused by resource manager", "err", err)
		ns.Reset()
		return
	}
	stop := context.AfterFunc(s.ctx, func() { ns.Reset() })
	defer stop()
	st, p := newStream(ns), ns.Conn().RemotePeer()
	// Only a peer allowed to offer may send a frame as large as a manifest.
	limit := protocols.MaxFilesControlFrame
	code, authErr := s.authorize(p)
	if authErr == nil {
		limit = protocols.MaxFilesFrame
	}
	st.SetReadDeadline(time.Now().Add(s.cfg.FrameTimeout))
	f, err := st.r.Read(limit)
	switch {
	case authErr != nil && errors.Is(err, protocols.ErrFrameTooLarge):
		st.fail(code, authErr.Error())
	case err != nil:
		s.log.Debug("files stream: first frame", "peer", p, "err", err)
		if !timedOut(err) {
			st.fail(protocols.ErrorCodeFor(err), err.Error())
		} else {
			st.Reset()
		}
	case f.Offer != nil:
		s.handleOffer(st, p, f.Offer)
	case f.Fetch != nil:
		s.serveFetch(st, p, f.Fetch)
	case f.Reject != nil:
		s.handleReject(st, p, f.Reject)
	default:
		st.fail(protocols.CodeUnexpected, "expected an offer, a fetch or a rejection")
	}
}

// authorize applies the caller's policy to a peer offering files.
func (s *Service) authorize(p peer.ID) (protocols.ErrorCode, error) {
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

// timedOut says whether err is a deadline's.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

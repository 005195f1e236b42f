package files

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// serveFetch serves one fetch of an outgoing transfer: the manifest if
// asked, then the chunks the receiver requests, until it reports the
// verified root (done) or the stream ends (the receiver will resume).
func (s *Service) serveFetch(st *stream, p peer.ID, f *protocols.FileFetch) {
	t, code, err := s.findServed(p, f)
	if err != nil {
		s.log.Debug("fetch refused", "peer", p, "err", err)
		st.fail(code, err.Error())
		return
	}
	src, err := s.source(t)
	if err != nil {
		s.log.Warn("cannot serve transfer", "id", t.ID, "err", err)
		st.fail(protocols.CodeSourceChanged, "the files changed since they were offered")
		return
	}
	if err := st.Scope().ReserveMemory(protocols.ChunkSize, network.ReservationPriorityAlways); err != nil {
		st.fail(protocols.CodeRateLimited, "too busy")
		return
	}
	defer st.Scope().ReleaseMemory(protocols.ChunkSize)
	ans := protocols.FileServing{}
	if f.WantManifest {
		ans.Manifest = t.Manifest
	}
	st.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
	if err := st.w.Write(protocols.FilesFrame{Serving: &ans}); err != nil {
		st.Reset()
		return
	}
	t = s.startServing(t, p, st)
	s.log.Debug("serving transfer", "id", t.ID, "peer", p, "path", t.Path)
	err = s.serveRequests(st, t, src)
	switch {
	case err == nil:
		st.Close()
	case errors.Is(err, io.EOF):
		st.Close()
		s.log.Debug("receiver closed the transfer stream", "id", t.ID)
	default:
		s.log.Debug("serving ended", "id", t.ID, "peer", p, "err", err)
		st.Reset()
	}
}

// findServed finds the outgoing transfer a fetch asks for: one offered to
// p, or a ticket transfer whose secret the fetch presents. Everything that
// does not match, a wrong secret included, is the same UNKNOWN_TRANSFER.
func (s *Service) findServed(p peer.ID, f *protocols.FileFetch) (Transfer, protocols.ErrorCode, error) {
	unknown := errors.New("no such transfer")
	ctx := s.ctx
	if f.TransferID != (TransferID{}) {
		t, err := s.store.Transfer(ctx, f.TransferID)
		if err != nil || t.Direction != Out || t.Ticket || t.Peer != p || t.ContentID != f.ContentID {
			return Transfer{}, protocols.CodeUnknownTransfer, unknown
		}
		return s.servable(t)
	}
	s.mu.Lock()
	ids := append([]TransferID(nil), s.shares[f.ContentID]...)
	s.mu.Unlock()
	for _, id := range ids {
		t, err := s.store.Transfer(ctx, id)
		if err == nil && subtle.ConstantTimeCompare(t.Secret, f.Secret) == 1 {
			return s.servable(t)
		}
	}
	return Transfer{}, protocols.CodeUnknownTransfer, unknown
}

// servable says whether t may be fetched: a cancelled or failed transfer is
// not; a done one only takes a completion again (its receiver may have
// missed our answer).
func (s *Service) servable(t Transfer) (Transfer, protocols.ErrorCode, error) {
	switch t.State {
	case StateFailed:
		return Transfer{}, protocols.CodeCancelled, errors.New("the sender cancelled the transfer")
	case StateRejected:
		return Transfer{}, protocols.CodeUnknownTransfer, errors.New("no such transfer")
	}
	t.Manifest = t.Manifest[:len(t.Manifest):len(t.Manifest)]
	return t, 0, nil
}

// source returns t's source, opened once per transfer.
func (s *Service) source(t Transfer) (*Source, error) {
	s.mu.Lock()
	src := s.sources[t.ID]
	s.mu.Unlock()
	if src != nil {
		return src, nil
	}
	src, err := OpenSource(t.Manifest, t.Sources)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sources[t.ID] = src
	s.mu.Unlock()
	return src, nil
}

// startServing records that p fetches t, and on which path.
func (s *Service) startServing(t Transfer, p peer.ID, st *stream) Transfer {
	path, relay := connPath(st.Conn())
	u := Update{Path: &path, Relay: &relay}
	if t.State == StateOffered {
		active, empty := StateActive, ""
		u.State, u.Error = &active, &empty
	}
	if t.Ticket && t.Peer != p {
		u.Peer = &p
	}
	if nt, err := s.update(t.ID, u, EventState); err == nil {
		return nt
	}
	return t
}

// serveRequests answers requests with chunks until a completion.
func (s *Service) serveRequests(st *stream, t Transfer, src *Source) error {
	m := src.Manifest
	rd := src.NewReader()
	defer rd.Close()
	buf := make([]byte, protocols.ChunkSize)
	meter := s.meter(t.ID)
	cw, stop := s.pace(st)
	defer stop()
	for {
		st.SetReadDeadline(time.Now().Add(s.cfg.FrameTimeout))
		f, err := st.r.Read(protocols.MaxFilesControlFrame)
		if err != nil {
			return err
		}
		switch {
		case f.Complete != nil:
			return s.completed(st, t, m, f.Complete)
		case f.Request == nil:
			st.fail(protocols.CodeUnexpected, "expected a request or a completion")
			return nil
		case t.State == StateDone:
			st.fail(protocols.CodeUnknownTransfer, "the transfer is complete")
			return nil
		}
		if err := checkRequest(m, f.Request); err != nil {
			st.fail(protocols.CodeMalformed, err.Error())
			return nil
		}
		if err := s.sendChunks(st, cw, rd, f.Request, buf, t, meter); err != nil {
			return err
		}
	}
}

// sendChunks answers one request, writing the chunks through cw.
func (s *Service) sendChunks(st *stream, cw *protocols.FilesWriter, rd *SourceReader, r *protocols.ChunkRequest, buf []byte, t Transfer, meter *rateMeter) error {
	for i := range uint64(r.Count) {
		idx := r.First + i
		data, err := rd.ReadChunk(int(r.Entry), idx, buf)
		if err != nil {
			s.log.Warn("read source", "id", t.ID, "err", err)
			st.fail(protocols.CodeSourceChanged, "the files changed since they were offered")
			return nil
		}
		st.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
		h := protocols.ChunkHeader{Entry: r.Entry, Index: idx, Size: uint32(len(data))}
		if err := cw.WriteChunk(h, data); err != nil {
			return err
		}
		s.sent.Add(int64(len(data)))
		if n, rate, ok := meter.add(int64(len(data))); ok {
			t.DoneBytes = min(n, t.Bytes)
			s.emit(EventProgress, t, rate)
		}
	}
	return nil
}

// pace returns the writer st's chunks go through, paced by the window of
// st's connection (see yield.go), which it starts measuring unless a
// transfer on that connection already did, and a function that releases
// it.
func (s *Service) pace(st *stream) (*protocols.FilesWriter, func()) {
	if s.cfg.YieldDelay < 0 {
		return st.w, func() {}
	}
	conn := st.Conn()
	s.mu.Lock()
	y := s.yields[conn]
	if y == nil {
		y = s.startYield(conn)
		s.yields[conn] = y
	}
	y.users++
	s.mu.Unlock()
	return protocols.NewFilesWriter(&pacedWriter{ctx: y.ctx, w: st, win: y.win}), func() {
		s.mu.Lock()
		y.users--
		last := y.users == 0
		if last {
			delete(s.yields, conn)
		}
		s.mu.Unlock()
		if last {
			y.stop()
		}
	}
}

// connYield is the window of a connection and what measures it.
type connYield struct {
	win   *window
	ctx   context.Context
	stop  func()
	users int // transfers being served on the connection (guarded by Service.mu)
}

// startYield starts measuring conn.
func (s *Service) startYield(conn network.Conn) *connYield {
	ctx, cancel := context.WithCancel(s.ctx)
	win := newWindow(s.cfg.YieldDelay)
	done := make(chan struct{})
	go func() {
		defer close(done)
		open := func(ctx context.Context) (pinger, error) { return openPinger(ctx, conn) }
		if err := win.measure(ctx, open, yieldPingGap); err != nil {
			s.log.Debug("transfers not paced: their connection cannot be measured", "peer", conn.RemotePeer(), "err", err)
		}
	}()
	return &connYield{win: win, ctx: ctx, stop: func() { cancel(); <-done }}
}

// checkRequest says what is wrong with a request, if anything.
func checkRequest(m *protocols.Manifest, r *protocols.ChunkRequest) error {
	if int(r.Entry) >= len(m.Entries) {
		return errors.New("request for an entry the manifest does not have")
	}
	e := &m.Entries[r.Entry]
	n := uint64(protocols.ChunkCount(e.Size))
	if e.Dir || r.First >= n || uint64(r.Count) > n-r.First {
		return errors.New("request for chunks the entry does not have")
	}
	return nil
}

// completed checks the receiver's root and, when it matches, records the
// transfer done and says so.
func (s *Service) completed(st *stream, t Transfer, m *protocols.Manifest, c *protocols.FileComplete) error {
	if c.Root != m.Root() {
		s.log.Warn("receiver reported a wrong root", "id", t.ID, "peer", t.Peer)
		st.fail(protocols.CodeRootMismatch, "the root does not match the manifest's")
		return nil
	}
	if t.State != StateDone {
		s.finishServed(t)
	}
	st.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
	if err := st.w.Write(protocols.FilesFrame{Done: &protocols.FileDone{}}); err != nil {
		return err
	}
	return nil
}

// finishServed records that a receiver verified t. A ticket kept serving
// stays active for the next receiver.
func (s *Service) finishServed(t Transfer) {
	s.mu.Lock()
	keep := s.keep[t.ID]
	if !keep {
		s.dropShare(t)
	}
	s.mu.Unlock()
	done, empty, all := StateDone, "", t.Bytes
	u := Update{DoneBytes: &all, Error: &empty}
	if !keep {
		u.State = &done
	}
	if _, err := s.update(t.ID, u, EventState); err != nil {
		s.log.Error("store completion", "id", t.ID, "err", err)
		return
	}
	s.log.Info("transfer received and verified by the peer", "id", t.ID, "peer", t.Peer)
	s.forgetMeter(t.ID)
}

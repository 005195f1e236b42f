package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/sync/errgroup"
)

// maxChunkFailures is how often one chunk may fail verification before the
// transfer fails.
const maxChunkFailures = 3

// download fetches the chunks of t that are not verified yet, verifying and
// writing each, and journals them. It returns the fetch stream, still open,
// for the completion.
func (s *Service) download(ctx context.Context, t Transfer, lay *layout, verified bitmap, sink *Sink, need int64) (*stream, error) {
	limited, err := s.waitBulkConn(ctx, t.Peer, need)
	if err != nil {
		return nil, err
	}
	st, err := s.openFetch(ctx, t, limited)
	if err != nil {
		return nil, err
	}
	path, relay := connPath(st.Conn())
	active, empty := StateActive, ""
	if t, err = s.update(t.ID, Update{State: &active, Path: &path, Relay: &relay, Error: &empty}, EventState); err != nil {
		st.Reset()
		return nil, err
	}
	s.log.Debug("fetching chunks", "id", t.ID, "peer", t.Peer, "path", path, "missing", need)
	p := newPump(s, st, t, lay, verified, sink)
	if err := p.run(ctx); err != nil {
		st.Reset()
		return nil, err
	}
	return st, nil
}

// pump moves one fetch's chunks: a requester keeps at most slots chunks
// requested and not yet verified, a reader checks each chunk's frame
// against what was requested, and a writer verifies, writes and journals.
type pump struct {
	s        *Service
	st       *stream
	t        Transfer
	lay      *layout
	verified bitmap // owned by the writer
	sink     *Sink
	slots    int

	credits chan struct{} // one per chunk requested and not yet settled
	expect  chan chunkRef // requested, in order
	filled  chan filled   // read, to verify
	retry   chan chunkRef // failed verification, to request again
	bufs    chan []byte
	done    chan struct{} // closed when every chunk is verified

	wmu sync.Mutex // the requester writes requests; the others may write an Error

	failOnce sync.Once
	failed   error // the first of the three to fail: the cause, not the reset it made
}

// send writes one frame, whichever goroutine asks.
func (p *pump) send(f protocols.FilesFrame, timeout time.Duration) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.st.SetWriteDeadline(time.Now().Add(timeout))
	return p.st.w.Write(f)
}

// refuse tells the sender why the receiver ends the stream, if it can; the
// stream is reset after it either way.
func (p *pump) refuse(code protocols.ErrorCode, msg string) {
	p.send(protocols.FilesFrame{Error: &protocols.RemoteError{Code: code, Message: protocols.ErrorHint(msg)}}, time.Second)
}

type filled struct {
	ref chunkRef
	buf []byte
}

func newPump(s *Service, st *stream, t Transfer, lay *layout, verified bitmap, sink *Sink) *pump {
	slots := max(s.cfg.Window/protocols.ChunkSize, 2)
	return &pump{
		s: s, st: st, t: t, lay: lay, verified: verified, sink: sink, slots: slots,
		credits: make(chan struct{}, slots), expect: make(chan chunkRef, slots),
		filled: make(chan filled, slots), retry: make(chan chunkRef, slots),
		bufs: make(chan []byte, slots), done: make(chan struct{}),
	}
}

func (p *pump) run(ctx context.Context) error {
	// The stream is reset when the fetch is stopped or one of the three
	// fails (so that the others' reads and writes return); not when all
	// succeed, as the completion still goes over it.
	stop := context.AfterFunc(ctx, func() { p.st.Reset() })
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	cur := p.lay.missing(append(bitmap(nil), p.verified...))
	g.Go(func() error { return p.resetOnErr(p.request(gctx, cur)) })
	g.Go(func() error { return p.resetOnErr(p.read(gctx)) })
	g.Go(func() error { return p.resetOnErr(p.write(gctx)) })
	err := g.Wait()
	if p.failed != nil {
		return p.failed
	}
	return err
}

// resetOnErr resets the stream when err is set, once it has recorded err
// as the cause if it is the first: the reset makes the others fail too,
// and one of those could otherwise reach errgroup first (a full disk was
// reported as "stream reset", TestDiskFullPausesThenResumes).
func (p *pump) resetOnErr(err error) error {
	if err != nil {
		p.failOnce.Do(func() { p.failed = err })
		p.st.Reset()
	}
	return err
}

// request writes requests for the missing chunks, and for those that failed
// verification, while credits last.
func (p *pump) request(ctx context.Context, cur *cursor) error {
	for {
		first, ok, err := p.nextChunk(ctx, cur)
		if err != nil || !ok {
			return err
		}
		batch := []chunkRef{first}
		for len(batch) < protocols.MaxRequestChunks {
			r, ok := cur.peek()
			last := batch[len(batch)-1]
			if !ok || r.entry != last.entry || r.index != last.index+1 || !p.takeCredit() {
				break
			}
			cur.next()
			batch = append(batch, r)
		}
		for _, r := range batch {
			p.expect <- r // never blocks: at most slots are outstanding
		}
		req := &protocols.ChunkRequest{Entry: uint32(first.entry), First: first.index, Count: uint32(len(batch))}
		if err := p.send(protocols.FilesFrame{Request: req}, p.s.cfg.FrameTimeout); err != nil {
			return fmt.Errorf("files: write request: %w", err)
		}
	}
}

// nextChunk waits for a credit, then returns a chunk to request again, or
// the next missing one; false when everything is verified.
func (p *pump) nextChunk(ctx context.Context, cur *cursor) (chunkRef, bool, error) {
	select {
	case p.credits <- struct{}{}:
	case <-p.done:
		return chunkRef{}, false, nil
	case <-ctx.Done():
		return chunkRef{}, false, ctx.Err()
	}
	select {
	case r := <-p.retry:
		return r, true, nil
	default:
	}
	if r, ok := cur.next(); ok {
		return r, true, nil
	}
	select { // only retries may be left
	case r := <-p.retry:
		return r, true, nil
	case <-p.done:
		return chunkRef{}, false, nil
	case <-ctx.Done():
		return chunkRef{}, false, ctx.Err()
	}
}

func (p *pump) takeCredit() bool {
	select {
	case p.credits <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *pump) release() { <-p.credits }

// connLost says whether err, from reading st, came from the loss of st's
// connection rather than from the sender: a stream that ended (io.EOF), or
// ended inside a frame (io.ErrUnexpectedEOF), on a connection that is
// closed. When a connection ends without a goodbye (the sender's process
// was killed and its kernel closed the TCP connection), yamux reports its
// streams' reads as "stream reset: connection closed: EOF", or as io.EOF
// itself when a read's window update fails, which the reader takes for a
// stream ended inside a chunk. Either is the network's failure, which a
// retry cures: the transfer pauses, not fails
// (TestSenderConnectionLostPausesThenResumes).
func connLost(st network.Stream, err error) bool {
	return (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && st.Conn().IsClosed()
}

// errCutOff: the sender sent something that was not asked for.
var errCutOff = errors.New("files: the sender sent data that was not requested")

// read reads each requested chunk, in order, and hands it to the writer.
func (p *pump) read(ctx context.Context) error {
	for {
		var want chunkRef
		select {
		case want = <-p.expect:
		case <-p.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		p.st.SetReadDeadline(time.Now().Add(p.s.cfg.FrameTimeout))
		f, err := p.st.r.Read(protocols.MaxFilesControlFrame)
		switch {
		case err != nil && connLost(p.st, err):
			return fmt.Errorf("files: read chunk: the connection to the sender was lost: %w", err)
		case errors.Is(err, io.EOF):
			return permanent{errors.New("files: the sender ended the stream before sending every requested chunk")}
		case errors.Is(err, protocols.ErrMalformed) || errors.Is(err, protocols.ErrFrameTooLarge):
			return permanent{fmt.Errorf("files: the sender broke the protocol: %w", err)}
		case err != nil:
			return fmt.Errorf("files: read chunk: %w", err)
		case f.Error != nil:
			return f.Error
		case f.Chunk == nil:
			p.refuse(protocols.CodeUnexpected, "expected a chunk")
			return permanent{fmt.Errorf("%w (a frame that is not a chunk)", errCutOff)}
		case int(f.Chunk.Entry) != want.entry || f.Chunk.Index != want.index || int(f.Chunk.Size) != want.size:
			return permanent{fmt.Errorf("%w (expected chunk %d of entry %d)", errCutOff, want.index, want.entry)}
		}
		buf := p.buffer()[:want.size]
		if err := p.st.r.ReadChunkData(buf); err != nil {
			if connLost(p.st, err) {
				return fmt.Errorf("files: read chunk: the connection to the sender was lost: %w", err)
			}
			if errors.Is(err, protocols.ErrMalformed) {
				return permanent{fmt.Errorf("files: the sender broke off a chunk: %w", err)}
			}
			return fmt.Errorf("files: read chunk: %w", err)
		}
		p.filled <- filled{want, buf} // never blocks: at most slots are outstanding
	}
}

// buffer returns a free chunk buffer; there are never more than slots.
func (p *pump) buffer() []byte {
	select {
	case b := <-p.bufs:
		return b[:cap(b)]
	default:
		return make([]byte, protocols.ChunkSize)
	}
}

func (p *pump) recycle(b []byte) {
	select {
	case p.bufs <- b:
	default:
	}
}

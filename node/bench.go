package node

// The raw copy path, for benchmarks only.
//
// BenchmarkFileTransfer (cmd/kith) compares a kith file transfer with the
// fastest plain copy of the same file between the same two hosts in the same
// run: one libp2p stream, file to file, 1 MiB reads and writes, one fsync at
// the end. This file is that copy. It exists only in a node built with
// WithBench, which `kith daemon` passes only when its environment has
// KITH_BENCH=1; otherwise no handler is registered and the API serves no
// /v1/bench route. It is not a kith protocol (it is never on in normal use),
// so its few bytes of framing live here rather than in package protocols.
//
// /kith/bench/sink/1.0.0: the opener writes the byte count n (8 bytes, big
// endian), then exactly n bytes, then closes its side. The handler, which
// admits contacts only (saved under a name, not blocked), writes them into a
// new file under $KITH_HOME/bench through an os.Root, fsyncs it, deletes it
// and answers with the count it synced (8 bytes, big endian). Anything else
// resets the stream.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BenchSinkProtocol is the benchmark-only raw copy protocol.
const BenchSinkProtocol = protocol.ID("/kith/bench/sink/1.0.0")

const (
	benchServiceName = "kith.bench"
	benchBufSize     = 1 << 20          // every read and write of the copy
	benchMaxBytes    = 1 << 40          // the largest copy a sink accepts
	benchTimeout     = 30 * time.Second // each 1 MiB block, and the answer
)

// ErrBenchDisabled is returned by the benchmark methods of a node built
// without WithBench.
var ErrBenchDisabled = errors.New("node: benchmark support is off (KITH_BENCH=1 turns it on)")

// WithBench turns on the benchmark-only raw copy path: the
// /kith/bench/sink/1.0.0 handler and BenchCopy. Never use it outside
// benchmarks: it lets contacts make this node write (and delete) files.
func WithBench() Option { return func(o *options) { o.bench = true } }

// BenchEnabled says whether the node was built WithBench.
func (n *Node) BenchEnabled() bool { return n.bench != nil }

// benchSink serves /kith/bench/sink/1.0.0.
type benchSink struct {
	n      *Node
	dir    string // $KITH_HOME/bench
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// startBench registers the sink handler.
func (n *Node) startBench(log *slog.Logger) error {
	dir := filepath.Join(n.cfg.Home, "bench")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("node: bench: %w", err)
	}
	b := &benchSink{n: n, dir: dir, log: log.With("component", "bench")}
	b.ctx, b.cancel = context.WithCancel(n.ctx)
	n.bench = b
	n.host.SetStreamHandler(BenchSinkProtocol, b.handle)
	b.log.Warn("benchmark support is on (KITH_BENCH=1): contacts may copy raw bytes to this node")
	return nil
}

// close removes the handler and waits for the copies in progress (their
// streams are reset). It is safe to call twice.
func (b *benchSink) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	b.n.host.RemoveStreamHandler(BenchSinkProtocol)
	b.cancel()
	b.wg.Wait()
}

func (b *benchSink) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

func (b *benchSink) handle(s network.Stream) {
	if !b.enter() {
		s.Reset()
		return
	}
	defer b.wg.Done()
	stop := context.AfterFunc(b.ctx, func() { s.Reset() })
	defer stop()
	p := s.Conn().RemotePeer()
	if err := s.Scope().SetService(benchServiceName); err != nil || !b.allowed(p) {
		s.Reset()
		return
	}
	n, err := b.receive(s)
	if err != nil {
		b.log.Debug("raw copy failed", "peer", p, "err", err)
		s.Reset()
		return
	}
	var ans [8]byte
	binary.BigEndian.PutUint64(ans[:], uint64(n))
	s.SetWriteDeadline(time.Now().Add(benchTimeout))
	if _, err := s.Write(ans[:]); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// allowed admits contacts: saved under a name and not blocked.
func (b *benchSink) allowed(p peer.ID) bool {
	c, err := b.n.store.ContactByPeer(b.ctx, p)
	return err == nil && c.Name != "" && !c.Blocked
}

// receive writes the copy into a new file, fsyncs and deletes it, and
// returns how many bytes it synced.
func (b *benchSink) receive(s network.Stream) (int64, error) {
	var hdr [8]byte
	s.SetReadDeadline(time.Now().Add(benchTimeout))
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return 0, fmt.Errorf("read size: %w", err)
	}
	size := binary.BigEndian.Uint64(hdr[:])
	if size > benchMaxBytes {
		return 0, fmt.Errorf("%d bytes is more than the %d a copy may have", size, int64(benchMaxBytes))
	}
	if err := files.CheckSpace(b.dir, int64(size)); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(b.dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	name := "sink-" + rand.Text()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer root.Remove(name)
	defer f.Close()
	n, err := copyBlocks(f, s, int64(size), func() { s.SetReadDeadline(time.Now().Add(benchTimeout)) })
	if err != nil {
		return n, err
	}
	if _, err := s.Read(hdr[:1]); !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("the sender sent more than the %d bytes it announced", size)
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// copyBlocks copies n bytes from r to w a full 1 MiB block at a time (the
// last may be shorter): each block is read completely before it is written
// in one call, as the files service reads and writes its chunks. It calls
// each before every block (to set a deadline).
func copyBlocks(w io.Writer, r io.Reader, n int64, each func()) (int64, error) {
	buf := make([]byte, benchBufSize)
	var done int64
	for done < n {
		each()
		k := int(min(int64(len(buf)), n-done))
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			return done, fmt.Errorf("read: %w", err)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return done, fmt.Errorf("write: %w", err)
		}
		done += int64(k)
	}
	return done, nil
}

// BenchCopyResult is what BenchCopy measured.
type BenchCopyResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"` // from opening the stream to the receiver's answer
	Conn    string  `json:"conn"`    // the remote address of the connection used
}

// BenchCopy copies the file at path (absolute) to target's benchmark sink
// over one plain libp2p stream, on whatever connection there is (TCP or
// QUIC), and returns once target has synced it. Benchmarks only: it needs
// WithBench on both nodes, and target must have this node as a contact.
func (n *Node) BenchCopy(ctx context.Context, target, path string) (BenchCopyResult, error) {
	if n.bench == nil {
		return BenchCopyResult{}, ErrBenchDisabled
	}
	if !filepath.IsAbs(path) {
		return BenchCopyResult{}, fmt.Errorf("%w: %q is not absolute", ErrBadPath, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return BenchCopyResult{}, fmt.Errorf("%w: %w", ErrBadPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return BenchCopyResult{}, fmt.Errorf("%w: %s is not a regular file", ErrBadPath, path)
	}
	p, err := n.Resolve(ctx, target)
	if err != nil {
		return BenchCopyResult{}, err
	}
	if err := n.Connect(ctx, p); err != nil {
		return BenchCopyResult{}, err
	}
	start := time.Now()
	s, err := n.host.NewStream(ctx, p, BenchSinkProtocol)
	if err != nil {
		return BenchCopyResult{}, fmt.Errorf("node: bench: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := n.benchSend(s, f, fi.Size()); err != nil {
		s.Reset()
		return BenchCopyResult{}, fmt.Errorf("node: bench: %w", err)
	}
	res := BenchCopyResult{Bytes: fi.Size(), Seconds: time.Since(start).Seconds(), Conn: s.Conn().RemoteMultiaddr().String()}
	s.Close()
	return res, nil
}

// benchSend sends size bytes of f on s and waits for the receiver's count.
func (n *Node) benchSend(s network.Stream, f *os.File, size int64) error {
	if err := s.Scope().SetService(benchServiceName); err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	s.SetWriteDeadline(time.Now().Add(benchTimeout))
	if _, err := s.Write(hdr[:]); err != nil {
		return fmt.Errorf("write size: %w", err)
	}
	if _, err := copyBlocks(s, f, size, func() { s.SetWriteDeadline(time.Now().Add(benchTimeout)) }); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	s.SetReadDeadline(time.Now().Add(benchTimeout))
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return fmt.Errorf("read the receiver's count: %w", err)
	}
	if got := binary.BigEndian.Uint64(hdr[:]); got != uint64(size) {
		return fmt.Errorf("the receiver synced %d bytes of %d", got, size)
	}
	return nil
}

// BenchStats are counters benchmarks read from a running node.
type BenchStats struct {
	// FilesSentBytes counts the chunk bytes the files service has served
	// since the node started, retransmissions included.
	FilesSentBytes int64 `json:"files_sent_bytes"`
}

// BenchStats returns the node's benchmark counters.
func (n *Node) BenchStats() (BenchStats, error) {
	if n.bench == nil {
		return BenchStats{}, ErrBenchDisabled
	}
	return BenchStats{FilesSentBytes: n.files.SentBytes()}, nil
}

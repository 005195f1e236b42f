package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kithnet/kith/protocols"
	"golang.org/x/sync/errgroup"
)

// readerOpenFiles is how many files a SourceReader keeps open.
const readerOpenFiles = 8

// chunkPool holds ChunkSize buffers for hashing.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, protocols.ChunkSize)
	return &b
}}

// SourceReader reads chunks of a Source's files for one serving stream. It
// is not safe for concurrent use.
type SourceReader struct {
	src   *Source
	files fileCache
}

// NewReader returns a reader of s's chunks. Close it when done.
func (s *Source) NewReader() *SourceReader {
	return &SourceReader{src: s, files: fileCache{max: readerOpenFiles}}
}

// ReadChunk reads chunk index of file entry entry into buf, whose length
// must be at least protocols.ChunkSize, and returns buf[:n]. It opens only
// the entry's local path, never through a symbolic link, and checks on every
// read that the file has the manifest's size and (when known) modification
// time: otherwise, or when the read comes up short, the error wraps
// ErrSourceChanged.
func (r *SourceReader) ReadChunk(entry int, index uint64, buf []byte) ([]byte, error) {
	m := r.src.Manifest
	if entry < 0 || entry >= len(m.Entries) || m.Entries[entry].Dir {
		return nil, fmt.Errorf("files: no file entry %d", entry)
	}
	e := &m.Entries[entry]
	if index >= uint64(protocols.ChunkCount(e.Size)) {
		return nil, fmt.Errorf("files: %q has no chunk %d", e.Path, index)
	}
	if len(buf) < protocols.ChunkSize {
		return nil, fmt.Errorf("files: chunk buffer of %d bytes", len(buf))
	}
	local, mtime := r.src.Locals[entry], r.src.mtime(entry)
	f, err := r.file(entry, local, mtime)
	if err != nil {
		return nil, err
	}
	if err := checkSourceFile(f, local, e, mtime); err != nil {
		r.drop(entry)
		return nil, err
	}
	data, err := readChunk(f, local, e, int64(index), buf)
	if err != nil {
		r.drop(entry)
	}
	return data, err
}

// Close closes the reader's files.
func (r *SourceReader) Close() error { return r.files.closeAll() }

func (r *SourceReader) file(entry int, local string, mtime time.Time) (*os.File, error) {
	if cf := r.files.get(entry); cf != nil {
		return cf.f, nil
	}
	f, err := openSourceFile(local, &r.src.Manifest.Entries[entry], mtime)
	if err != nil {
		return nil, err
	}
	if _, old := r.files.add(entry, f); old != nil {
		old.f.Close()
	}
	return f, nil
}

func (r *SourceReader) drop(entry int) {
	if cf := r.files.remove(entry); cf != nil {
		cf.f.Close()
	}
}

// mtime is entry's modification time when it was hashed, or zero.
func (s *Source) mtime(entry int) time.Time {
	if s.mtimes == nil {
		return time.Time{}
	}
	return s.mtimes[entry]
}

// openSourceFile opens the local file of e for reading, never through a
// symbolic link (O_NOFOLLOW) nor waiting on a FIFO (O_NONBLOCK), and checks
// that it still is e's file.
func openSourceFile(local string, e *protocols.Entry, mtime time.Time) (*os.File, error) {
	f, err := os.OpenFile(local, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
			return nil, sourceChanged(local, err)
		}
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := checkSourceFile(f, local, e, mtime); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkSourceFile checks with fstat that f is a regular file of e's size and,
// unless mtime is zero, modified at mtime.
func checkSourceFile(f *os.File, local string, e *protocols.Entry, mtime time.Time) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	switch {
	case !info.Mode().IsRegular():
		return sourceChanged(local, errors.New("no longer a regular file"))
	case info.Size() != e.Size:
		return sourceChanged(local, fmt.Errorf("%d bytes, was %d", info.Size(), e.Size))
	case !mtime.IsZero() && !info.ModTime().Equal(mtime):
		return sourceChanged(local, fmt.Errorf("modified at %s", info.ModTime().Format(time.RFC3339)))
	}
	return nil
}

// readChunk reads chunk index of e from f into buf with one pread.
func readChunk(f *os.File, local string, e *protocols.Entry, index int64, buf []byte) ([]byte, error) {
	off := index * protocols.ChunkSize
	n := min(protocols.ChunkSize, e.Size-off)
	got, err := f.ReadAt(buf[:n], off)
	if int64(got) == n {
		return buf[:n], nil
	}
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("files: read %q: %w", local, err)
	}
	return nil, sourceChanged(local, fmt.Errorf("%d bytes at offset %d, want %d", got, off, n))
}

func sourceChanged(local string, why error) error {
	return fmt.Errorf("files: %q: %w (%v)", local, ErrSourceChanged, why)
}

// hasher hashes the chunks of a manifest's files in parallel.
type hasher struct {
	m      *protocols.Manifest
	locals []string
	mtimes []time.Time
	files  []int   // entries with chunks
	starts []int64 // number of the first chunk of each of files
	count  int64   // chunks in all
	next   atomic.Int64
	prog   progress
}

// hashManifest fills in the chunk hashes of m's files, GOMAXPROCS workers
// each reading chunks with ReadAt, then checks that no file changed while it
// was read.
func hashManifest(ctx context.Context, m *protocols.Manifest, locals []string, mtimes []time.Time, report func(int64, int64)) error {
	h := &hasher{m: m, locals: locals, mtimes: mtimes, prog: progress{f: report, total: m.TotalSize()}}
	for i := range m.Entries {
		e := &m.Entries[i]
		if n := protocols.ChunkCount(e.Size); !e.Dir && n > 0 {
			e.Chunks = make([]protocols.Hash, n)
			h.files = append(h.files, i)
			h.starts = append(h.starts, h.count)
			h.count += n
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for range min(int64(runtime.GOMAXPROCS(0)), max(h.count, 1)) {
		g.Go(func() error { return h.work(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h.prog.finish()
	return h.recheck()
}

// work hashes chunks until none is left.
func (h *hasher) work(ctx context.Context) error {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	var f *os.File
	cur := -1
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := h.next.Add(1) - 1
		if n >= h.count {
			return nil
		}
		k := sort.Search(len(h.starts), func(i int) bool { return h.starts[i] > n }) - 1
		entry, e := h.files[k], &h.m.Entries[h.files[k]]
		if entry != cur {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = openSourceFile(h.locals[entry], e, h.mtimes[entry]); err != nil {
				return err
			}
			cur = entry
		}
		data, err := readChunk(f, h.locals[entry], e, n-h.starts[k], *bp)
		if err != nil {
			return err
		}
		e.Chunks[n-h.starts[k]] = protocols.HashChunk(data)
		h.prog.add(int64(len(data)))
	}
}

// recheck fails if a file's size or mtime changed since the walk.
func (h *hasher) recheck() error {
	for i, e := range h.m.Entries {
		if e.Dir {
			continue
		}
		info, err := os.Lstat(h.locals[i])
		if err != nil {
			return sourceChanged(h.locals[i], err)
		}
		if !info.Mode().IsRegular() || info.Size() != e.Size || !info.ModTime().Equal(h.mtimes[i]) {
			return sourceChanged(h.locals[i], errors.New("changed while it was hashed"))
		}
	}
	return nil
}

// progress reports hashing progress at most every 100 ms.
type progress struct {
	f     func(done, total int64)
	total int64
	done  atomic.Int64
	mu    sync.Mutex // held while calling f
	last  time.Time
	told  int64
}

func (p *progress) add(n int64) {
	done := p.done.Add(n)
	if p.f == nil || !p.mu.TryLock() {
		return
	}
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last, p.told = now, done
		p.f(done, p.total)
	}
}

// finish reports the end, unless that was reported already.
func (p *progress) finish() {
	if p.f == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done := p.done.Load(); p.told != done {
		p.told = done
		p.f(done, p.total)
	}
}

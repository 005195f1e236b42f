package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kithnet/kith/protocols"
)

// Errors of a Sink.
var (
	// ErrDiskFull reports a write that failed for want of space (ENOSPC or
	// EDQUOT); it wraps the OS error too. The partial data is kept: pause,
	// and resume when space is freed.
	ErrDiskFull = errors.New("files: disk full")
	// ErrNoSpace reports that CheckSpace found too little free space.
	ErrNoSpace = errors.New("files: not enough free space")
)

// sinkOpenFiles is how many partial files a Sink keeps open.
const sinkOpenFiles = 8

// Item states.
const (
	itemPending = iota // partial absent, final name holds the item: maybe done
	itemReady          // partial tree created or checked by this Sink
	itemMerging        // overwrite: the partial folder is being merged into the final one
	itemDone           // finalized
)

// sinkItem is one top-level item of a manifest.
type sinkItem struct {
	entry   int    // its manifest entry
	dir     bool   // a folder
	name    string // the final name planned
	final   string // the final name it has or will have
	partial string // name + PartialSuffix
	members []int  // the entries inside a folder, in manifest order
	state   int
}

// Sink writes a received manifest's chunks into a folder, and puts the
// complete items in place. All its I/O goes through an os.Root of the
// folder: it can create or change nothing outside it, whatever the names it
// is given. A top-level file NAME is written as NAME.kith-partial, a folder
// NAME as a folder NAME.kith-partial holding its entries under their own
// names; nothing exists under a final name before Finalize. A Sink is not
// safe for concurrent use.
type Sink struct {
	dir       string // absolute
	root      *os.Root
	m         *protocols.Manifest
	overwrite bool
	items     []sinkItem
	itemOf    []int    // entry → item
	sub       []string // entry → its path inside its item ("" for the item)
	files     fileCache
	dirtyDirs map[string]bool // directories with entries created since the last Sync
	syncErr   error           // a failed fsync of an evicted file, for Sync to report
	created   []int

	// writeAt writes to a partial file; tests replace it to fill the disk.
	writeAt func(f *os.File, p []byte, off int64) (int, error)
}

// OpenSink prepares to receive m into dir under the final names from
// PlanNames. It creates the partial files and folders that are missing
// (mode 0600 and 0700 until Finalize) and keeps those an earlier Sink left,
// so a transfer resumes where it stopped; it refuses a partial that is not
// a regular file or folder of the expected kind. An item whose partial is
// gone and whose final name already holds it (same kinds and sizes) is
// taken as finalized by an earlier run.
func OpenSink(dir string, m *protocols.Manifest, names []string, overwrite bool) (*Sink, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("files: manifest: %w", err)
	}
	return openSink(dir, m, names, overwrite)
}

// openSink is OpenSink without validating the manifest (tests use it to
// show that os.Root alone keeps hostile paths inside dir).
func openSink(dir string, m *protocols.Manifest, names []string, overwrite bool) (*Sink, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	s := &Sink{dir: abs, m: m, overwrite: overwrite, files: fileCache{max: sinkOpenFiles},
		dirtyDirs: map[string]bool{}, writeAt: (*os.File).WriteAt}
	if err := s.layout(names); err != nil {
		return nil, err
	}
	if s.root, err = os.OpenRoot(abs); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	for i := range s.items {
		if err := s.prepare(i); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// layout maps entries to top-level items and checks the names.
func (s *Sink) layout(names []string) error {
	byPath := map[string]int{}
	s.itemOf, s.sub = make([]int, len(s.m.Entries)), make([]string, len(s.m.Entries))
	for i, e := range s.m.Entries {
		top, rest, nested := strings.Cut(e.Path, "/")
		if !nested {
			if _, dup := byPath[top]; dup {
				return fmt.Errorf("files: manifest lists %q twice", top)
			}
			byPath[top] = len(s.items)
			s.itemOf[i] = len(s.items)
			s.items = append(s.items, sinkItem{entry: i, dir: e.Dir})
			continue
		}
		k, ok := byPath[top]
		if !ok || !s.items[k].dir {
			return fmt.Errorf("files: entry %q is not inside a folder listed before it", e.Path)
		}
		s.items[k].members = append(s.items[k].members, i)
		s.itemOf[i], s.sub[i] = k, rest
	}
	if len(names) != len(s.items) {
		return fmt.Errorf("files: %d names for %d items", len(names), len(s.items))
	}
	folded := map[string]bool{}
	for i, n := range names {
		if err := protocols.CheckName(n); err != nil {
			return fmt.Errorf("files: final name: %w", err)
		}
		if len(n) > maxFinalName || folded[protocols.FoldPath(n)] {
			return fmt.Errorf("files: final name %q is too long or given twice", n)
		}
		folded[protocols.FoldPath(n)] = true
		s.items[i].name, s.items[i].final, s.items[i].partial = n, n, n+PartialSuffix
	}
	return nil
}

// partialPath is entry e's path under the root while it is received.
func (s *Sink) partialPath(e int) string {
	it := &s.items[s.itemOf[e]]
	if s.sub[e] == "" {
		return it.partial
	}
	return it.partial + "/" + s.sub[e]
}

// prepare finds where item i stands after an earlier run, creating its
// partial tree unless the item looks finalized already.
func (s *Sink) prepare(i int) error {
	it := &s.items[i]
	found, err := exists(s.root, it.partial)
	if err != nil {
		return err
	}
	if found && it.dir {
		if info, err := s.root.Lstat(it.partial); err != nil {
			return fmt.Errorf("files: %w", err)
		} else if !info.IsDir() {
			return fmt.Errorf("files: %q exists and is not a folder", it.partial)
		}
		if merging, err := exists(s.root, it.partial+"/"+mergeMarker); err != nil {
			return err
		} else if merging {
			it.state = itemMerging
			return nil
		}
	}
	if !found {
		if name, ok := s.doneAt(i); ok {
			it.final, it.state = name, itemPending
			return nil
		}
	}
	return s.ensure(i)
}

// ensure creates or checks item i's partial tree.
func (s *Sink) ensure(i int) error {
	it := &s.items[i]
	switch it.state {
	case itemReady:
		return nil
	case itemMerging, itemDone:
		return fmt.Errorf("files: %q is finalized or being finalized", it.final)
	}
	if !it.dir {
		if err := s.createFile(it.entry); err != nil {
			return err
		}
	} else {
		if err := s.mkdir(it.partial); err != nil {
			return err
		}
		for _, e := range it.members {
			var err error
			if s.m.Entries[e].Dir {
				err = s.mkdir(s.partialPath(e))
			} else {
				err = s.createFile(e)
			}
			if err != nil {
				return err
			}
		}
	}
	it.state, it.final = itemReady, it.name
	return nil
}

// mkdir creates directory p (0700), or checks that it is one.
func (s *Sink) mkdir(p string) error {
	err := s.root.Mkdir(p, 0o700)
	if err == nil {
		s.dirtyDirs[path.Dir(p)] = true
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return diskErr(err)
	}
	info, err := s.root.Lstat(p)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("files: %q exists and is not a folder", p)
	}
	return nil
}

// createFile creates entry e's partial file (0600), or checks the one an
// earlier run left, and sets its size to the entry's.
func (s *Sink) createFile(e int) error {
	p := s.partialPath(e)
	f, err := s.root.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		s.dirtyDirs[path.Dir(p)] = true
		s.created = append(s.created, e)
	case errors.Is(err, fs.ErrExist):
		if f, err = openChecked(s.root, p, os.O_RDWR, false); err != nil {
			return err
		}
	default:
		return diskErr(err)
	}
	info, err := f.Stat()
	if err == nil && info.Size() != s.m.Entries[e].Size {
		err = f.Truncate(s.m.Entries[e].Size)
	}
	if err != nil {
		f.Close()
		return diskErr(err)
	}
	return s.cache(e, f)
}

// openChecked opens p in root, refusing a symbolic link or an entry of the
// wrong kind (a regular file, or a directory if dir).
func openChecked(root *os.Root, p string, flag int, dir bool) (*os.File, error) {
	before, err := root.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if before.IsDir() != dir || (!dir && !before.Mode().IsRegular()) {
		return nil, fmt.Errorf("files: %q exists and is not a %s", p, kind(dir))
	}
	f, err := root.OpenFile(p, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if after, err := f.Stat(); err != nil || !os.SameFile(before, after) {
		f.Close()
		return nil, fmt.Errorf("files: %q changed while it was opened", p)
	}
	return f, nil
}

func kind(dir bool) string {
	if dir {
		return "folder"
	}
	return "regular file"
}

// cache keeps f open as entry e's file, dirty (its size may have changed).
func (s *Sink) cache(e int, f *os.File) error {
	if stale := s.files.remove(e); stale != nil {
		stale.f.Close()
	}
	cf, old := s.files.add(e, f)
	cf.dirty = true
	if old == nil {
		return nil
	}
	if old.dirty {
		if err := old.f.Sync(); err != nil && s.syncErr == nil {
			s.syncErr = diskErr(err)
		}
	}
	return old.f.Close()
}

// WriteChunk writes chunk index of file entry entry, which must be exactly
// the chunk's length, into the entry's partial file. A write that fails for
// want of space returns an error wrapping ErrDiskFull.
func (s *Sink) WriteChunk(entry int, index uint64, data []byte) error {
	if s.root == nil {
		return errors.New("files: sink closed")
	}
	if entry < 0 || entry >= len(s.m.Entries) || s.m.Entries[entry].Dir {
		return fmt.Errorf("files: no file entry %d", entry)
	}
	e := &s.m.Entries[entry]
	n := protocols.ChunkCount(e.Size)
	if index >= uint64(n) {
		return fmt.Errorf("files: %q has no chunk %d", e.Path, index)
	}
	off := int64(index) * protocols.ChunkSize
	if want := min(protocols.ChunkSize, e.Size-off); int64(len(data)) != want {
		return fmt.Errorf("files: chunk %d of %q is %d bytes, not %d", index, e.Path, len(data), want)
	}
	if err := s.ensure(s.itemOf[entry]); err != nil {
		return err
	}
	cf := s.files.get(entry)
	if cf == nil {
		f, err := openChecked(s.root, s.partialPath(entry), os.O_RDWR, false)
		if err != nil {
			return err
		}
		if err := s.cache(entry, f); err != nil {
			return err
		}
		cf = s.files.get(entry)
	}
	cf.dirty = true
	if n, err := s.writeAt(cf.f, data, off); err != nil {
		return diskErr(err)
	} else if n != len(data) {
		return diskErr(io.ErrShortWrite)
	}
	failpoint(FailAfterWrite)
	return nil
}

// Sync flushes to disk every file written and every folder changed since
// the last Sync. Record chunks as verified only after it returns nil.
func (s *Sink) Sync() error {
	if s.root == nil {
		return errors.New("files: sink closed")
	}
	err := s.syncErr
	s.syncErr = nil
	for _, cf := range s.files.list {
		if !cf.dirty {
			continue
		}
		if e := cf.f.Sync(); e != nil {
			err = errors.Join(err, diskErr(e))
			continue
		}
		cf.dirty = false
	}
	for d := range s.dirtyDirs {
		if e := syncDir(s.root, d); e != nil && !errors.Is(e, fs.ErrNotExist) { // gone: renamed by Finalize
			err = errors.Join(err, e)
			continue
		}
		delete(s.dirtyDirs, d)
	}
	return err
}

// syncDir fsyncs directory p of root.
func syncDir(root *os.Root, p string) error {
	d, err := openChecked(root, p, os.O_RDONLY, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	return nil
}

// Created lists the file entries whose partial file this Sink created (as
// opposed to found from an earlier run): none of their chunks can be on
// disk yet, whatever a journal says.
func (s *Sink) Created() []int { return s.created }

// FinalPaths returns the absolute final path of each top-level item, in
// manifest order: where it is, or will be after Finalize.
func (s *Sink) FinalPaths() []string {
	ps := make([]string, len(s.items))
	for i, it := range s.items {
		ps[i] = filepath.Join(s.dir, it.final)
	}
	return ps
}

// Close closes the Sink's files without syncing or finalizing anything; the
// partials stay for a later Sink. It is safe to call twice.
func (s *Sink) Close() error {
	if s.root == nil {
		return nil
	}
	err := s.files.closeAll()
	err = errors.Join(err, s.root.Close())
	s.root = nil
	return err
}

// diskErr wraps err, with ErrDiskFull if it reports a full disk or quota.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("files: %w", err)
}

package files

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"strconv"
	"strings"

	"github.com/kithnet/kith/protocols"
)

// mergeMarker, inside a partial folder, says that the folder is being
// merged into an existing one (overwrite): the files missing from it were
// moved already. No entry can have this name: it ends with PartialSuffix.
const mergeMarker = ".merging" + PartialSuffix

// Finalize puts every complete item in place; the caller guarantees that
// every chunk was written, synced and verified. For each top-level item it
// fsyncs the item's files and folders, sets their final modes (the
// manifest's, plus owner read/write, never setuid, setgid, sticky or group-
// or world-writable) and renames NAME.kith-partial to the final name, then
// fsyncs the folder.
//
// Without overwrite it never replaces anything: if the final name was taken
// since PlanNames, the item gets the next free numbered name (see
// FinalPaths). With overwrite a file replaces an existing file atomically,
// and a folder is merged into an existing folder file by file; a file where
// a folder is (or the reverse) is an error that leaves the partial in place.
//
// Finalize can be called again after an error or a crash (on a new Sink):
// items already in place are recognised (partial gone, final name holding
// entries of the right kinds and sizes) and left alone.
func (s *Sink) Finalize() error {
	if s.root == nil {
		return errors.New("files: sink closed")
	}
	for i := range s.items {
		if err := s.finalizeItem(i); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) finalizeItem(i int) error {
	it := &s.items[i]
	switch it.state {
	case itemDone:
		return nil
	case itemMerging:
		return s.merge(i)
	}
	found, err := exists(s.root, it.partial)
	if err != nil {
		return err
	}
	if !found {
		if name, ok := s.doneAt(i); ok {
			it.final, it.state = name, itemDone
			return nil
		}
		if s.hasData(i) {
			return fmt.Errorf("files: the partial download %q is missing", it.partial)
		}
		it.state = itemPending // nothing but empty files and folders: create them
	}
	if err := s.ensure(i); err != nil {
		return err
	}
	if err := s.seal(i); err != nil {
		return err
	}
	failpoint(FailBeforeRename)
	if s.overwrite {
		return s.replace(i)
	}
	return s.place(i)
}

// entries lists item i's entries: the item, then its members.
func (s *Sink) entries(i int) []int {
	return append([]int{s.items[i].entry}, s.items[i].members...)
}

// seal checks the sizes of item i's partial files, sets final modes and
// fsyncs its files, then its folders, deepest first.
func (s *Sink) seal(i int) error {
	es := s.entries(i)
	for _, e := range es {
		if !s.m.Entries[e].Dir {
			if err := s.sealFile(e); err != nil {
				return err
			}
		}
	}
	for k := len(es) - 1; k >= 0; k-- {
		if e := es[k]; s.m.Entries[e].Dir {
			if err := s.sealDir(s.partialPath(e), e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Sink) sealFile(e int) error {
	var f *os.File
	if cf := s.files.remove(e); cf != nil {
		f = cf.f // fsync the descriptor that wrote: it sees every write error
	} else {
		var err error
		if f, err = openChecked(s.root, s.partialPath(e), os.O_RDONLY, false); err != nil {
			return err
		}
	}
	defer f.Close()
	en := &s.m.Entries[e]
	info, err := f.Stat()
	switch {
	case err != nil:
		return fmt.Errorf("files: %w", err)
	case info.Size() != en.Size:
		return fmt.Errorf("files: %q is %d bytes, not %d: incomplete", s.partialPath(e), info.Size(), en.Size)
	}
	if err := f.Chmod(finalMode(en.Mode, 0o600)); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if err := f.Sync(); err != nil {
		return diskErr(err)
	}
	return nil
}

func (s *Sink) sealDir(p string, e int) error {
	d, err := openChecked(s.root, p, os.O_RDONLY, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Chmod(finalMode(s.m.Entries[e].Mode, 0o700)); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	return diskErrOrNil(d.Sync())
}

// finalMode is a received entry's mode: its permission bits without group
// or world write, plus owner.
func finalMode(m fs.FileMode, owner fs.FileMode) fs.FileMode {
	return m.Perm()&0o755 | owner
}

func diskErrOrNil(err error) error {
	if err != nil {
		return diskErr(err)
	}
	return nil
}

// place renames item i's partial to its final name, or to the next free
// numbered name if that was taken meanwhile; it never replaces anything.
func (s *Sink) place(i int) error {
	it := &s.items[i]
	for name := range s.candidates(i) {
		if s.takenByOther(i, name) {
			continue
		}
		if name != it.name {
			if busy, err := exists(s.root, name+PartialSuffix); err != nil || busy {
				if err != nil {
					return err
				}
				continue
			}
		}
		err := renameNoReplace(s.root, it.partial, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		return s.placed(i, name)
	}
	return fmt.Errorf("files: no free name for %q", it.name)
}

// replace puts item i in place with overwrite: a file replaces what is
// there, a folder is renamed or merged into the existing folder.
func (s *Sink) replace(i int) error {
	it := &s.items[i]
	for range 3 {
		info, err := s.root.Lstat(it.name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = renameNoReplace(s.root, it.partial, it.name)
			if errors.Is(err, fs.ErrExist) {
				continue // appeared meanwhile: look again
			}
		case err != nil:
		case info.IsDir() != it.dir:
			return s.conflict(it.name, info, it.partial)
		case it.dir:
			return s.merge(i)
		default:
			err = s.root.Rename(it.partial, it.name)
		}
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		return s.placed(i, it.name)
	}
	return fmt.Errorf("files: %q keeps changing", it.name)
}

func (s *Sink) conflict(p string, info fs.FileInfo, partial string) error {
	return fmt.Errorf("files: cannot put %q in place: %s is there; the download stays in %q",
		p, describe(info), partial)
}

// describe names the kind of an existing entry.
func describe(info fs.FileInfo) string {
	switch t := info.Mode().Type(); {
	case t.IsRegular():
		return "a file"
	case t.IsDir():
		return "a folder"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// placed records that item i is at name, and fsyncs the folder.
func (s *Sink) placed(i int, name string) error {
	failpoint(FailAfterRename)
	s.items[i].final, s.items[i].state = name, itemDone
	return syncDir(s.root, ".")
}

// merge moves the entries of folder item i into the existing folder of the
// same name (overwrite), resuming a merge an earlier run began.
func (s *Sink) merge(i int) error {
	it := &s.items[i]
	if it.state != itemMerging {
		if err := s.checkMerge(i); err != nil {
			return err
		}
		if err := s.markMerging(i); err != nil {
			return err
		}
	}
	it.final = it.name
	for _, e := range it.members {
		if err := s.mergeEntry(i, e); err != nil {
			return err
		}
	}
	for k := len(it.members) - 1; k >= 0; k-- {
		if e := it.members[k]; s.m.Entries[e].Dir {
			if err := syncDir(s.root, it.name+"/"+s.sub[e]); err != nil {
				return err
			}
		}
	}
	if err := syncDir(s.root, it.name); err != nil {
		return err
	}
	for k := len(it.members) - 1; k >= 0; k-- {
		if e := it.members[k]; s.m.Entries[e].Dir {
			if err := s.removeIfExists(s.partialPath(e)); err != nil {
				return err
			}
		}
	}
	if err := s.removeIfExists(it.partial + "/" + mergeMarker); err != nil {
		return err
	}
	if err := s.removeIfExists(it.partial); err != nil {
		return err
	}
	return s.placed(i, it.name)
}

// checkMerge fails if an entry of item i would meet an existing entry of
// another kind (or a symbolic link where a folder is needed).
func (s *Sink) checkMerge(i int) error {
	it := &s.items[i]
	for _, e := range it.members {
		dst := it.name + "/" + s.sub[e]
		info, err := s.root.Lstat(dst)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		if info.IsDir() != s.m.Entries[e].Dir || (info.Mode()&fs.ModeSymlink != 0 && s.m.Entries[e].Dir) {
			return s.conflict(dst, info, it.partial)
		}
	}
	return nil
}

// markMerging writes item i's merge marker and fsyncs it.
func (s *Sink) markMerging(i int) error {
	it := &s.items[i]
	f, err := s.root.OpenFile(it.partial+"/"+mergeMarker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = f.Close()
	} else if errors.Is(err, fs.ErrExist) {
		err = nil
	}
	if err != nil {
		return diskErr(err)
	}
	if err := syncDir(s.root, it.partial); err != nil {
		return err
	}
	it.state = itemMerging
	return nil
}

// mergeEntry moves entry e of item i into the existing folder: a folder is
// created if missing, a file renamed over what is there.
func (s *Sink) mergeEntry(i, e int) error {
	dst := s.items[i].name + "/" + s.sub[e]
	info, err := s.root.Lstat(dst)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("files: %w", err)
	}
	if !missing && info.IsDir() != s.m.Entries[e].Dir {
		return s.conflict(dst, info, s.items[i].partial)
	}
	if s.m.Entries[e].Dir {
		if !missing {
			return nil
		}
		if err := s.root.Mkdir(dst, 0o700); err != nil {
			return diskErr(err)
		}
		return s.sealDir(dst, e)
	}
	err = s.root.Rename(s.partialPath(e), dst)
	if errors.Is(err, fs.ErrNotExist) && s.isKind(dst, e) {
		return nil // moved by an earlier run
	}
	return diskErrOrNil(err)
}

func (s *Sink) removeIfExists(p string) error {
	if err := s.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("files: %w", err)
	}
	return nil
}

// takenByOther reports whether another item of this Sink has or plans name.
func (s *Sink) takenByOther(i int, name string) bool {
	f := protocols.FoldPath(name)
	for j := range s.items {
		if j != i && protocols.FoldPath(s.items[j].final) == f {
			return true
		}
	}
	return false
}

// hasData reports whether item i holds a non-empty file.
func (s *Sink) hasData(i int) bool {
	for _, e := range s.entries(i) {
		if s.m.Entries[e].Size > 0 {
			return true
		}
	}
	return false
}

// doneAt looks for item i already in place (after a crash between the
// rename and the caller's record of it): at its planned name, or (without
// overwrite) at a numbered name Finalize would have chosen.
func (s *Sink) doneAt(i int) (string, bool) {
	for name := range s.candidates(i) {
		if s.holds(i, name) {
			return name, true
		}
		if s.overwrite {
			break
		}
		busy, err := exists(s.root, name)
		partial, err2 := exists(s.root, name+PartialSuffix)
		if err != nil || err2 != nil || (!busy && !partial) {
			break // Finalize would have taken this name
		}
	}
	return "", false
}

// holds reports whether name holds item i: its entries, of the right kinds
// and sizes.
func (s *Sink) holds(i int, name string) bool {
	if !s.isKind(name, s.items[i].entry) {
		return false
	}
	for _, e := range s.items[i].members {
		if !s.isKind(name+"/"+s.sub[e], e) {
			return false
		}
	}
	return true
}

// isKind reports whether p is entry e's kind (and size, for a file).
func (s *Sink) isKind(p string, e int) bool {
	info, err := s.root.Lstat(p)
	if err != nil {
		return false
	}
	if s.m.Entries[e].Dir {
		return info.IsDir()
	}
	return info.Mode().IsRegular() && info.Size() == s.m.Entries[e].Size
}

// candidates yields the final names item i may take, in order: its planned
// name, then the numbered forms of its own name that follow.
func (s *Sink) candidates(i int) iter.Seq[string] {
	it := &s.items[i]
	base, next := it.name, 1
	if orig := s.m.Entries[it.entry].Path; it.name == numbered(orig, 0, it.dir) {
		base = orig
	} else if k, ok := numberOf(it.name, orig, it.dir); ok {
		base, next = orig, k+1
	}
	return func(yield func(string) bool) {
		if !yield(it.name) {
			return
		}
		for k := next; k < maxNumbered; k++ {
			if c := numbered(base, k, it.dir); c != "" && !yield(c) {
				return
			}
		}
	}
}

// numberOf returns k if name is numbered(orig, k, dir).
func numberOf(name, orig string, dir bool) (int, bool) {
	i := strings.LastIndex(name, " (")
	if i < 0 {
		return 0, false
	}
	j := strings.IndexByte(name[i:], ')')
	if j < 0 {
		return 0, false
	}
	k, err := strconv.Atoi(name[i+2 : i+j])
	if err != nil || k <= 0 || numbered(orig, k, dir) != name {
		return 0, false
	}
	return k, true
}

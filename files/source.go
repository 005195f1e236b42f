package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
	"golang.org/x/text/unicode/norm"
)

// ErrSourceChanged reports that a file being sent is no longer the one that
// was hashed: modified, truncated, removed or replaced.
var ErrSourceChanged = errors.New("files: the file changed since it was offered")

// SourceOptions tune BuildSource.
type SourceOptions struct {
	// Warn is told about each path left out and why (may be nil).
	Warn func(msg string)
	// Progress is told how many of the total bytes are hashed, at most
	// every 100 ms and once at the end (may be nil). Calls do not overlap.
	Progress func(hashed, total int64)
}

// Source is what a sender offers: the manifest of local files and
// directories, and where each entry is on the local disk.
type Source struct {
	Manifest  *protocols.Manifest
	Bytes     []byte         // Manifest.Marshal()
	ContentID protocols.Hash // protocols.ContentID(Bytes)
	Locals    []string       // the absolute local path of each entry, in manifest order

	mtimes []time.Time // each file's mtime when hashed; nil after OpenSource
}

// BuildSource walks paths (files and directories, never following symbolic
// links), hashes every file in parallel and returns the Source to offer.
// Each path becomes a top-level entry named by its base name.
//
// Symbolic links, sockets, devices and FIFOs inside a directory are left
// out, as is anything whose name the receiver could not take (a control
// character, "CON", a name ending in ".kith-partial"...); opt.Warn is told
// about each. A path given as an argument that cannot be sent is an error,
// as are two arguments with the same name, an unreadable file or directory,
// and more entries or bytes than a manifest may hold.
func BuildSource(ctx context.Context, paths []string, opt SourceOptions) (*Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("files: nothing to send")
	}
	w := &walker{opt: opt, folded: map[string]int{}}
	for _, p := range paths {
		if err := w.addTop(ctx, p); err != nil {
			return nil, err
		}
	}
	m := &protocols.Manifest{Entries: w.entries}
	if err := hashManifest(ctx, m, w.locals, w.mtimes, opt.Progress); err != nil {
		return nil, err
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("files: manifest: %w", err)
	}
	return &Source{Manifest: m, Bytes: b, ContentID: protocols.ContentID(b),
		Locals: w.locals, mtimes: w.mtimes}, nil
}

// OpenSource rebuilds a Source from a stored manifest and local paths (after
// a restart). Files are checked for type and size as they are read, not for
// their modification time, which was not stored.
func OpenSource(manifest []byte, locals []string) (*Source, error) {
	m, err := protocols.ParseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("files: stored manifest: %w", err)
	}
	if len(locals) != len(m.Entries) {
		return nil, fmt.Errorf("files: %d local paths for %d entries", len(locals), len(m.Entries))
	}
	for _, l := range locals {
		if !filepath.IsAbs(l) {
			return nil, fmt.Errorf("files: local path %q is not absolute", l)
		}
	}
	b := slices.Clone(manifest)
	return &Source{Manifest: m, Bytes: b, ContentID: protocols.ContentID(b),
		Locals: slices.Clone(locals)}, nil
}

// walker collects the entries of BuildSource.
type walker struct {
	opt     SourceOptions
	entries []protocols.Entry
	locals  []string
	mtimes  []time.Time
	folded  map[string]int // FoldPath(entry path) → entry index
	total   int64
}

func (w *walker) warn(format string, args ...any) {
	if w.opt.Warn != nil {
		w.opt.Warn(escapeControls(fmt.Sprintf(format, args...)))
	}
}

// escapeControls replaces each rune of s that a terminal would not print
// (control and format characters, invalid UTF-8) by its Go escape, so that
// a message quoting a hostile name cannot move the cursor or hide text.
func escapeControls(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}

// addTop adds one argument of BuildSource.
func (w *walker) addTop(ctx context.Context, arg string) error {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return fmt.Errorf("files: %q: %w", arg, err)
	}
	info, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("files: %q is a symbolic link; kith does not follow links", arg)
	case !info.IsDir() && !info.Mode().IsRegular():
		return fmt.Errorf("files: %q is not a regular file or directory", arg)
	}
	name := norm.NFC.String(filepath.Base(abs))
	if err := protocols.CheckName(name); err != nil {
		return fmt.Errorf("files: %q cannot be sent under its name: %w", arg, err)
	}
	if i, ok := w.folded[protocols.FoldPath(name)]; ok {
		return fmt.Errorf("files: %q and %q would have the same name at the receiver; send one of them, or rename it",
			w.locals[i], abs)
	}
	if !info.IsDir() {
		return w.add(name, abs, info)
	}
	return w.walkDir(ctx, abs, name)
}

// walkDir adds the directory abs, sent as name, and everything under it.
func (w *walker) walkDir(ctx context.Context, abs, name string) error {
	return filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		path := name
		if p != abs {
			rel, err := filepath.Rel(abs, p)
			if err != nil {
				return fmt.Errorf("files: %w", err)
			}
			path += "/" + norm.NFC.String(filepath.ToSlash(rel))
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			w.warn("left out %q: it is a symbolic link; kith does not follow links", p)
			return nil
		case !t.IsDir() && !t.IsRegular():
			w.warn("left out %q: not a regular file or directory", p)
			return nil
		}
		if err := protocols.CheckPath(path); err != nil {
			w.warn("left out %q: the receiver could not take its name (%v)", p, err)
			return skip(d)
		}
		if i, ok := w.folded[protocols.FoldPath(path)]; ok {
			w.warn("left out %q: same name as %q on a receiver that ignores case or Unicode form", p, w.locals[i])
			return skip(d)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		return w.add(path, p, info)
	})
}

// skip is what a WalkDir function returns to leave d out.
func skip(d fs.DirEntry) error {
	if d.IsDir() {
		return filepath.SkipDir
	}
	return nil
}

// add appends one entry, checking the manifest's limits.
func (w *walker) add(path, local string, info fs.FileInfo) error {
	if len(w.entries) >= protocols.MaxEntries {
		return fmt.Errorf("files: more than %d files and folders; send fewer at once, or an archive", protocols.MaxEntries)
	}
	e := protocols.Entry{Path: path, Dir: info.IsDir(), Mode: info.Mode().Perm()}
	var mtime time.Time
	if !e.Dir {
		e.Size = info.Size()
		mtime = info.ModTime()
		if e.Size > protocols.MaxFileSize {
			return fmt.Errorf("files: %q is %s, over the limit of %s", local,
				humanBytes(e.Size), humanBytes(protocols.MaxFileSize))
		}
		w.total += e.Size
		if w.total > protocols.MaxTotalSize {
			return fmt.Errorf("files: more than %s in all; send less at once", humanBytes(protocols.MaxTotalSize))
		}
	}
	w.folded[protocols.FoldPath(path)] = len(w.entries)
	w.entries = append(w.entries, e)
	w.locals = append(w.locals, local)
	w.mtimes = append(w.mtimes, mtime)
	return nil
}

// humanBytes formats n bytes for people: "512 B", "1.5 MiB".
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

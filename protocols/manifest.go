package protocols

import (
	"fmt"
	"io/fs"
	"strings"
	"unsafe"

	"lukechampine.com/blake3"
)

// Chunking and the limits of a manifest (section "File transfer",
// Manifests). MaxManifestBytes binds before MaxFileSize and MaxTotalSize
// can: a manifest holds at most about 520,000 chunk hashes, so files of
// about 500 GiB in all.
const (
	// ChunkSize is the size of every chunk of a file but its last, which
	// holds the rest (1 to ChunkSize bytes).
	ChunkSize = 1 << 20
	// MaxEntries is the most entries (files and directories) of a manifest.
	MaxEntries = 10000
	// MaxFileSize is the most bytes of one file.
	MaxFileSize = 1 << 40
	// MaxTotalSize is the most bytes of all a manifest's files together.
	MaxTotalSize = 1 << 42
	// MaxManifestBytes is the most bytes of an encoded manifest.
	MaxManifestBytes = 16 << 20

	manifestVersion = 1
	hashLen         = len(Hash{})
)

// Entry is one file or directory of a Manifest.
type Entry struct {
	// Path is relative and slash-separated, with every rule of CheckPath.
	// The directory it is in (if any) is an earlier Dir entry.
	Path string
	// Dir marks a directory: Size 0, no Chunks.
	Dir bool
	// Size is the file's size in bytes, 0 to MaxFileSize.
	Size int64
	// Mode holds permission bits only (Mode&0o777 == Mode): no type bits
	// (not even fs.ModeDir), no setuid, setgid or sticky bit.
	Mode fs.FileMode
	// Chunks holds the BLAKE3-256 hash of each chunk of the file, exactly
	// ChunkCount(Size) of them.
	Chunks []Hash
}

// Manifest lists the files and directories of a transfer, each directory
// before its contents. Its encoding (Marshal) is what the transfer's content
// ID hashes.
type Manifest struct {
	Entries []Entry
}

// ChunkCount returns the number of chunks of a file of size bytes:
// ceil(size / ChunkSize), 0 for an empty file.
func ChunkCount(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size-1)/ChunkSize + 1
}

// HashChunk returns the BLAKE3-256 hash of a chunk's bytes.
func HashChunk(data []byte) Hash {
	return blake3.Sum256(data)
}

// Root returns the BLAKE3-256 hash of e's chunk hashes concatenated in
// order: of zero bytes for an empty file or a directory.
func (e *Entry) Root() Hash {
	return hashOfHashes(e.Chunks)
}

// Root returns the manifest root: the BLAKE3-256 hash of the entries' roots
// concatenated in order.
func (m *Manifest) Root() Hash {
	roots := make([]Hash, len(m.Entries))
	for i := range m.Entries {
		roots[i] = m.Entries[i].Root()
	}
	return hashOfHashes(roots)
}

// hashOfHashes returns the BLAKE3-256 hash of hs concatenated. A []Hash is
// already its concatenation in memory (an array of byte arrays has no
// padding), so it is hashed in place rather than copied.
func hashOfHashes(hs []Hash) Hash {
	if len(hs) == 0 {
		return blake3.Sum256(nil)
	}
	return blake3.Sum256(unsafe.Slice(&hs[0][0], len(hs)*hashLen))
}

// TotalSize returns the bytes of all the manifest's files together.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for i := range m.Entries {
		n += m.Entries[i].Size
	}
	return n
}

// Files returns the number of files (entries that are not directories).
func (m *Manifest) Files() int {
	n := 0
	for i := range m.Entries {
		if !m.Entries[i].Dir {
			n++
		}
	}
	return n
}

// ContentID returns the content ID of the manifest whose encoding is
// manifestBytes: the BLAKE3-256 hash of exactly those bytes, as they were
// sent. It names the transfer in a Fetch and in a ticket.
func ContentID(manifestBytes []byte) Hash {
	return blake3.Sum256(manifestBytes)
}

// Validate checks every rule of a manifest but those of its encoding: 1 to
// MaxEntries entries; paths CheckPath accepts, each directory an earlier Dir
// entry, no two paths equal under FoldPath; directories of size 0 without
// chunks; file sizes up to MaxFileSize and MaxTotalSize in all; exactly
// ChunkCount(Size) chunk hashes; permission bits only in Mode. The error
// names the entry (numbered from 0) and what is wrong, and wraps
// ErrMalformed, or ErrFrameTooLarge for a count or size over its limit.
func (m *Manifest) Validate() error {
	if err := checkEntryCount(len(m.Entries)); err != nil {
		return err
	}
	folded := make(map[string]int, len(m.Entries)) // FoldPath(path) → entry
	dirs := make(map[string]bool)                  // paths of Dir entries
	var total int64
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := e.check(i); err != nil {
			return err
		}
		if dir, _, ok := cutLast(e.Path); ok && !dirs[dir] {
			return manifestError(ErrMalformed, "entry %d (%s): its directory %s is not an earlier directory entry",
				i, quote(e.Path), quote(dir))
		}
		key := FoldPath(e.Path)
		if j, ok := folded[key]; ok {
			return manifestError(ErrMalformed, "entry %d (%s): same path as entry %d (%s) on a file system "+
				"that ignores case or normalization", i, quote(e.Path), j, quote(m.Entries[j].Path))
		}
		folded[key] = i
		if e.Dir {
			dirs[e.Path] = true
		}
		if e.Size > MaxTotalSize-total {
			return manifestError(ErrFrameTooLarge, "entry %d (%s): the files total more than the %d bytes allowed",
				i, quote(e.Path), int64(MaxTotalSize))
		}
		total += e.Size
	}
	return nil
}

// check checks the rules of entry i that concern it alone.
func (e *Entry) check(i int) error {
	if why := pathProblem(e.Path); why != "" {
		return manifestError(ErrMalformed, "entry %d: path %s %s", i, quote(e.Path), why)
	}
	bad := func(kind error, format string, args ...any) error {
		return manifestError(kind, "entry %d (%s): %s", i, quote(e.Path), fmt.Sprintf(format, args...))
	}
	switch {
	case e.Mode&^0o777 != 0:
		return bad(ErrMalformed, "mode %#o has bits other than the permission bits 0777", uint32(e.Mode))
	case e.Dir && e.Size != 0:
		return bad(ErrMalformed, "a directory of %d bytes; a directory has size 0", e.Size)
	case e.Dir && len(e.Chunks) != 0:
		return bad(ErrMalformed, "a directory with %d chunk hashes; a directory has none", len(e.Chunks))
	case e.Size < 0:
		return bad(ErrMalformed, "size %d is negative", e.Size)
	case e.Size > MaxFileSize:
		return bad(ErrFrameTooLarge, "size %d is more than the %d bytes allowed", e.Size, int64(MaxFileSize))
	case int64(len(e.Chunks)) != ChunkCount(e.Size):
		return bad(ErrMalformed, "%d chunk hashes; a file of %d bytes has %d chunks",
			len(e.Chunks), e.Size, ChunkCount(e.Size))
	}
	return nil
}

// checkEntryCount checks the number of a manifest's entries.
func checkEntryCount(n int) error {
	switch {
	case n == 0:
		return manifestError(ErrMalformed, "no entries; a manifest has at least one")
	case n > MaxEntries:
		return manifestError(ErrFrameTooLarge, "%d entries, more than the %d allowed", n, MaxEntries)
	}
	return nil
}

// cutLast splits a path at its last slash: "a/b/c" is "a/b" and "c".
func cutLast(p string) (dir, name string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}

// manifestError is an error about a manifest that wraps kind.
func manifestError(kind error, format string, args ...any) error {
	return &invalidError{kind, "protocols: invalid manifest: " + fmt.Sprintf(format, args...)}
}

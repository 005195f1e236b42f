package protocols

// TEMPORARY: a minimal stand-in for the manifest API being written on branch
// files-proto, so that package files can be built and tested meanwhile. Its
// encoding (JSON) is not the wire format. Drop this file (and its commit)
// when merging files-proto.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"lukechampine.com/blake3"
)

// ChunkSize is the size of every chunk but a file's last.
const ChunkSize = 1 << 20

// Manifest limits.
const (
	MaxEntries       = 10000
	MaxPathBytes     = 1024
	MaxNameBytes     = 255
	MaxDepth         = 64
	MaxFileSize      = 1 << 40
	MaxTotalSize     = 1 << 42
	MaxManifestBytes = 16 << 20
)

// Entry is a file or directory of a manifest.
type Entry struct {
	Path   string
	Dir    bool
	Size   int64
	Mode   fs.FileMode
	Chunks []Hash
}

// ChunkCount is the number of chunks of a file of size bytes.
func ChunkCount(size int64) int64 { return (size + ChunkSize - 1) / ChunkSize }

// HashChunk hashes one chunk.
func HashChunk(data []byte) Hash { return blake3.Sum256(data) }

// Root hashes an entry's chunk hashes.
func (e *Entry) Root() Hash {
	h := blake3.New(32, nil)
	for _, c := range e.Chunks {
		h.Write(c[:])
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// Manifest lists the entries of a transfer.
type Manifest struct{ Entries []Entry }

// Root hashes the entries' roots.
func (m *Manifest) Root() Hash {
	h := blake3.New(32, nil)
	for i := range m.Entries {
		r := m.Entries[i].Root()
		h.Write(r[:])
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// TotalSize is the sum of the files' sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}

// Files counts the entries that are files.
func (m *Manifest) Files() int {
	n := 0
	for _, e := range m.Entries {
		if !e.Dir {
			n++
		}
	}
	return n
}

// Validate checks the manifest's structure and every path.
func (m *Manifest) Validate() error {
	if len(m.Entries) > MaxEntries {
		return fmt.Errorf("protocols: %d entries, over %d", len(m.Entries), MaxEntries)
	}
	dirs := map[string]bool{}
	folded := map[string]bool{}
	var total int64
	for _, e := range m.Entries {
		if err := CheckPath(e.Path); err != nil {
			return err
		}
		if i := strings.LastIndexByte(e.Path, '/'); i >= 0 && !dirs[e.Path[:i]] {
			return fmt.Errorf("protocols: parent of %q not listed before it", e.Path)
		}
		if f := FoldPath(e.Path); folded[f] {
			return fmt.Errorf("protocols: %q collides with another entry", e.Path)
		} else {
			folded[f] = true
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("protocols: %q: mode %o", e.Path, e.Mode)
		}
		if e.Dir {
			if e.Size != 0 || len(e.Chunks) != 0 {
				return fmt.Errorf("protocols: directory %q with content", e.Path)
			}
			dirs[e.Path] = true
			continue
		}
		if e.Size < 0 || e.Size > MaxFileSize || int64(len(e.Chunks)) != ChunkCount(e.Size) {
			return fmt.Errorf("protocols: %q: bad size or chunks", e.Path)
		}
		total += e.Size
	}
	if total > MaxTotalSize {
		return errors.New("protocols: total size over the limit")
	}
	return nil
}

// Marshal encodes a valid manifest.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// ParseManifest decodes and validates a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, errors.New("protocols: manifest too large")
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("protocols: manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ContentID hashes a manifest's bytes.
func ContentID(manifestBytes []byte) Hash { return blake3.Sum256(manifestBytes) }

// CheckPath checks a relative slash-separated path.
func CheckPath(p string) error {
	if p == "" || len(p) > MaxPathBytes {
		return fmt.Errorf("protocols: path %q: empty or too long", p)
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxDepth {
		return fmt.Errorf("protocols: path %q too deep", p)
	}
	for _, n := range parts {
		if err := CheckName(n); err != nil {
			return err
		}
	}
	return nil
}

// CheckName checks one path component.
func CheckName(name string) error {
	bad := func(why string) error { return fmt.Errorf("protocols: name %q: %s", name, why) }
	switch {
	case name == "" || name == "." || name == "..":
		return bad("not a name")
	case len(name) > MaxNameBytes:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case !norm.NFC.IsNormalString(name):
		return bad("not NFC")
	case strings.ContainsAny(name, `/\:`):
		return bad("separator")
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return bad("ends in a dot or space")
	case strings.HasSuffix(strings.ToLower(name), ".kith-partial"):
		return bad("reserved suffix")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return bad("control or format character")
		}
	}
	base, _, _ := strings.Cut(strings.ToUpper(name), ".")
	switch strings.TrimRight(base, " ") {
	case "CON", "PRN", "AUX", "NUL",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
		return bad("reserved device name")
	}
	return nil
}

// FoldPath is p in NFC, case-folded.
func FoldPath(p string) string { return cases.Fold().String(norm.NFC.String(p)) }

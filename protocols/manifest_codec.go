package protocols

import (
	"fmt"
	"io/fs"

	"google.golang.org/protobuf/proto"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// Marshal validates m and encodes it as a kith.files.v1.Manifest
// (deterministic protobuf), with each entry's root and the manifest root.
// The result is at most MaxManifestBytes long (longer is an error wrapping
// ErrFrameTooLarge); ContentID of it names the transfer.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	pm := &filespb.Manifest{Version: manifestVersion, ChunkSize: ChunkSize,
		Entries: make([]*filespb.Entry, len(m.Entries))}
	roots := make([]Hash, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		roots[i] = e.Root()
		chunks := make([]byte, 0, len(e.Chunks)*hashLen)
		for _, c := range e.Chunks {
			chunks = append(chunks, c[:]...)
		}
		pm.Entries[i] = &filespb.Entry{Path: e.Path, Dir: e.Dir, Size: uint64(e.Size),
			Mode: uint32(e.Mode), Chunks: chunks, Root: roots[i][:]}
	}
	root := hashOfHashes(roots)
	pm.Root = root[:]
	if n := proto.Size(pm); n > MaxManifestBytes {
		return nil, manifestError(ErrFrameTooLarge, "%d bytes encoded, more than the %d allowed",
			n, MaxManifestBytes)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pm)
	if err != nil {
		return nil, fmt.Errorf("protocols: encoding a manifest: %w", err)
	}
	return b, nil
}

// ParseManifest decodes and checks a manifest received in an Offer or a
// Serving frame. It checks the length first (at most MaxManifestBytes), then
// the version (1, else the error wraps ErrUnsupportedVersion), the chunk size,
// every rule of Validate, and that each entry's root and the manifest root
// match the chunk hashes. Unknown fields are ignored. The error names the
// entry and what is wrong, quoting received names with Go escapes, and wraps
// ErrMalformed, ErrFrameTooLarge or ErrUnsupportedVersion (see ErrorCodeFor).
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, manifestError(ErrFrameTooLarge, "%d bytes, more than the %d allowed",
			len(b), MaxManifestBytes)
	}
	var pm filespb.Manifest
	if err := proto.Unmarshal(b, &pm); err != nil {
		return nil, manifestError(ErrMalformed, "%s", protoError(err))
	}
	if v := pm.GetVersion(); v != manifestVersion {
		return nil, &invalidError{ErrUnsupportedVersion, fmt.Sprintf(
			"protocols: unsupported manifest version %d; this side speaks only version %d", v, manifestVersion)}
	}
	m, roots, err := fromPB(&pm)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkRoots(m, roots, Hash(pm.GetRoot())); err != nil {
		return nil, err
	}
	return m, nil
}

// fromPB converts a decoded manifest, checking what the encoding alone can
// break: wire types, the chunk size, the lengths of hashes, sizes that do not
// fit. It returns the entries' roots as sent.
func fromPB(pm *filespb.Manifest) (*Manifest, []Hash, error) {
	if why := wrongWireType(pm.ProtoReflect()); why != "" {
		return nil, nil, manifestError(ErrMalformed, "%s", why)
	}
	if cs := pm.GetChunkSize(); cs != ChunkSize {
		return nil, nil, manifestError(ErrMalformed, "chunk size %d; version 1 manifests use %d", cs, ChunkSize)
	}
	if n := len(pm.GetRoot()); n != hashLen {
		return nil, nil, manifestError(ErrMalformed, "root is %d bytes; it must be exactly %d", n, hashLen)
	}
	if err := checkEntryCount(len(pm.GetEntries())); err != nil {
		return nil, nil, err
	}
	m := &Manifest{Entries: make([]Entry, len(pm.GetEntries()))}
	roots := make([]Hash, len(m.Entries))
	for i, pe := range pm.GetEntries() {
		e, err := entryFromPB(i, pe)
		if err != nil {
			return nil, nil, err
		}
		m.Entries[i], roots[i] = e, Hash(pe.GetRoot())
	}
	return m, roots, nil
}

// entryFromPB converts entry i of a decoded manifest.
func entryFromPB(i int, pe *filespb.Entry) (Entry, error) {
	bad := func(kind error, format string, args ...any) (Entry, error) {
		return Entry{}, manifestError(kind, "entry %d (%s): %s", i, quote(pe.GetPath()), fmt.Sprintf(format, args...))
	}
	if why := wrongWireType(pe.ProtoReflect()); why != "" {
		return bad(ErrMalformed, "%s", why)
	}
	switch size, chunks := pe.GetSize(), len(pe.GetChunks()); {
	case size > MaxFileSize:
		return bad(ErrFrameTooLarge, "size %d is more than the %d bytes allowed", size, int64(MaxFileSize))
	case chunks%hashLen != 0:
		return bad(ErrMalformed, "chunk hashes of %d bytes, not a multiple of %d", chunks, hashLen)
	case len(pe.GetRoot()) != hashLen:
		return bad(ErrMalformed, "root is %d bytes; it must be exactly %d", len(pe.GetRoot()), hashLen)
	}
	e := Entry{Path: pe.GetPath(), Dir: pe.GetDir(), Size: int64(pe.GetSize()), Mode: fs.FileMode(pe.GetMode())}
	if n := len(pe.GetChunks()) / hashLen; n > 0 {
		e.Chunks = make([]Hash, n)
		for j := range e.Chunks {
			e.Chunks[j] = Hash(pe.GetChunks()[j*hashLen:])
		}
	}
	return e, nil
}

// checkRoots compares the roots a manifest carries with those of its chunk
// hashes.
func checkRoots(m *Manifest, sent []Hash, root Hash) error {
	roots := make([]Hash, len(m.Entries))
	for i := range m.Entries {
		roots[i] = m.Entries[i].Root()
		if roots[i] != sent[i] {
			return manifestError(ErrMalformed, "entry %d (%s): root does not match its chunk hashes",
				i, quote(m.Entries[i].Path))
		}
	}
	if hashOfHashes(roots) != root {
		return manifestError(ErrMalformed, "root does not match the entries' roots")
	}
	return nil
}

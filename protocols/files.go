package protocols

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// FilesProtocol is the stream protocol of file transfer, specified in the
// package documentation (section "File transfer").
const FilesProtocol protocol.ID = "/kith/files/1.0.0"

// Limits and the in-band version of /kith/files/1.0.0.
const (
	// FilesVersion is the only Offer and Fetch version this code speaks and
	// accepts.
	FilesVersion = 1
	// MaxRequestChunks is the most chunks one ChunkRequest asks for.
	MaxRequestChunks = 64
	// MaxFilesControlFrame is the most bytes after its length prefix of any
	// frame but an Offer or a Serving (the longest, an Error, takes 268).
	MaxFilesControlFrame = 1 << 10
	// MaxFilesFrame is the most bytes of any frame after its length prefix:
	// an Offer or a Serving with a manifest of MaxManifestBytes.
	MaxFilesFrame = MaxManifestBytes + 1<<10
)

// FilesFrame is one frame of /kith/files/1.0.0. Exactly one field is set.
// A Chunk frame is followed on the stream by its data (FilesWriter.WriteChunk,
// FilesReader.ReadChunkData).
type FilesFrame struct {
	Offer    *FileOffer
	OfferAck *FileOfferAck
	Fetch    *FileFetch
	Serving  *FileServing
	Request  *ChunkRequest
	Chunk    *ChunkHeader
	Complete *FileComplete
	Done     *FileDone
	Reject   *FileReject
	Error    *RemoteError
}

// FileOffer proposes a transfer to the stream's remote peer (push mode). On
// the wire it carries FilesVersion.
type FileOffer struct {
	// TransferID is the sender's random ID of the transfer; never all zero.
	TransferID [16]byte
	// Manifest is the encoded manifest, 1 to MaxManifestBytes bytes. The
	// frame reader does not parse it: the receiver calls ParseManifest, and
	// ContentID hashes exactly these bytes.
	Manifest []byte
}

// FileOfferAck answers an Offer: the receiver has stored it durably.
type FileOfferAck struct {
	TransferID [16]byte // the offer's; never all zero
}

// FileFetch asks the stream's remote peer to serve a transfer. On the wire it
// carries FilesVersion.
type FileFetch struct {
	// TransferID is the offered transfer's ID in push mode, all zero in
	// ticket mode.
	TransferID [16]byte
	// ContentID is the ContentID of the transfer's manifest.
	ContentID Hash
	// Secret is the ticket's secret in ticket mode (16 to 64 bytes), empty
	// in push mode.
	Secret []byte
	// WantManifest asks for the manifest in the Serving answer.
	WantManifest bool
}

// FileServing accepts a Fetch.
type FileServing struct {
	// Manifest is the encoded manifest if the Fetch wanted it (1 to
	// MaxManifestBytes bytes, not parsed by the frame reader), else empty.
	Manifest []byte
}

// ChunkRequest asks for chunks First to First+Count-1 of entry Entry
// (numbered from 0 in manifest order).
type ChunkRequest struct {
	Entry uint32
	First uint64
	Count uint32 // 1 to MaxRequestChunks
}

// ChunkHeader announces chunk Index of entry Entry: exactly Size raw bytes
// follow the frame on the stream.
type ChunkHeader struct {
	Entry uint32
	Index uint64
	Size  uint32 // 1 to ChunkSize
}

// FileComplete says that every chunk is verified and in place.
type FileComplete struct {
	// Root is the manifest root the receiver computed from the chunk
	// hashes it verified.
	Root Hash
}

// FileDone answers a Complete whose root is the manifest's, or a Reject.
type FileDone struct{}

// FileReject declines an offered transfer.
type FileReject struct {
	TransferID [16]byte // the offer's; never all zero
}

// checkParts checks that exactly one of the frame's parts is set.
func (f FilesFrame) checkParts() error {
	n := 0
	for _, set := range []bool{f.Offer != nil, f.OfferAck != nil, f.Fetch != nil, f.Serving != nil,
		f.Request != nil, f.Chunk != nil, f.Complete != nil, f.Done != nil, f.Reject != nil, f.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: frame has %d parts; it must have exactly one of %s", ErrMalformed, n, filesParts)
	}
	return nil
}

// filesParts names the parts of a Frame, for errors.
const filesParts = "offer, offer_ack, fetch, serving, request, chunk, complete, done, reject, error"

func checkTransferID(what string, id [16]byte) error {
	if id == [16]byte{} {
		return fmt.Errorf("%w: %s transfer id is all zero", ErrMalformed, what)
	}
	return nil
}

// checkManifestLen checks the length of the manifest an Offer (required) or
// a Serving (optional) carries.
func checkManifestLen(what string, n int, required bool) error {
	switch {
	case n > MaxManifestBytes:
		return fmt.Errorf("%w: %s manifest is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, what, n, MaxManifestBytes)
	case n == 0 && required:
		return fmt.Errorf("%w: %s has no manifest", ErrMalformed, what)
	}
	return nil
}

// checkFetchMode checks that a Fetch is in push mode (a transfer ID, no
// secret) or in ticket mode (no transfer ID, a secret of 16 to 64 bytes).
func checkFetchMode(id [16]byte, secret []byte) error {
	switch {
	case id != [16]byte{} && len(secret) != 0:
		return fmt.Errorf("%w: fetch has a transfer ID and a secret of %d bytes; "+
			"it must have one or the other", ErrMalformed, len(secret))
	case id == [16]byte{} && (len(secret) < minSecretLen || len(secret) > maxSecretLen):
		return fmt.Errorf("%w: fetch without a transfer ID has a secret of %d bytes; "+
			"it must have %d to %d", ErrMalformed, len(secret), minSecretLen, maxSecretLen)
	}
	return nil
}

func checkRequestCount(n uint32) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: request for 0 chunks", ErrMalformed)
	case n > MaxRequestChunks:
		return fmt.Errorf("%w: request for %d chunks, more than the %d allowed",
			ErrFrameTooLarge, n, MaxRequestChunks)
	}
	return nil
}

func checkChunkSize(n uint32) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: chunk of 0 bytes", ErrMalformed)
	case n > ChunkSize:
		return fmt.Errorf("%w: chunk of %d bytes, more than the %d allowed", ErrFrameTooLarge, n, ChunkSize)
	}
	return nil
}

// ChunkLen returns the size of chunk index of e: ChunkSize for every chunk
// but the last, the rest of the file for the last, and 0 when e has no such
// chunk.
func (e *Entry) ChunkLen(index int64) int {
	if index < 0 || index >= ChunkCount(e.Size) {
		return 0
	}
	return int(min(ChunkSize, e.Size-index*ChunkSize))
}

// CheckRequest checks a ChunkRequest against the manifest it asks about: its
// Entry is a file of m, not a directory; its Count is 1 to MaxRequestChunks;
// and chunks First to First+Count-1 all exist. A sender answers a request
// that fails with MALFORMED: the error wraps ErrMalformed (or
// ErrFrameTooLarge for a Count above MaxRequestChunks).
func (m *Manifest) CheckRequest(r ChunkRequest) error {
	e, err := m.fileEntry("request", r.Entry)
	if err != nil {
		return err
	}
	if err := checkRequestCount(r.Count); err != nil {
		return err
	}
	if n := uint64(ChunkCount(e.Size)); r.First >= n || uint64(r.Count) > n-r.First {
		return fmt.Errorf("%w: request for %d chunks from chunk %d of entry %d, which has %d chunks",
			ErrMalformed, r.Count, r.First, r.Entry, n)
	}
	return nil
}

// CheckChunk checks a ChunkHeader against the manifest: its Entry is a file
// of m, chunk Index exists, and Size is that chunk's length (Entry.ChunkLen).
// It does not check that the chunk was requested, nor its order. The error
// wraps ErrMalformed.
func (m *Manifest) CheckChunk(h ChunkHeader) error {
	e, err := m.fileEntry("chunk", h.Entry)
	if err != nil {
		return err
	}
	if n := uint64(ChunkCount(e.Size)); h.Index >= n {
		return fmt.Errorf("%w: chunk %d of entry %d, which has %d chunks", ErrMalformed, h.Index, h.Entry, n)
	}
	if want := e.ChunkLen(int64(h.Index)); int(h.Size) != want {
		return fmt.Errorf("%w: chunk %d of entry %d is %d bytes; it must be %d",
			ErrMalformed, h.Index, h.Entry, h.Size, want)
	}
	return nil
}

// fileEntry returns entry i of m, which must be a file.
func (m *Manifest) fileEntry(what string, i uint32) (*Entry, error) {
	switch {
	case uint64(i) >= uint64(len(m.Entries)):
		return nil, fmt.Errorf("%w: %s for entry %d of a manifest of %d entries",
			ErrMalformed, what, i, len(m.Entries))
	case m.Entries[i].Dir:
		return nil, fmt.Errorf("%w: %s for entry %d, which is a directory", ErrMalformed, what, i)
	}
	return &m.Entries[i], nil
}

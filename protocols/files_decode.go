package protocols

import (
	"fmt"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// decodeFilesPart checks the fields of the frame's one part, whose version
// and wire types are already checked, and converts it.
func decodeFilesPart(pf *filespb.Frame) (FilesFrame, error) {
	switch p := pf.Part.(type) {
	case *filespb.Frame_Offer:
		o, err := decodeOffer(p.Offer)
		return wrapPart(FilesFrame{Offer: o}, err)
	case *filespb.Frame_OfferAck:
		id, err := decodeTransferID("offer_ack", p.OfferAck.GetTransferId())
		return wrapPart(FilesFrame{OfferAck: &FileOfferAck{TransferID: id}}, err)
	case *filespb.Frame_Fetch:
		f, err := decodeFetch(p.Fetch)
		return wrapPart(FilesFrame{Fetch: f}, err)
	case *filespb.Frame_Serving:
		err := checkManifestLen("serving", len(p.Serving.GetManifest()), false)
		return wrapPart(FilesFrame{Serving: &FileServing{Manifest: nilIfEmpty(p.Serving.GetManifest())}}, err)
	case *filespb.Frame_Request:
		r := p.Request
		err := checkRequestCount(r.GetCount())
		return wrapPart(FilesFrame{Request: &ChunkRequest{Entry: r.GetEntry(), First: r.GetFirst(), Count: r.GetCount()}}, err)
	case *filespb.Frame_Chunk:
		c := p.Chunk
		err := checkChunkSize(c.GetSize())
		return wrapPart(FilesFrame{Chunk: &ChunkHeader{Entry: c.GetEntry(), Index: c.GetIndex(), Size: c.GetSize()}}, err)
	case *filespb.Frame_Complete:
		root, err := decodeHash("complete root", p.Complete.GetRoot())
		return wrapPart(FilesFrame{Complete: &FileComplete{Root: root}}, err)
	case *filespb.Frame_Done:
		return FilesFrame{Done: &FileDone{}}, nil
	case *filespb.Frame_Reject:
		id, err := decodeTransferID("reject", p.Reject.GetTransferId())
		return wrapPart(FilesFrame{Reject: &FileReject{TransferID: id}}, err)
	default:
		e, err := decodeFilesError(pf.GetError())
		return wrapPart(FilesFrame{Error: e}, err)
	}
}

// wrapPart returns f, or an empty frame with err.
func wrapPart(f FilesFrame, err error) (FilesFrame, error) {
	if err != nil {
		return FilesFrame{}, err
	}
	return f, nil
}

func decodeOffer(po *filespb.Offer) (*FileOffer, error) {
	id, err := decodeTransferID("offer", po.GetTransferId())
	if err != nil {
		return nil, err
	}
	if err := checkManifestLen("offer", len(po.GetManifest()), true); err != nil {
		return nil, err
	}
	return &FileOffer{TransferID: id, Manifest: po.GetManifest()}, nil
}

func decodeFetch(pf *filespb.Fetch) (*FileFetch, error) {
	id, err := decodeID("fetch transfer", pf.GetTransferId())
	if err != nil {
		return nil, err
	}
	cid, err := decodeHash("fetch content ID", pf.GetContentId())
	if err != nil {
		return nil, err
	}
	if err := checkFetchMode(id, pf.GetSecret()); err != nil {
		return nil, err
	}
	return &FileFetch{TransferID: id, ContentID: cid, Secret: nilIfEmpty(pf.GetSecret()),
		WantManifest: pf.GetWantManifest()}, nil
}

func decodeFilesError(pe *filespb.Error) (*RemoteError, error) {
	code := ErrorCode(pe.GetCode())
	if err := checkCode(code); err != nil {
		return nil, err
	}
	if err := checkErrorMessage(pe.GetMessage()); err != nil {
		return nil, err
	}
	return &RemoteError{Code: code, Message: pe.GetMessage()}, nil
}

// decodeTransferID decodes the transfer ID of an Offer, OfferAck or Reject:
// exactly 16 bytes, not all zero.
func decodeTransferID(what string, b []byte) ([16]byte, error) {
	id, err := decodeID(what+" transfer", b)
	if err != nil {
		return id, err
	}
	return id, checkTransferID(what, id)
}

func decodeHash(what string, b []byte) (Hash, error) {
	if len(b) != hashLen {
		return Hash{}, fmt.Errorf("%w: %s is %d bytes; it must be exactly %d", ErrMalformed, what, len(b), hashLen)
	}
	return Hash(b), nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

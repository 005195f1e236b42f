package protocols

import (
	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// toPB checks f by the rules FilesReader.Read applies and converts it to its
// protobuf form.
func (f FilesFrame) toPB() (*filespb.Frame, error) {
	if err := f.checkParts(); err != nil {
		return nil, err
	}
	switch {
	case f.Offer != nil:
		return f.Offer.toPB()
	case f.OfferAck != nil:
		id := f.OfferAck.TransferID
		return orError(&filespb.Frame{Part: &filespb.Frame_OfferAck{OfferAck: &filespb.OfferAck{TransferId: id[:]}}},
			checkTransferID("offer_ack", id))
	case f.Fetch != nil:
		return f.Fetch.toPB()
	case f.Serving != nil:
		m := f.Serving.Manifest
		return orError(&filespb.Frame{Part: &filespb.Frame_Serving{Serving: &filespb.Serving{Manifest: m}}},
			checkManifestLen("serving", len(m), false))
	case f.Request != nil:
		r := f.Request
		return orError(&filespb.Frame{Part: &filespb.Frame_Request{Request: &filespb.Request{
			Entry: r.Entry, First: r.First, Count: r.Count}}}, checkRequestCount(r.Count))
	case f.Chunk != nil:
		return nil, errUseWriteChunk
	case f.Complete != nil:
		return &filespb.Frame{Part: &filespb.Frame_Complete{Complete: &filespb.Complete{Root: f.Complete.Root[:]}}}, nil
	case f.Done != nil:
		return &filespb.Frame{Part: &filespb.Frame_Done{Done: &filespb.Done{}}}, nil
	case f.Reject != nil:
		id := f.Reject.TransferID
		return orError(&filespb.Frame{Part: &filespb.Frame_Reject{Reject: &filespb.Reject{TransferId: id[:]}}},
			checkTransferID("reject", id))
	default:
		return f.Error.toFilesPB()
	}
}

// orError returns pf, or nil and err when err is not nil.
func orError(pf *filespb.Frame, err error) (*filespb.Frame, error) {
	if err != nil {
		return nil, err
	}
	return pf, nil
}

func (o *FileOffer) toPB() (*filespb.Frame, error) {
	if err := checkTransferID("offer", o.TransferID); err != nil {
		return nil, err
	}
	if err := checkManifestLen("offer", len(o.Manifest), true); err != nil {
		return nil, err
	}
	return &filespb.Frame{Part: &filespb.Frame_Offer{Offer: &filespb.Offer{Version: FilesVersion,
		TransferId: o.TransferID[:], Manifest: o.Manifest}}}, nil
}

func (f *FileFetch) toPB() (*filespb.Frame, error) {
	if err := checkFetchMode(f.TransferID, f.Secret); err != nil {
		return nil, err
	}
	return &filespb.Frame{Part: &filespb.Frame_Fetch{Fetch: &filespb.Fetch{Version: FilesVersion,
		TransferId: f.TransferID[:], ContentId: f.ContentID[:], Secret: f.Secret,
		WantManifest: f.WantManifest}}}, nil
}

func (e *RemoteError) toFilesPB() (*filespb.Frame, error) {
	if err := checkCode(e.Code); err != nil {
		return nil, err
	}
	if err := checkErrorMessage(e.Message); err != nil {
		return nil, err
	}
	return &filespb.Frame{Part: &filespb.Frame_Error{Error: &filespb.Error{Code: filespb.Error_Code(e.Code),
		Message: e.Message}}}, nil
}

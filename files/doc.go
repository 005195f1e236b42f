// Package files transfers files and folders between peers: offers,
// manifests of BLAKE3-hashed chunks, resumable verified downloads. It takes a
// host.Host and a Store; it never imports node or chat.
//
// The sending side is a Source: BuildSource walks the paths to send (never
// following symbolic links, leaving out special files and names a receiver
// could not take, with a warning), hashes every chunk in parallel and keeps
// where each entry is on disk; a SourceReader serves chunks and reports
// ErrSourceChanged if a file is no longer the one offered.
//
// The receiving side is a Sink. Received names are hostile: every byte is
// written through an os.Root of the chosen folder, into NAME.kith-partial (a
// file, or a folder holding the item's entries), and only Finalize, called
// once every chunk is verified, fsyncs the item and renames it to the final
// name PlanNames chose ("name (1).ext" rather than replacing anything,
// unless the user asked to overwrite). Nothing is ever under a final name
// before it is complete, a partial survives a crash or a full disk
// (ErrDiskFull) for the transfer to resume, and Finalize can be repeated
// after a crash. CheckSpace refuses an offer that would not fit.
//
// Sources and Sinks do no networking and keep no records. The Service runs
// /kith/files/1.0.0 (wire format in package protocols) on the host:
//
//   - Send stores an outgoing transfer and delivers its offer, retried until
//     the peer holds it; the receiver's Accept or Reject answers it. Share
//     serves a transfer to whoever presents its ticket's secret; Fetch takes
//     a ticket's content.
//   - The receiver drives: it asks for chunks, keeping Config.Window bytes
//     in flight, verifies each against the manifest before writing it, asks
//     again for one that does not match (three times at most) and cuts off
//     a sender that sends what it did not ask for. Every Config.JournalEvery
//     it syncs what it wrote and only then records those chunks as verified
//     in the Store, so a crash loses at most that much work and never
//     counts unsynced bytes.
//   - The sender yields to messages on the same connection: it pings the
//     receiver on that connection (libp2p's /ipfs/ping/1.0.0) and keeps
//     the chunk bytes not yet acknowledged by an answer within a window
//     sized so that they add at most about Config.YieldDelay of queueing
//     delay (yield.go). A receiver that does not answer pings gets the
//     chunks unpaced.
//   - When everything is verified and in place it reports the manifest's
//     root to the sender, which records the transfer done only then.
//   - A retrier, per peer, resumes what is unfinished: at start, when the
//     peer connects, and with back-off after a failure. A transfer that
//     cannot go on pauses (peer gone, disk full, only a limited relay path)
//     and resumes; one that must not (refused, cancelled, a hostile sender)
//     fails.
//
// The Service does not decide who may offer files: the caller's Authorize
// function does, for every offer. The package builds on Linux, macOS and
// FreeBSD.
package files

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
// Sources and Sinks do no networking and keep no records: the Service
// decides what to send and receive, verifies chunks against the manifest and
// journals them in its Store. The package builds on Linux, macOS and
// FreeBSD.
package files

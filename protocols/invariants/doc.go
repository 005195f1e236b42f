// Package invariants is a test library (like package hostile beside it):
// no kith binary imports it. It checks the nothing-lost invariants of
// ../shared/RELIABILITY.md §4.4 for every integration test: chat, files,
// node and cmd/kith tests call it (it imports no kith package but
// protocols, so any of them may).
//
//   - N1, received hash == sent hash: SumFile, SumTree and SameTree hash
//     with SHA-256, independently of the BLAKE3 manifests kith verifies
//     with.
//   - N2, no partial file under a final name: CheckFinals scans a receive
//     folder at any moment (after every kill, too) and fails for a
//     final-named file whose content is not what was sent.
//   - N3, an acked message is persisted exactly once: ExactlyOnce.
//   - N4, nothing written outside the chosen folder: NewTree builds a
//     temporary tree with canaries around the receive root; Snapshot and
//     AssertUnchangedOutside compare (path, inode, mtime, size, mode, a
//     hash) before and after.
//   - N5, nothing written before consent: AssertNothingUnder.
//   - N6, per-sender order and exactly-once display: PerSenderOrder (all
//     of it arrived) and InSentOrder (part of it may not have yet).
//   - N7, no leaked resources: NoLeaks (goroutines with goleak, open file
//     descriptors from /proc/self/fd) and ScopesIdle (a libp2p resource
//     manager's scopes back to zero).
//
// It is for tests only.
package invariants

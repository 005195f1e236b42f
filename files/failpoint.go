package files

// The failpoints a test build (-tags failpoint) can crash at, in the order
// a receiver meets them (RELIABILITY.md F11). Each sits between two steps
// whose order keeps N2 (a partial is never presented as complete) and the
// journal's promise (what it calls verified is on disk).
const (
	// FailpointEnv names the failpoint a binary built with -tags failpoint
	// crashes at: KITH_FAILPOINT=NAME or NAME:N (at its Nth hit; the first
	// by default). The process then sends itself SIGKILL, as abrupt as a
	// crash or kill -9: no deferred function runs and nothing more reaches
	// the disk. Without the tag the variable is ignored.
	FailpointEnv = "KITH_FAILPOINT"

	// FailAfterWrite: a verified chunk is written to the partial file but
	// neither synced nor journaled.
	FailAfterWrite = "files/after-write"
	// FailAfterSync: the partial files are synced, the journal not yet
	// updated with the chunks just synced.
	FailAfterSync = "files/after-sync"
	// FailBeforeRename: every chunk is verified and journaled, the item's
	// files sized, chmodded and fsynced; it is not renamed yet.
	FailBeforeRename = "files/before-rename"
	// FailAfterRename: the item is under its final name; the folder is not
	// fsynced and the transfer not recorded done.
	FailAfterRename = "files/after-rename"
	// FailBeforeDone: everything is in place and the folder fsynced; the
	// store does not say done yet.
	FailBeforeDone = "files/before-done"
)

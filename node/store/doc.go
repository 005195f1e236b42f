// Package store is kith's one embedded database, $KITH_HOME/kith.db: a
// SQLite file opened through the pure-Go driver modernc.org/sqlite (no cgo).
// It holds the contacts (petnames, trust, the block list), the direct
// messages, the file transfers, and the rooms we joined with their messages,
// and implements chat.Store, chat.RoomStore and files.Store. A private
// room's key is kept in the rooms table as it must be to rejoin the room
// after a restart; it is a secret, and the package never logs it or puts
// it in an error (the file is 0600 like the home).
//
// Every write is committed and synced to disk before the method returns
// (journal_mode=WAL, synchronous=FULL): chat acks a message only after
// AddIncoming returned, so an acked message survives kill -9 and power loss;
// files counts a chunk as verified only after UpdateTransfer stored it in the
// transfer's bitmap, so a transfer resumes where it really stopped.
//
// A transfer's manifest is kept in a table of its own and read only by
// Transfer and TransferByRemote: the bitmap and byte count, updated a few
// times a second during a transfer, are one UPDATE of a row that does not
// hold the manifest, and listings (Transfers) read neither the manifest nor
// the bitmap.
//
// A Store is safe for concurrent use. Writes go through one connection, so
// they queue in the process instead of failing with SQLITE_BUSY; reads use a
// pool of read-only connections and run alongside writes. Another process on
// the same file waits up to a busy timeout for its turn.
//
// The schema is a sequence of numbered SQL files (migrations/0001_init.sql,
// ...) embedded in the binary and applied in order, each in its own
// transaction, with PRAGMA user_version as the number applied. A file written
// by a newer kith (a higher user_version) is refused, never downgraded.
//
// The package is not a cache or a general key-value store, does not decide
// policy (who may message whom is the node's call, through chat's Authorize),
// keeps no state in memory beyond its connections, and knows nothing of the
// network: it never imports node, and chat and files reach it only through
// their store interfaces.
package store

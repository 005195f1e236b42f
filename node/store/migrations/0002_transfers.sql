-- kith.db schema 2: file transfers (files.Store).
-- Times are Unix milliseconds; IDs are the raw bytes of a files.TransferID.

-- One row per transfer, in or out. Columns follow files.Transfer, with two
-- exceptions for the sake of the frequent UpdateTransfer of verified and
-- done_bytes: the manifest lives in transfer_manifests, since SQLite rewrites
-- a whole row on every update; and verified is the last column, so listings,
-- which read only the columns before it, never touch its overflow pages.
CREATE TABLE transfers (
	id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
	remote_id  BLOB    CHECK (remote_id IS NULL OR length(remote_id) = 16), -- NULL: none (zero)
	peer_id    TEXT    NOT NULL,
	direction  TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
	state      TEXT    NOT NULL
		CHECK (state IN ('offered', 'active', 'paused', 'done', 'failed', 'rejected')),
	ticket     INTEGER NOT NULL CHECK (ticket IN (0, 1)),
	content_id BLOB    NOT NULL CHECK (length(content_id) = 32),
	secret     BLOB,
	sources    TEXT    CHECK (sources IS NULL OR json_valid(sources) AND json_type(sources) = 'array'),
	dir        TEXT    NOT NULL,
	names      TEXT    CHECK (names IS NULL OR json_valid(names) AND json_type(names) = 'array'),
	overwrite  INTEGER NOT NULL CHECK (overwrite IN (0, 1)),
	files      INTEGER NOT NULL CHECK (files >= 0),
	bytes      INTEGER NOT NULL CHECK (bytes >= 0),
	done_bytes INTEGER NOT NULL CHECK (done_bytes >= 0),
	path       TEXT    NOT NULL, -- 'direct', 'relayed' or ''
	relay      TEXT    NOT NULL, -- peer ID, or ''
	error      TEXT    NOT NULL,
	notified   INTEGER NOT NULL CHECK (notified IN (0, 1)),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	verified   BLOB -- bitmap of verified chunks, up to 64 KiB: keep it last
) STRICT;

-- The manifest of a transfer, exactly as on the wire; no row when
-- files.Transfer.Manifest is nil.
CREATE TABLE transfer_manifests (
	transfer_id BLOB NOT NULL PRIMARY KEY REFERENCES transfers (id) ON DELETE CASCADE,
	manifest    BLOB NOT NULL
) STRICT;

-- A peer offers a transfer once under its ID (TransferByRemote).
CREATE UNIQUE INDEX transfers_remote ON transfers (peer_id, remote_id)
	WHERE direction = 'in' AND remote_id IS NOT NULL;
-- Listings, newest first: all, by state (what to resume), by peer.
CREATE INDEX transfers_created ON transfers (created_at, id);
CREATE INDEX transfers_state ON transfers (state, created_at, id);
CREATE INDEX transfers_peer ON transfers (peer_id, created_at, id);

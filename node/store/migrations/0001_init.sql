-- kith.db schema 1: contacts and direct messages.
-- Times are Unix milliseconds. Peer IDs are in their text form ("12D3KooW...").

-- A row is a named contact, or (name NULL) a blocked stranger: a peer we
-- block without having named it.
CREATE TABLE contacts (
	peer_id  TEXT    NOT NULL PRIMARY KEY,
	name     TEXT    UNIQUE,
	addrs    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(addrs)), -- JSON array of multiaddr strings
	trusted  INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
	blocked  INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
	added_at INTEGER NOT NULL,
	CHECK (name IS NOT NULL OR blocked = 1)
) STRICT;

-- Direct messages, in and out. seq orders them (chat.Message.Seq); id is the
-- sender's random 16-byte message ID; sent_at is the sender's clock, stored_at
-- ours. Messages outlive their contact: peer_id is not a foreign key.
CREATE TABLE messages (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	id        BLOB    NOT NULL CHECK (length(id) = 16),
	peer_id   TEXT    NOT NULL,
	direction TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
	text      TEXT    NOT NULL,
	sent_at   INTEGER NOT NULL,
	state     TEXT    NOT NULL CHECK (state IN ('received', 'queued', 'delivered', 'failed')),
	stored_at INTEGER NOT NULL,
	UNIQUE (peer_id, direction, id), -- a retried message is stored once
	CHECK ((direction = 'in') = (state = 'received'))
) STRICT;

-- Our own IDs are unique, so an ack (MarkDelivered) names one message.
CREATE UNIQUE INDEX messages_out_id ON messages (id) WHERE direction = 'out';
CREATE INDEX messages_peer ON messages (peer_id, seq);
CREATE INDEX messages_outbox ON messages (peer_id, seq) WHERE state = 'queued';

-- kith.db schema 3: group rooms (chat.RoomStore).
-- Times are Unix milliseconds. Authors are the raw bytes of a peer ID, so that
-- SQLite orders them (memcmp) as Go orders peer.IDs, and ORDER BY follows
-- chat.RoomOrder exactly.

-- The rooms we are a member of. key is a private room's 32-byte key: a
-- secret, never logged or exported; NULL for an open room.
CREATE TABLE rooms (
	name      TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
	key       BLOB    CHECK (key IS NULL OR length(key) = 32),
	topic     TEXT    NOT NULL,
	joined_at INTEGER NOT NULL
) STRICT;

-- Room messages, ours and received, kept once per (room, author, seq). They
-- outlive their room: room is not a foreign key (leaving keeps the history).
-- id is the hex message ID ('' until our own message is published); raw the
-- signed pubsub message (NULL until published). The primary key's index
-- answers HighWater, HighWaters, HasRoomMessage, Unpublished and RoomGaps.
CREATE TABLE room_messages (
	room        TEXT    NOT NULL,
	author      BLOB    NOT NULL,
	seq         INTEGER NOT NULL CHECK (seq >= 1),
	id          TEXT    NOT NULL DEFAULT '',
	sent_at     INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	text        TEXT    NOT NULL,
	raw         BLOB,
	PRIMARY KEY (room, author, seq)
) STRICT;

-- Room order (chat.RoomOrder): listings, and the last N of them.
CREATE INDEX room_messages_order ON room_messages (room, sent_at, author, seq);

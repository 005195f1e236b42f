-- kith.db schema 4: room messages are ordered by clock (protocols, section
-- "Rooms", Order and clocks: a hybrid logical clock the author stamps),
-- not by sent_at, which is now only shown.
--
-- A message stored before has the clock a reader gives a version 1 message:
-- its sent_at, so the order it was shown in stays. The table is rebuilt
-- rather than altered so that clock has no default and is checked like seq.

CREATE TABLE room_messages_clock (
	room        TEXT    NOT NULL,
	author      BLOB    NOT NULL,
	seq         INTEGER NOT NULL CHECK (seq >= 1),
	id          TEXT    NOT NULL DEFAULT '',
	clock       INTEGER NOT NULL CHECK (clock >= 1),
	sent_at     INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	text        TEXT    NOT NULL,
	raw         BLOB,
	PRIMARY KEY (room, author, seq)
) STRICT;

INSERT INTO room_messages_clock (room, author, seq, id, clock, sent_at, received_at, text, raw)
	SELECT room, author, seq, id, max(sent_at, 1), sent_at, received_at, text, raw FROM room_messages;

DROP TABLE room_messages;
ALTER TABLE room_messages_clock RENAME TO room_messages;

-- Room order (chat.RoomOrder): listings, the last N of them, and the
-- highest clock held (what an author's next clock follows).
CREATE INDEX room_messages_order ON room_messages (room, clock, author, seq);

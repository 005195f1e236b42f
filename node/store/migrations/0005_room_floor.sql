-- kith.db schema 5: the clock below which a room's history is not wanted
-- (chat.RoomStore.SetRoomFloor): a member that joined a room that had spoken
-- for a while took only its recent past. Like a room's messages, it outlives
-- the room (leaving and joining again keeps it).
CREATE TABLE room_floors (
	room  TEXT    NOT NULL PRIMARY KEY,
	clock INTEGER NOT NULL CHECK (clock >= 1)
) STRICT;

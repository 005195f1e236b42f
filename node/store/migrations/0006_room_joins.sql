-- kith.db schema 6: the rooms whose recent past we began to take and have
-- not finished taking (chat.RoomStore.SetRoomJoining): a member stopped
-- before its first history answer takes the recent past when it starts
-- again, not the whole room. Like a room's floor, it outlives the room.
CREATE TABLE room_joins (
	room TEXT NOT NULL PRIMARY KEY
) STRICT;

// Package chat carries direct messages between colleagues and group rooms.
// It takes a host.Host (and for rooms a *pubsub.PubSub, made by NewPubSub)
// and its store interfaces; it never imports node or files.
//
// A direct message travels on its own stream protocol, /kith/dm/1.0.0 (wire
// format in package protocols). The sender is the stream's remote peer, never
// a field of the message. The receiver answers with an ack only after the
// message is durably stored, so "delivered" means it survives a crash of the
// receiver. A message to a peer that cannot be reached is kept in the outbox
// and retried with back-off, and at once when the peer connects; the
// receiver stores each message ID once, however often it is retried.
//
// chat does not decide who may message whom: the caller passes an Authorize
// function (contacts, block list) checked for every incoming stream and
// message.
//
// A room is a GossipSub topic (wire format in package protocols, section
// "Rooms"). RoomService joins rooms, validates every message before pubsub
// delivers or forwards it, stores each (room, author, seq) once with the
// signed pubsub message, and publishes ours after storing it. The author of
// a room message is its pubsub signer. A member that joins, comes back or
// sees a gap in an author's seqs asks another member for what it lacks over
// /kith/history/1.0.0 (section "Room history"), and verifies every message
// it gets again, signature and seal, before storing it. Every member shows
// a room's messages in one order (RoomOrder).
package chat

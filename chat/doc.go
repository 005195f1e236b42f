// Package chat carries direct messages between colleagues (and, later, group
// rooms). It takes a host.Host and a Store; it never imports node or files.
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
package chat

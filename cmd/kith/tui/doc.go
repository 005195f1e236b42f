// Package tui is kith's terminal chat UI (`kith chat`): a sidebar of rooms
// and direct-message conversations with unread counts, the selected
// conversation's messages, an input line with slash commands, incoming file
// offers, a transfers view and a status line.
//
// It talks only to a Backend, which node/api's *api.Client satisfies: list
// calls load the state, and the node's event stream keeps it live. It never
// touches libp2p, and everything a peer wrote is escaped before it reaches
// the terminal. It is not a general widget library: the layout and keys are
// kith's.
package tui

// Package api is kith's local control API and its typed client.
//
// A daemon serves HTTP+JSON on a unix socket, $KITH_HOME/kith.sock, mode
// 0600, so only its owner can reach it. Paths are versioned (/v1/...):
//
//	GET  /v1/id       node.Identity
//	GET  /v1/status   node.Status
//	POST /v1/ping     PingRequest in; NDJSON stream of node.PingResult out
//	GET  /v1/events   NDJSON stream of node.Event until the client hangs up
//	GET  /v1/contacts                 []node.ContactInfo
//	POST /v1/contacts                 ContactRequest in; node.ContactInfo out
//	DELETE /v1/contacts/{name}
//	POST /v1/contacts/{name}/trust    TrustRequest in
//	POST /v1/block                    BlockRequest in; BlockResponse out
//	POST /v1/messages                 SendRequest in; node.MessageInfo out (state delivered or queued)
//	GET  /v1/messages?from=&after=    []node.MessageInfo, oldest first
//	GET  /v1/transfers                []node.TransferInfo, newest first
//	GET  /v1/transfers/{id}           node.TransferInfo with its entries
//	POST /v1/transfers/send           SendFilesRequest in; node.TransferInfo out (state offered)
//	POST /v1/transfers/share          ShareRequest in; ShareResponse out (the ticket)
//	POST /v1/transfers/receive        ReceiveRequest in; node.TransferInfo out (fetch running)
//	POST /v1/transfers/{id}/accept    AcceptRequest in; node.TransferInfo out
//	POST /v1/transfers/{id}/reject    node.TransferInfo out
//	POST /v1/transfers/{id}/cancel    node.TransferInfo out
//	GET  /v1/rooms                    []node.RoomInfo, by name
//	POST /v1/rooms                    JoinRequest in; node.RoomInfo out
//	DELETE /v1/rooms/{name}           leave (the room's messages stay)
//	POST /v1/rooms/{name}/messages    RoomSendRequest in; node.RoomMessageInfo out
//	GET  /v1/rooms/{name}/messages?limit=N  []node.RoomMessageInfo, the last N (default all) in room order, oldest first
//	POST /v1/bench/copy               BenchCopyRequest in; node.BenchCopyResult out (KITH_BENCH=1 only)
//	GET  /v1/bench/stats              node.BenchStats (KITH_BENCH=1 only)
//
// A transfer {id} is its 32 hex digits or any unique prefix of at least 4;
// an ambiguous prefix is a bad_request naming the candidates. Paths and
// folders must be absolute: the daemon's working directory is not the
// client's. Transfers report progress as "transfer" events on /v1/events.
//
// A private room's secret travels only in POST /v1/rooms, over the 0600
// socket; the server never logs it, never answers with it, and forgets it
// once the key is derived. Room activity comes as "room" events (kinds
// message, joined, left). A room nobody joined is a not_found; joining a
// room again with another secret is a conflict.
//
// Errors are a JSON object {"error": "...", "code": "..."} with an HTTP
// status that matches the code. The Client is the only way the CLI and the
// TUI reach a node. When no daemon runs for a home, Embedded serves the same
// handler in-process over an in-memory listener, so both paths run the same
// code.
//
// The /v1/bench routes exist only on a daemon started with KITH_BENCH=1
// (node.WithBench), for the benchmarks in cmd/kith; elsewhere they are 404.
//
// The package does not own the node: it neither starts nor stops it.
package api

// Package chattest holds test helpers shared by chat's and node's tests:
//
//   - RoomStoreSuite, the conformance suite every chat.RoomStore must pass
//     (chat's in-memory store in its tests, node/store's SQLite store);
//   - benchmark helpers of the direct-message benchmarks: the round-trip
//     ceilings a DM is measured against (a libp2p ping, and one echo on a
//     new stream), and the latency and throughput reports.
//
// It is for tests only. Of kith it imports only chat and protocols, so
// chat's own tests use it from package chat_test (chat's internal tests
// cannot, as chattest imports chat).
package chattest

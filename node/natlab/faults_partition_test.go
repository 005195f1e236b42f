//go:build natlab

package natlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// Scenario F3 (RELIABILITY F3): three colleagues, each behind a cone NAT,
// share a room; a and b also write each other direct messages. a's router
// is cut off the public segment for 30 s, then healed. Everything written
// during the partition (room messages on both sides of it, direct messages
// both ways, which kith msg reports queued) is shown after the heal by
// every member, in each sender's order, exactly once, and the room carries
// new messages to everyone again: the GossipSub mesh re-formed, within the
// bound its 1-minute PRUNE back-off allows.

const (
	partitionFor  = 30 * time.Second
	partitionRoom = "ops"
	// roomMeetLimit bounds how long members take to find each other in
	// a room (rendezvous through the relay's DHT) and to see a message.
	roomMeetLimit = 60 * time.Second
	// healLimit bounds the recovery after the heal: a GossipSub PRUNE
	// back-off (1 min) plus the outbox's and history's retries.
	healLimit = 100 * time.Second
	// roomPace spaces the messages written during the partition, so that
	// they fall before and after the connections notice it.
	roomPace = 6 * time.Second
)

// partitionChat is the world of TestF3PartitionThenHeal, with its room and
// direct-message helpers.
type partitionChat struct{ *world }

func TestF3PartitionThenHeal(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c"}
	w := partitionChat{newWorld(t, both, HostSpec{Name: "relay"},
		HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone}, HostSpec{Name: "c", NAT: Cone})}
	w.startRelay("relay", w.colleagues(names...)...)
	for _, n := range names {
		w.startPeer(n)
	}
	w.introduce("a", "b")
	w.mustReserve(reserveLimit, names...)
	for _, n := range names {
		w.lab.MustRun(w.lab.Host(n), "room", "join", partitionRoom)
	}
	w.waitMembers(roomMeetLimit, len(names)-1, names...)

	room := map[string][]string{} // author → room texts, in the order written
	dms := map[string][]string{}  // sender → direct message texts, in order
	for _, n := range names {
		w.lab.MustRun(w.lab.Host(n), "room", "send", partitionRoom, n+": before")
		room[n] = append(room[n], n+": before")
	}
	if d, ok := w.waitRoom(roomMeetLimit, names, room); !ok {
		t.Fatalf("the room did not carry the first messages to every member within %v", d)
	}
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
		text := p[0] + " to " + p[1] + ": before"
		if out := strings.TrimSpace(w.lab.MustRun(w.lab.Host(p[0]), "msg", p[1], text)); out != "delivered" {
			t.Fatalf("%s's message to %s before the partition: %q, want delivered", p[0], p[1], out)
		}
		dms[p[0]] = append(dms[p[0]], text)
	}

	f := w.lab.Partition(w.lab.Host("a"))
	during := w.writeDuring(f.At.Add(partitionFor), room, dms)
	// Before the heal: nothing crossed the partition.
	for _, n := range names {
		got := w.roomTexts(n)
		for _, other := range names {
			if (n == "a") == (other == "a") {
				continue
			}
			for _, text := range during.room[other] {
				if got[text] {
					t.Fatalf("%s shows %q, written by %s during the partition, before the heal", n, text, other)
				}
			}
		}
	}
	for _, r := range during.dmResults {
		if r != "queued" {
			t.Fatalf("a direct message written during the partition: kith msg said %q, want queued", r)
		}
	}
	if n := f.Packets(); n == 0 {
		t.Fatalf("the partition dropped no packet")
	}
	f.Lift()

	tRoom, ok := w.waitRoom(healLimit, names, room)
	if !ok {
		w.dumpRoom(names)
		w.lab.Dump("room messages missing after the heal")
		t.Fatalf("%v after the heal, not every member shows every room message", tRoom)
	}
	tDM, ok := w.waitDMs(healLimit, dms)
	if !ok {
		t.Fatalf("%v after the heal, the direct messages written during the partition are not all delivered", tDM)
	}
	// The mesh re-formed: a message written now reaches every member live,
	// each member seeing at least one other. A member may stay connected
	// to the room through one other until its next scheduled rendezvous
	// lookup (up to 5 min; at once only when its room is empty): the
	// room is connected, and what is written reaches everyone.
	for _, n := range names {
		w.lab.MustRun(w.lab.Host(n), "room", "send", partitionRoom, n+": after")
		room[n] = append(room[n], n+": after")
	}
	after := time.Now()
	tMesh, ok := w.waitRoom(healLimit, names, room)
	if !ok {
		w.dumpRoom(names)
		w.lab.Dump("no live room delivery after the heal")
		t.Fatalf("messages written %v after the heal did not reach every member within %v", after.Sub(f.Lifted), tMesh)
	}
	members := w.waitMembers(healLimit, 1, names...)

	// Exactly once, in each sender's order (N6), on every member.
	for _, n := range names {
		w.checkRoomLog(n, room)
		w.checkInbox(n, dms)
	}
	total := 0
	for _, texts := range room {
		total += len(texts)
	}
	t.Logf("natlab: F3 partition %v, %d packets dropped: %d room messages (%d during) on all 3 members %v after the heal, "+
		"%d direct messages (%d during, queued) delivered %v after the heal, new messages everywhere %v after being written; "+
		"members seen by a, b, c: %d, %d, %d; direct connections got back by redialling: %d",
		partitionFor, f.Packets(), total, during.roomCount, tRoom.Round(time.Millisecond), len(dms["a"])+len(dms["b"]),
		len(during.dmResults), tDM.Round(time.Millisecond), tMesh.Round(time.Millisecond), members["a"], members["b"], members["c"],
		w.logCount(names, `msg="direct connection back"`))
}

// dumpRoom logs, for a failure, how each member is connected and what it
// sees of the room.
func (w partitionChat) dumpRoom(names []string) {
	w.t.Helper()
	for _, n := range names {
		st, _ := w.status(n)
		var peers []string
		for _, p := range st.Peers {
			peers = append(peers, fmt.Sprintf("%s %s %s", w.nameOf(p.PeerID), p.Path, p.Addr))
		}
		r, _ := w.lab.TryRun(w.lab.Host(n), "room", "ls", "--json")
		w.t.Logf("%s: relays %v, peers %v; rooms %s", n, st.Relays, peers, strings.TrimSpace(r.Stdout))
	}
}

// logCount counts the lines of the named daemons' standard error that
// contain what.
func (w partitionChat) logCount(names []string, what string) int {
	n := 0
	for _, name := range names {
		n += strings.Count(w.daemonProc(name).Logs(), what)
	}
	return n
}

// partitionWrites is what the members wrote during the partition.
type partitionWrites struct {
	room      map[string][]string // author → room texts
	roomCount int
	dmResults []string // what kith msg said for each direct message
}

// writeDuring has every member write room messages, roomPace apart, and a
// and b two direct messages each to the other, until end; it appends what
// was written to room and dms (in each sender's order) and returns it.
func (w partitionChat) writeDuring(end time.Time, room, dms map[string][]string) partitionWrites {
	w.t.Helper()
	var mu sync.Mutex
	var errs []error
	out := partitionWrites{room: map[string][]string{}}
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c"} {
		wg.Go(func() {
			for i := 1; ; i++ {
				text := fmt.Sprintf("%s: during %d", n, i)
				r, err := w.lab.TryRun(w.lab.Host(n), "room", "send", partitionRoom, text)
				mu.Lock()
				if err == nil && r.Code != 0 {
					err = fmt.Errorf("%s: kith room send during the partition: exit %d: %s", n, r.Code, r.Stderr)
				}
				if err != nil {
					errs = append(errs, err)
				} else {
					room[n] = append(room[n], text)
					out.room[n] = append(out.room[n], text)
					out.roomCount++
				}
				mu.Unlock()
				if err != nil || time.Until(end) < roomPace+time.Second {
					return
				}
				time.Sleep(roomPace) // load pacing, not synchronisation
			}
		})
	}
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Go(func() {
			for i := 1; i <= 2; i++ {
				text := fmt.Sprintf("%s to %s: during %d", p[0], p[1], i)
				r, err := w.lab.TryRun(w.lab.Host(p[0]), "msg", p[1], text)
				mu.Lock()
				if err == nil && r.Code != 0 {
					err = fmt.Errorf("%s: kith msg during the partition: exit %d: %s", p[0], r.Code, r.Stderr)
				}
				if err != nil {
					errs = append(errs, err)
				} else {
					dms[p[0]] = append(dms[p[0]], text)
					out.dmResults = append(out.dmResults, strings.TrimSpace(r.Stdout))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		w.t.Fatal(err)
	}
	if time.Now().After(end) {
		w.t.Fatalf("writing during the partition took past its end (%v late): the heal would come late", time.Since(end))
	}
	time.Sleep(time.Until(end)) // the partition lasts its full time (the fault's duration)
	return out
}

// roomLog is name's kith room log --json.
func (w partitionChat) roomLog(name string) []node.RoomMessageInfo {
	w.t.Helper()
	out := w.lab.MustRun(w.lab.Host(name), "room", "log", partitionRoom, "--json")
	var ms []node.RoomMessageInfo
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m node.RoomMessageInfo
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			w.t.Fatalf("kith room log --json: %v\n%s", err, out)
		}
		ms = append(ms, m)
	}
	return ms
}

// roomTexts is the set of texts name's room log shows.
func (w partitionChat) roomTexts(name string) map[string]bool {
	got := map[string]bool{}
	for _, m := range w.roomLog(name) {
		got[m.Text] = true
	}
	return got
}

// waitRoom waits until every member in names shows every text of want, and
// returns how long that took; on a timeout, missing says what each member
// lacked at the last look.
func (w partitionChat) waitRoom(timeout time.Duration, names []string, want map[string][]string) (took time.Duration, ok bool) {
	var missing map[string][]string
	took, ok = waitFor(timeout, 500*time.Millisecond, func() bool {
		missing = map[string][]string{}
		for _, n := range names {
			got := w.roomTexts(n)
			for _, texts := range want {
				for _, text := range texts {
					if !got[text] {
						missing[n] = append(missing[n], text)
					}
				}
			}
		}
		return len(missing) == 0
	})
	if !ok {
		w.t.Logf("room messages missing after %v: %v", took, missing)
	}
	return took, ok
}

// waitMembers waits until each of names sees at least least other members
// in the room (kith room ls --json), and returns how many each saw.
func (w partitionChat) waitMembers(timeout time.Duration, least int, names ...string) map[string]int {
	w.t.Helper()
	seen := map[string]int{}
	var last []node.RoomInfo
	for _, n := range names {
		_, ok := waitFor(timeout, pollEvery, func() bool {
			r, err := w.lab.TryRun(w.lab.Host(n), "room", "ls", "--json")
			if err != nil || r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &last) != nil {
				return false
			}
			for _, ri := range last {
				if ri.Name == partitionRoom {
					seen[n] = ri.Members
					return ri.Members >= least
				}
			}
			return false
		})
		if !ok {
			w.t.Fatalf("%s does not see %d other members of %s within %v: %+v", n, least, partitionRoom, timeout, last)
		}
	}
	return seen
}

// waitDMs waits until every direct message of dms is in its receiver's
// inbox and shown delivered in its sender's.
func (w partitionChat) waitDMs(timeout time.Duration, dms map[string][]string) (time.Duration, bool) {
	other := map[string]string{"a": "b", "b": "a"}
	return waitFor(timeout, 500*time.Millisecond, func() bool {
		for from, texts := range dms {
			sent, got := map[string]string{}, map[string]bool{}
			for _, m := range w.inbox(from) {
				sent[m.Text] = m.State
			}
			for _, m := range w.inbox(other[from]) {
				got[m.Text] = true
			}
			for _, text := range texts {
				if sent[text] != "delivered" || !got[text] {
					return false
				}
			}
		}
		return true
	})
}

// nameOf is the host name of peer ID id.
func (w partitionChat) nameOf(id string) string {
	for n, pid := range w.ids {
		if pid == id {
			return n
		}
	}
	return id
}

// checkRoomLog checks name's room log against what each author wrote:
// every message once, in its author's order (N6), and no ID twice.
func (w partitionChat) checkRoomLog(name string, want map[string][]string) {
	w.t.Helper()
	ids := map[string]bool{}
	var transcript []invariants.Said[string, string]
	for _, m := range w.roomLog(name) {
		if ids[m.ID] {
			w.t.Errorf("%s shows room message %s (%q) twice", name, m.ID, m.Text)
		}
		ids[m.ID] = true
		transcript = append(transcript, invariants.Said[string, string]{From: w.nameOf(m.From), Msg: m.Text})
	}
	invariants.PerSenderOrder(w.t, want, transcript)
}

// checkInbox checks name's conversation: every direct message to or from
// it once, in its sender's order (N6), no ID twice, and its own delivered.
func (w partitionChat) checkInbox(name string, dms map[string][]string) {
	w.t.Helper()
	want := map[string][]string{}
	for from, texts := range dms {
		for _, text := range texts {
			if from == name || strings.Contains(text, " to "+name+":") {
				want[from] = append(want[from], text)
			}
		}
	}
	ids := map[string]bool{}
	var transcript []invariants.Said[string, string]
	for _, m := range w.inbox(name) {
		if ids[m.ID] {
			w.t.Errorf("%s shows direct message %s (%q) twice", name, m.ID, m.Text)
		}
		ids[m.ID] = true
		if m.From == w.ids[name] && m.State != "delivered" {
			w.t.Errorf("%s's message %q is %s, want delivered", name, m.Text, m.State)
		}
		transcript = append(transcript, invariants.Said[string, string]{From: w.nameOf(m.From), Msg: m.Text})
	}
	invariants.PerSenderOrder(w.t, want, transcript)
}

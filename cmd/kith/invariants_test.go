package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// homeCheck is the nothing-lost check of a CLI test (RELIABILITY.md §4.4)
// over kith homes, through what a user reads: `kith inbox --json` and
// `kith room log --json`, run when the test ends (against the home's
// daemon if it still runs, else on an embedded node).
//
//   - N3: every direct message one home has delivered (acked) is in its
//     receiver's inbox exactly once, with the text and sent_at sent;
//   - N6: each inbox, read one sender at a time, is in the order sent, none
//     twice; each room log holds every author's messages in seq order, as
//     written, none twice.
//
// N7 for the daemons is the node package's (their goroutines, descriptors
// and scopes); here NoLeaks checks the test process's own.
type homeCheck struct {
	t     *testing.T
	mu    sync.Mutex
	homes []string
}

// checkHomes checks N3 and N6 over homes when the test ends; add more
// homes with add.
func checkHomes(t *testing.T, homes ...string) *homeCheck {
	t.Helper()
	c := &homeCheck{t: t, homes: homes}
	t.Cleanup(c.check)
	return c
}

// add adds a home to the check.
func (c *homeCheck) add(home string) {
	c.mu.Lock()
	c.homes = append(c.homes, home)
	c.mu.Unlock()
}

// kithJSON runs kith on home (the test's context has ended) and decodes
// each line of its output as a T.
func kithJSON[T any](t *testing.T, home string, args ...string) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, kithBin, append([]string{"--home", home}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Errorf("invariants: kith %v on %s: %v\n%s", args, home, err, errb.String())
		return nil
	}
	var vs []T
	dec := json.NewDecoder(&out)
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Errorf("invariants: kith %v: %v", args, err)
			return nil
		}
		vs = append(vs, v)
	}
	return vs
}

// what one home shows.
type shown struct {
	id    string
	inbox []node.MessageInfo
	rooms map[string][]node.RoomMessageInfo
}

func (c *homeCheck) check() {
	t := c.t
	if t.Failed() {
		return
	}
	c.mu.Lock()
	homes := slices.Clone(c.homes)
	c.mu.Unlock()
	var all []shown
	for _, h := range homes {
		ids := kithJSON[node.Identity](t, h, "id", "--json")
		if len(ids) != 1 {
			return
		}
		s := shown{id: ids[0].PeerID, inbox: kithJSON[node.MessageInfo](t, h, "inbox", "--json"),
			rooms: map[string][]node.RoomMessageInfo{}}
		for _, rs := range kithJSON[[]node.RoomInfo](t, h, "room", "ls", "--json") {
			for _, r := range rs {
				s.rooms[r.Name] = kithJSON[node.RoomMessageInfo](t, h, "room", "log", r.Name, "--json")
			}
		}
		all = append(all, s)
	}
	checkInboxes(t, all)
	checkRoomLogs(t, all)
}

func checkInboxes(t *testing.T, all []shown) {
	type line struct{ id, text string }
	lineOf := func(m node.MessageInfo) line {
		return line{m.ID, m.Text + " @" + m.SentAt.UTC().Format(time.RFC3339Nano)}
	}
	for _, from := range all {
		sentTo, ackedBy := map[string][]line{}, map[string][]line{}
		for _, m := range from.inbox {
			if m.From == from.id {
				sentTo[m.To] = append(sentTo[m.To], lineOf(m))
				if m.State == "delivered" {
					ackedBy[m.To] = append(ackedBy[m.To], lineOf(m))
				}
			}
		}
		for _, to := range all {
			if to.id == from.id {
				continue
			}
			var stored []line
			var transcript []invariants.Said[string, line]
			for _, m := range to.inbox {
				if m.From == from.id && m.To == to.id {
					stored = append(stored, lineOf(m))
					transcript = append(transcript, invariants.Said[string, line]{From: from.id, Msg: lineOf(m)})
				}
			}
			invariants.ExactlyOnce(t, stored, ackedBy[to.id])                                // N3
			invariants.InSentOrder(t, map[string][]line{from.id: sentTo[to.id]}, transcript) // N6
		}
	}
}

func checkRoomLogs(t *testing.T, all []shown) {
	type line struct {
		seq  uint64
		text string
	}
	wrote := map[string]map[string][]line{} // room -> author -> lines
	for _, s := range all {
		for room, ms := range s.rooms {
			for _, m := range ms {
				if m.Mine {
					if wrote[room] == nil {
						wrote[room] = map[string][]line{}
					}
					wrote[room][s.id] = append(wrote[room][s.id], line{m.Seq, m.Text})
				}
			}
		}
	}
	for _, byAuthor := range wrote {
		for _, ls := range byAuthor {
			slices.SortFunc(ls, func(a, b line) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	for _, s := range all {
		for room, ms := range s.rooms {
			var transcript []invariants.Said[string, line]
			var keys []string
			for _, m := range ms {
				keys = append(keys, fmt.Sprintf("%s #%d", m.From, m.Seq))
				if _, known := wrote[room][m.From]; known {
					transcript = append(transcript, invariants.Said[string, line]{From: m.From, Msg: line{m.Seq, m.Text}})
				}
			}
			invariants.ExactlyOnce(t, keys, nil)               // none twice
			invariants.InSentOrder(t, wrote[room], transcript) // N6
		}
	}
}

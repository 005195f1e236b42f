package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kithnet/kith/protocols/invariants"
)

// TestCLIResumeAfterKill9: either daemon is killed with SIGKILL while a
// transfer is moving; nothing appears under its final name, and once the
// daemon is started again the transfer completes by itself, byte for byte.
// (When the sender dies on a QUIC connection, nothing tells the receiver:
// its read waits out the 30 s frame deadline before the fetch resumes.)
func TestCLIResumeAfterKill9(t *testing.T) {
	for _, victim := range []string{"receiver", "sender"} {
		t.Run(victim, func(t *testing.T) {
			c := startColleagues(t)
			src := randomFile(t, t.TempDir(), "big.bin", 96<<20)
			follow := startKith(t, c.ben, "transfers", "--follow", "--json")
			follow.waitStderr(t, "following transfers")
			send, offer := offerTo(t, c, src)
			dir := t.TempDir()
			mustRun(t, c.ben, "transfers", "accept", offer.ID, "--dir", dir)
			follow.event(t, func(ev transferLine) bool { return ev.ID == offer.ID && ev.DoneBytes > 0 })

			home, d := c.ben, c.benD
			if victim == "sender" {
				home, d = c.ana, c.anaD
			}
			d.kill()
			assertOnlyPartials(t, dir)
			invariants.CheckFinals(t, dir, invariants.SumTree(t, src)) // N2
			restarted := startDaemon(t, home, "daemon", "--bootstrap", c.boot)
			if victim == "sender" {
				c.anaD = restarted
				send.wait(t) // its daemon died under it
			} else {
				c.benD = restarted
				if code, _ := send.wait(t); code != 0 {
					t.Fatalf("send exited %d\nstderr: %s", code, send.stderr())
				}
			}
			waitDone(t, c.ben, offer.ID)
			sameBytes(t, src, filepath.Join(dir, "big.bin"))
			invariants.SameFile(t, src, filepath.Join(dir, "big.bin")) // N1
			assertOnlyPartials(t, dir, "big.bin")
		})
	}
}

// waitDone follows home's transfer id until it is done.
func waitDone(t *testing.T, home, id string) {
	t.Helper()
	follow := startKith(t, home, "transfers", "--follow", "--json")
	follow.waitStderr(t, "following transfers")
	for _, tr := range decodeJSON[[]transferLine](t, mustRun(t, home, "transfers", "--json")) {
		if tr.ID == id && tr.State == "done" {
			return
		}
	}
	ev := follow.event(t, func(ev transferLine) bool {
		return ev.ID == id && (ev.State == "done" || ev.State == "failed")
	})
	if ev.State != "done" {
		t.Fatalf("transfer ended %s: %s", ev.State, ev.Error)
	}
}

// assertOnlyPartials fails unless dir holds nothing but *.kith-partial
// entries and the names in final (N2).
func assertOnlyPartials(t *testing.T, dir string, final ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".kith-partial") && !slices.Contains(final, name) {
			t.Errorf("%s is in place before the transfer completed", name)
		}
		if strings.HasSuffix(name, ".kith-partial") && len(final) > 0 {
			t.Errorf("%s left behind after the transfer completed", name)
		}
	}
}

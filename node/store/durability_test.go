//go:build unix

package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// helperEnv switches TestHelperWriter on: it holds the database path.
const helperEnv = "KITH_STORE_HELPER_DB"

// helperPeer is the sender of every message the helper stores.
const helperPeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

// TestDurableAfterKill runs a writer process that prints each message ID
// right after AddIncoming returned — the moment chat would ack it — kills it
// with SIGKILL at an arbitrary point, and checks that every printed ID is in
// the database exactly once and the file is intact. Three rounds on one
// file, so recovery from a killed writer is itself followed by a kill.
func TestDurableAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	var acked []string
	for round := range 3 {
		ids := killWriter(t, path, 40+round*30)
		t.Logf("round %d: %d acked before the kill landed", round+1, len(ids))
		acked = append(acked, ids...)
		checkAcked(t, path, acked)
	}
}

// killWriter starts the helper on path, SIGKILLs it after it acked n
// messages, and returns every ID it printed, including those printed between
// the kill and its delivery.
func killWriter(t *testing.T, path string, n int) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			ids = append(ids, id)
		}
		if len(ids) == n {
			cmd.Process.Kill() // SIGKILL
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !killed(exit) || len(ids) < n {
		t.Fatalf("helper: %v after %d acks, want killed after %d; stderr:\n%s", err, len(ids), n, stderr.Bytes())
	}
	return ids
}

func killed(exit *exec.ExitError) bool {
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// checkAcked reopens path and checks each acked ID is stored exactly once and
// the file passes integrity_check.
func checkAcked(t *testing.T, path string, acked []string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	if got := pragma(ctx, t, s.r, "integrity_check"); got != "ok" {
		t.Fatalf("integrity_check: %s", got)
	}
	for _, hex := range acked {
		id, err := chat.ParseMessageID(hex)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE id = ?`, id[:]).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("acked message %s stored %d times (%v), want once", hex, n, err)
		}
	}
}

// TestHelperWriter is the child process of TestDurableAfterKill; it does
// nothing in a normal run. It stores messages one by one and prints each ID
// once AddIncoming returned, until it is killed (or has written 100000).
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("child process of TestDurableAfterKill")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.Decode(helperPeer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		m := msg(p, fmt.Sprintf("message %d", i))
		mustAddIncoming(t, s, m)
		// Unbuffered: the line is in the pipe before the next write starts.
		if _, err := fmt.Fprintf(os.Stdout, "acked %s\n", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

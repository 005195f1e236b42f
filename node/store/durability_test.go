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
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/libp2p/go-libp2p/core/peer"
)

// helperEnv switches TestHelperWriter on: it holds the database path.
const helperEnv = "KITH_STORE_HELPER_DB"

// helperModeEnv says what TestHelperWriter writes: messages (empty) or
// updates of one transfer ("transfer").
const helperModeEnv = "KITH_STORE_HELPER_MODE"

// helperTransfer is the ID of the transfer the helper updates.
var helperTransfer = files.TransferID{'k', 'i', 't', 'h', '-', 'd', 'u', 'r', 'a', 'b', 'l', 'e'}

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
		ids := killWriter(t, path, "", 40+round*30)
		t.Logf("round %d: %d acked before the kill landed", round+1, len(ids))
		acked = append(acked, ids...)
		checkAcked(t, path, acked)
	}
}

// killWriter starts the helper on path in mode, SIGKILLs it after it acked
// n writes, and returns what it printed after each "acked ", including what
// it printed between the kill and its delivery.
func killWriter(t *testing.T, path, mode string, n int) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path, helperModeEnv+"="+mode)
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

// reopen opens path after a kill and checks the file passes
// integrity_check.
func reopen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	if got := pragma(t.Context(), t, s.r, "integrity_check"); got != "ok" {
		s.Close()
		t.Fatalf("integrity_check: %s", got)
	}
	return s
}

// checkAcked reopens path and checks each acked ID is stored exactly once and
// the file passes integrity_check.
func checkAcked(t *testing.T, path string, acked []string) {
	t.Helper()
	s := reopen(t, path)
	defer s.Close()
	ctx := t.Context()
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

// TestHelperWriter is the child process of TestDurableAfterKill and
// TestTransferDurableAfterKill; it does nothing in a normal run. It writes
// until it is killed, printing a line after each write returned.
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
	if os.Getenv(helperModeEnv) == "transfer" {
		updateMany(t, s, p)
	} else {
		addMany(t, s, p)
	}
	s.Close()
}

// addMany stores messages one by one and prints each ID once AddIncoming
// returned, until it has written 100000.
func addMany(t *testing.T, s *Store, p peer.ID) {
	for i := range 100_000 {
		m := msg(p, fmt.Sprintf("message %d", i))
		mustAddIncoming(t, s, m)
		// Unbuffered: the line is in the pipe before the next write starts.
		if _, err := fmt.Fprintf(os.Stdout, "acked %s\n", m.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTransferDurableAfterKill does for UpdateTransfer what
// TestDurableAfterKill does for messages: a helper updates one transfer's
// 64 KiB bitmap and DoneBytes, one more chunk each time, printing DoneBytes
// once UpdateTransfer returned — the moment files would count the chunk as
// verified. After each kill, DoneBytes is at least the last printed value,
// and the bitmap has exactly DoneBytes leading bits set: both were written
// by one statement.
func TestTransferDurableAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	for round := range 2 {
		acked := killWriter(t, path, "transfer", 40+round*30)
		t.Logf("round %d: %d updates acked before the kill landed", round+1, len(acked))
		checkTransferAcked(t, path, acked[len(acked)-1])
	}
}

// checkTransferAcked reopens path and checks the helper's transfer has the
// update that printed last.
func checkTransferAcked(t *testing.T, path, last string) {
	t.Helper()
	s := reopen(t, path)
	defer s.Close()
	tr, err := s.Transfer(t.Context(), helperTransfer)
	if err != nil {
		t.Fatal(err)
	}
	acked, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if tr.DoneBytes < acked {
		t.Errorf("DoneBytes %d after the kill; %d was acked", tr.DoneBytes, acked)
	}
	for i := range int64(len(tr.Verified)) * 8 {
		if set := tr.Verified[i/8]&(1<<(i%8)) != 0; set != (i < tr.DoneBytes) {
			t.Fatalf("DoneBytes %d, but bit %d is set: %v", tr.DoneBytes, i, set)
		}
	}
}

// updateMany marks the chunks of the helper's transfer verified one by one,
// printing DoneBytes once each UpdateTransfer returned, until the bitmap is
// full.
func updateMany(t *testing.T, s *Store, p peer.ID) {
	ctx := t.Context()
	tr, err := s.Transfer(ctx, helperTransfer)
	if errors.Is(err, files.ErrNoTransfer) {
		tr = newTransfer(p, files.In)
		tr.ID, tr.Verified = helperTransfer, make([]byte, 64<<10)
		err = s.CreateTransfer(ctx, tr)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := tr.DoneBytes; i < int64(len(tr.Verified))*8; i++ {
		tr.Verified[i/8] |= 1 << (i % 8)
		done := i + 1
		if err := s.UpdateTransfer(ctx, tr.ID, files.Update{DoneBytes: &done, Verified: tr.Verified}); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(os.Stdout, "acked %d\n", done); err != nil {
			t.Fatal(err)
		}
	}
}

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/kithnet/kith/node/store"
	"github.com/kithnet/kith/protocols/invariants"
	"golang.org/x/sys/unix"
)

// tmpfsSize is the size of the file system TestF6DiskFull receives on.
const tmpfsSize = 64 << 20

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends. It needs root (CI runs as root); without
// it the test is skipped, saying so. The mount is made in the test's own
// mount namespace under its temporary directory (a Go process cannot
// unshare its mount namespace: its threads share their fs) and detached in
// t.Cleanup, even after a failure.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("F6 needs root to mount a size-limited tmpfs (CI runs as root; sudo go test -run F6 ./cmd/kith/ here)")
	}
	dir := t.TempDir()
	if err := unix.Mount("kith-f6", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes path until the file system is full (ENOSPC).
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	mustOK(t, err)
	defer f.Close()
	var n int64
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, size)
		for {
			k, err := f.Write(buf)
			n += int64(k)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			mustOK(t, err)
		}
	}
	return n
}

// TestF6DiskFull: F6 on a real 64 MiB tmpfs holding ben's home (its
// database) and his download folder. An offer that does not fit is
// refused when accepted, with a clear message, writing nothing (N5). A
// transfer that fits is accepted; once it is moving, ana is stopped
// (SIGSTOP) and the disk filled to the last byte; when she continues, ben's
// next write fails with ENOSPC: the transfer pauses saying the disk is
// full, the partial is kept and never renamed (N2). Space freed, it
// resumes by itself and completes (N1), and ben's database passes SQLite's
// integrity_check.
func TestF6DiskFull(t *testing.T) {
	disk := mountTmpfs(t, tmpfsSize)
	recv := filepath.Join(disk, "recv")
	mustOK(t, os.Mkdir(recv, 0o700))
	p := &faultPair{aHome: faultHome(t, ""), bHome: filepath.Join(disk, "home")}
	writeFile(t, filepath.Join(p.bHome, "config.toml"), "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = false\nport_mapping = false\n")
	p.a = startDaemonEnv(t, p.aHome, []string{"KITH_BENCH=1"}, "daemon")
	p.b = startDaemonEnv(t, p.bHome, nil, "daemon")
	p.ac, p.bc = dialAPI(t, p.aHome), dialAPI(t, p.bHome)
	ctx := t.Context()
	aid, err := p.ac.Identity(ctx)
	mustOK(t, err)
	bid, err := p.bc.Identity(ctx)
	mustOK(t, err)
	_, err = p.ac.AddContact(ctx, "ben", bid.Ticket)
	mustOK(t, err)
	_, err = p.bc.AddContact(ctx, "ana", aid.Ticket) // not trusted: every offer waits
	mustOK(t, err)

	// Pre-flight: 80 MiB do not fit in 64.
	huge := randomFile(t, t.TempDir(), "huge.bin", 80<<20)
	_, err = p.ac.SendFiles(ctx, "ben", []string{huge})
	mustOK(t, err)
	offer := p.incoming(t)
	before := invariants.Snapshot(t, recv)
	r := run(t, p.bHome, "transfers", "accept", offer, "--dir", recv)
	if r.code == 0 || !strings.Contains(r.stderr, "not enough free space") {
		t.Errorf("accepting 80 MiB into 64: exit %d, stderr %q; want a failure saying there is not enough free space", r.code, r.stderr)
	}
	invariants.AssertNothingUnder(t, before, recv) // N5
	if tr, err := p.bc.Transfer(ctx, offer); err != nil || tr.State != "offered" {
		t.Errorf("the refused offer is %s (%v); want it still offered", tr.State, err)
	}
	t.Logf("pre-flight: %s", strings.TrimSpace(r.stderr))
	_, err = p.bc.RejectTransfer(ctx, offer)
	mustOK(t, err)

	// Mid-transfer: 32 MiB fit, until the disk fills.
	src := randomFile(t, t.TempDir(), "big.bin", 32<<20)
	sums := invariants.SumTree(t, src)
	out, err := p.ac.SendFiles(ctx, "ben", []string{src})
	mustOK(t, err)
	in := p.incomingOffered(t, offer)
	base := writtenBytes(t, p.b.cmd.Process.Pid)
	bEvents := followTransfers(t, p.bc)
	_, err = p.bc.AcceptTransfer(ctx, in, recv, false)
	mustOK(t, err)
	pollUntil(t, "ben writing", func() bool { return writtenBytes(t, p.b.cmd.Process.Pid)-base >= 4<<20 })
	mustOK(t, p.a.cmd.Process.Signal(syscall.SIGSTOP))
	filler := filepath.Join(disk, "filler")
	filled := fillDisk(t, filler)
	mustOK(t, p.a.cmd.Process.Signal(syscall.SIGCONT))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ben:\n%s", p.b.logs())
		}
	})
	paused := waitEvent(t, bEvents, in, "paused")
	t.Logf("disk filled with %.1f MiB more; ben paused at %.1f MiB: %s", mib(filled), mib(paused.DoneBytes), paused.Error)
	if !containsFold(paused.Error, "disk full", "disk is full", "no space") {
		t.Errorf("paused with %q; want it to say the disk is full", paused.Error)
	}
	partials := invariants.CheckFinals(t, recv, sums) // N2
	if len(partials) != 1 || partials[0] != "big.bin"+files.PartialSuffix {
		t.Errorf("with the disk full the folder holds partials %v; want big.bin%s", partials, files.PartialSuffix)
	}

	mustOK(t, os.Remove(filler)) // space freed: the retrier resumes
	waitTransfer(t, p.ac, out.ID, "done")
	waitTransfer(t, p.bc, in, "done")
	invariants.SameFile(t, src, filepath.Join(recv, "big.bin")) // N1
	if left := invariants.CheckFinals(t, recv, sums); len(left) > 0 {
		t.Errorf("partials left behind: %v", left)
	}
	p.b.stop(t)
	checkIntegrity(t, filepath.Join(p.bHome, store.File))
}

// followTransfers follows c's transfer events until the test ends.
func followTransfers(t *testing.T, c *api.Client) <-chan node.TransferInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, ready, done := make(chan node.TransferInfo, 1<<12), make(chan struct{}), make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = c.Events(ctx, func() { close(ready) }, func(ev node.Event) error {
			if ev.Type == node.EventTransfer && ev.Transfer != nil {
				select {
				case ch <- *ev.Transfer:
				default:
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-done:
		t.Fatalf("event stream: %v", err)
	}
	return ch
}

// waitEvent waits for an event saying transfer id is in state.
func waitEvent(t *testing.T, ch <-chan node.TransferInfo, id, state string) node.TransferInfo {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		select {
		case tr := <-ch:
			if tr.ID == id && tr.State == state {
				return tr
			}
		case <-deadline:
			t.Fatalf("no event within %s saying transfer %s is %s", waitBound, id, state)
		}
	}
}

// incomingOffered waits for an incoming transfer of ben's other than
// except, and returns its ID.
func (p *faultPair) incomingOffered(t *testing.T, except string) string {
	t.Helper()
	var id string
	pollUntil(t, "a second offer", func() bool {
		ts, err := p.bc.Transfers(t.Context())
		for _, tr := range ts {
			if tr.Direction == "in" && tr.ID != except && tr.State == "offered" {
				id = tr.ID
			}
		}
		return err == nil && id != ""
	})
	return id
}

// checkIntegrity runs SQLite's integrity_check on the database at path.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	mustOK(t, err)
	defer db.Close()
	var got string
	mustOK(t, db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&got))
	if got != "ok" {
		t.Errorf("ben's database after the disk was full: integrity_check says %q", got)
	}
}

func containsFold(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(strings.ToLower(s), sub) {
			return true
		}
	}
	return false
}

//go:build failpoint

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/protocols/invariants"
)

// TestF11CrashAtFailpoint: F11. The receiving daemon crashes (SIGKILL, by
// its own hand) at each failpoint between writing a chunk, syncing it,
// journaling it, renaming the item to its final name and recording the
// transfer done. Right after the crash the folder holds the item either
// complete under its final name or only as a .kith-partial, never a final
// name with other content (N2); started again, the daemon completes the
// transfer by itself, byte for byte (N1), writing nothing outside the
// folder (N4). Run with: go test -tags failpoint -run F11 ./cmd/kith/
func TestF11CrashAtFailpoint(t *testing.T) {
	tests := []struct {
		failpoint string
		hit       string // which hit crashes
		final     bool   // the item is under its final name at the crash
	}{
		{files.FailAfterWrite, "20", false},
		{files.FailAfterSync, "1", false},
		{files.FailBeforeRename, "1", false},
		{files.FailAfterRename, "1", true},
		{files.FailBeforeDone, "1", true},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.failpoint, "files/"), func(t *testing.T) {
			p := startFaultPair(t, files.FailpointEnv+"="+tc.failpoint+":"+tc.hit)
			src := filepath.Join(t.TempDir(), "proj")
			mustOK(t, os.Mkdir(src, 0o755))
			randomFile(t, src, "big.bin", 40<<20+12345)
			randomFile(t, src, "notes.txt", 1000)
			want := invariants.SumTree(t, src)
			out, err := p.ac.SendFiles(t.Context(), "ben", []string{src})
			mustOK(t, err)
			p.waitCrash(t, tc.failpoint)

			partials := invariants.CheckFinals(t, p.tree.Root, want) // N2, right after the crash
			_, statErr := os.Stat(filepath.Join(p.tree.Root, "proj"))
			if final := statErr == nil; final != tc.final {
				t.Errorf("at the crash proj is under its final name: %v, want %v (partials %v)", final, tc.final, partials)
			}
			if !tc.final && !slices.Contains(partials, "proj"+files.PartialSuffix) {
				t.Errorf("at the crash the partial is gone: partials %v", partials)
			}
			invariants.AssertUnchangedOutside(t, p.before, invariants.Snapshot(t, p.tree.Top), p.tree.Root)

			p.restartBen(t)
			waitTransfer(t, p.ac, out.ID, "done")
			waitTransfer(t, p.bc, p.incoming(t), "done")
			p.checkReceived(t, src)
		})
	}
}

// waitCrash waits for ben's daemon to kill itself at failpoint.
func (p *faultPair) waitCrash(t *testing.T, failpoint string) {
	t.Helper()
	select {
	case <-p.b.done:
	case <-time.After(waitBound):
		t.Fatalf("ben did not crash at %s within %s\n%s", failpoint, waitBound, p.b.logs())
	}
	ws, ok := p.b.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ben ended with %v, not SIGKILL at %s\n%s", p.b.cmd.ProcessState, failpoint, p.b.logs())
	}
	if !strings.Contains(p.b.logs(), "failpoint "+failpoint) {
		t.Fatalf("ben was killed, but not at %s\n%s", failpoint, p.b.logs())
	}
}

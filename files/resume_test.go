package files

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/invariants"
)

// resumeConfig keeps few chunks in flight and journals often, so that a
// transfer can be interrupted half way and the retries come quickly.
func resumeConfig() Config {
	return Config{Window: 2 * protocols.ChunkSize, JournalEvery: 20 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}
}

// startBig offers a file of 24 chunks from a to b, accepted into a fresh
// folder, and waits until b has verified at least a quarter of it.
func startBig(t *testing.T, a, b *tnode) (src string, want []byte, out, in Transfer, dir string) {
	src = filepath.Join(t.TempDir(), "big.bin")
	want = randomFile(t, src, 24*protocols.ChunkSize-5)
	out, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in = b.waitOffer(t)
	dir = t.TempDir()
	if _, err := b.svc.Accept(t.Context(), in.ID, ReceiveOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, in.ID, "a quarter verified", func(tr Transfer) bool { return tr.DoneBytes >= int64(len(want))/4 })
	return src, want, out, in, dir
}

// waitBigDone waits until startBig's transfer is done on both sides, then
// checks that dir holds the file whole (N1) and nothing else under a final
// name (N2).
func waitBigDone(t *testing.T, a, b *tnode, out, in Transfer, src, dir string, want []byte, sums map[string]invariants.Sum) {
	t.Helper()
	b.waitState(t, in.ID, StateDone)
	a.waitState(t, out.ID, StateDone)
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); string(got) != string(want) {
		t.Fatal("received bytes differ")
	}
	invariants.SameFile(t, src, filepath.Join(dir, "big.bin")) // N1
	invariants.CheckFinals(t, dir, sums)                       // N2
}

// verifiedStored is how many bytes the receiver's journal holds verified.
func verifiedStored(t *testing.T, n *tnode, id TransferID) int64 {
	tr, err := n.store.Transfer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocols.ParseManifest(tr.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	l := newLayout(m)
	return l.verifiedBytes(loadBitmap(tr.Verified, l.total))
}

func TestResumeAfterSenderRestart(t *testing.T) {
	a, b := newNode(t, resumeConfig()), newNode(t, resumeConfig())
	know(a, b)
	src, want, out, in, dir := startBig(t, a, b)
	a.stop()
	b.waitState(t, in.ID, StatePaused)
	have := verifiedStored(t, b, in.ID)
	assertNoFinal(t, dir)
	sums := sentSums(t, src)
	invariants.CheckFinals(t, dir, sums) // N2

	a.start(t)
	know(a, b)
	waitBigDone(t, a, b, out, in, src, dir, want, sums)
	if sent := a.svc.sent.Load(); sent != int64(len(want))-have {
		t.Errorf("after the restart the sender sent %d bytes; %d were missing", sent, int64(len(want))-have)
	}
}

func TestResumeAfterReceiverRestart(t *testing.T) {
	a, b := newNode(t, resumeConfig()), newNode(t, resumeConfig())
	know(a, b)
	src, want, out, in, dir := startBig(t, a, b)
	b.stop()
	have := verifiedStored(t, b, in.ID)
	if have == 0 || have == int64(len(want)) {
		t.Fatalf("journal holds %d of %d bytes; the test needs a transfer cut half way", have, len(want))
	}
	assertNoFinal(t, dir)
	sums := sentSums(t, src)
	invariants.CheckFinals(t, dir, sums) // N2
	before := a.svc.sent.Load()

	b.start(t)
	know(a, b)
	waitBigDone(t, a, b, out, in, src, dir, want, sums)
	// Chunks verified but not yet journaled when b stopped are fetched
	// again; nothing the journal holds is.
	if resent := a.svc.sent.Load() - before; resent > int64(len(want))-have {
		t.Errorf("after the restart the sender sent %d bytes; only %d were missing", resent, int64(len(want))-have)
	}
}

func TestDiskFullPausesThenResumes(t *testing.T) {
	a, b := newNode(t, resumeConfig()), newNode(t, resumeConfig())
	know(a, b)
	var full atomic.Bool
	full.Store(true)
	var written atomic.Int64
	b.svc.sinkHook = func(s *Sink) {
		s.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
			if full.Load() && written.Load() >= 5*protocols.ChunkSize {
				return 0, syscall.ENOSPC
			}
			written.Add(int64(len(p)))
			return f.WriteAt(p, off)
		}
	}
	src := filepath.Join(t.TempDir(), "big.bin")
	want := randomFile(t, src, 12*protocols.ChunkSize)
	if _, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	in := b.waitOffer(t)
	dir := t.TempDir()
	if _, err := b.svc.Accept(t.Context(), in.ID, ReceiveOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	paused := b.waitState(t, in.ID, StatePaused)
	if !containsAny(paused.Error, "disk full", "no space") {
		t.Errorf("paused with %q; want it to say the disk is full", paused.Error)
	}
	assertNoFinal(t, dir)
	invariants.CheckFinals(t, dir, sentSums(t, src)) // N2
	if _, err := os.Stat(filepath.Join(dir, "big.bin"+PartialSuffix)); err != nil {
		t.Errorf("the partial file is gone: %v", err)
	}
	full.Store(false) // space freed
	b.svc.Kick(a.h.ID())
	b.waitState(t, in.ID, StateDone)
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); string(got) != string(want) {
		t.Fatal("received bytes differ")
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(strings.ToLower(s), sub) {
			return true
		}
	}
	return false
}

// A fast transfer journals every journalBytes, whatever JournalEvery says,
// so a crash costs at most that much (plus the chunks in flight).
func TestJournalEveryJournalBytes(t *testing.T) {
	// The folders first, so that the nodes (whose retrier resumes the
	// paused transfer) close before the folders are removed.
	srcDir, dst := t.TempDir(), t.TempDir()
	cfg := resumeConfig()
	cfg.JournalEvery = time.Hour
	a, b := newNode(t, cfg), newNode(t, cfg)
	know(a, b)
	const chunks = journalBytes/protocols.ChunkSize + 8
	var written atomic.Int64
	b.svc.sinkHook = func(s *Sink) {
		s.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
			if written.Load() >= journalBytes+2*protocols.ChunkSize {
				return 0, syscall.ENOSPC // stop the transfer past the first journalBytes
			}
			written.Add(int64(len(p)))
			return f.WriteAt(p, off)
		}
	}
	src := filepath.Join(srcDir, "big.bin")
	randomFile(t, src, chunks*protocols.ChunkSize)
	if _, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	in := b.waitOffer(t)
	if _, err := b.svc.Accept(t.Context(), in.ID, ReceiveOptions{Dir: dst}); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, in.ID, StatePaused)
	if have := verifiedStored(t, b, in.ID); have != journalBytes {
		t.Fatalf("journal holds %d bytes; want the first %d, recorded without waiting for JournalEvery", have, journalBytes)
	}
}

// F1, sender side: when the sender dies mid-transfer, the receiver, still
// running, journals every chunk it verified before it pauses, so the resume
// starts from the last verified chunk, not from the last timed journal.
func TestSenderLossJournalsEveryVerifiedChunk(t *testing.T) {
	cfg := resumeConfig()
	cfg.JournalEvery = time.Hour // only journalBytes or the end would journal
	a, b := newNode(t, cfg), newNode(t, cfg)
	know(a, b)
	var written atomic.Int64
	half, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.svc.sinkHook = func(s *Sink) {
		s.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
			n, err := f.WriteAt(p, off)
			if written.Add(int64(n)) >= 6*protocols.ChunkSize {
				once.Do(func() { close(half); <-resume })
			}
			return n, err
		}
	}
	src := filepath.Join(t.TempDir(), "big.bin")
	randomFile(t, src, 12*protocols.ChunkSize)
	if _, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	in := b.waitOffer(t)
	dir := t.TempDir()
	if _, err := b.svc.Accept(t.Context(), in.ID, ReceiveOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	<-half
	a.stop()
	close(resume)
	b.waitState(t, in.ID, StatePaused)
	invariants.CheckFinals(t, dir, sentSums(t, src)) // N2
	if have, w := verifiedStored(t, b, in.ID), written.Load(); have != w {
		t.Fatalf("the journal holds %d bytes of the %d verified and written before the sender died", have, w)
	}
}

package files

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/invariants"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

// sendTree writes a folder with nested, empty and multi-chunk files under a
// fresh directory and returns its path and content.
func sendTree(t *testing.T) (string, map[string][]byte) {
	src := filepath.Join(t.TempDir(), "project")
	randomFile(t, filepath.Join(src, "big.bin"), 3*protocols.ChunkSize+12345)
	randomFile(t, filepath.Join(src, "docs", "notes.txt"), 1000)
	randomFile(t, filepath.Join(src, "docs", "deeper", "exact.bin"), protocols.ChunkSize)
	randomFile(t, filepath.Join(src, "empty.txt"), 0)
	if err := os.MkdirAll(filepath.Join(src, "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return src, tree(t, src)
}

func TestSendAcceptReceive(t *testing.T) {
	invariants.NoLeaks(t, libp2pLingering...)
	a, b := newNode(t, Config{}), newNode(t, Config{})
	know(a, b)
	src, want := sendTree(t)
	single := filepath.Join(t.TempDir(), "report.pdf")
	wantSingle := randomFile(t, single, 200_000)

	out, err := a.svc.Send(t.Context(), b.h.ID(), []string{src, single}, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	offer := b.waitOffer(t)
	if offer.Peer != a.h.ID() || offer.Files != 5 || offer.Bytes != out.Bytes || offer.State != StateOffered {
		t.Fatalf("offer as received: %+v; sent %+v", offer, out)
	}
	lab := invariants.NewTree(t)
	before := invariants.Snapshot(t, lab.Top)
	if _, err := b.svc.Accept(t.Context(), offer.ID, ReceiveOptions{Dir: lab.Root}); err != nil {
		t.Fatal(err)
	}
	in := b.waitState(t, offer.ID, StateDone)
	a.waitFor(t, out.ID, "done and notified", func(tr Transfer) bool { return tr.State == StateDone })
	b.waitFor(t, offer.ID, "sender notified", func(tr Transfer) bool { return tr.Notified })
	invariants.AssertUnchangedOutside(t, before, invariants.Snapshot(t, lab.Top), lab.Root)
	if in.DoneBytes != in.Bytes || in.Path != "direct" {
		t.Errorf("done transfer: %d of %d bytes, path %q", in.DoneBytes, in.Bytes, in.Path)
	}
	sameTree(t, want, tree(t, filepath.Join(lab.Root, "project")))
	got, err := os.ReadFile(filepath.Join(lab.Root, "report.pdf"))
	if err != nil || string(got) != string(wantSingle) {
		t.Errorf("report.pdf: %d bytes, err %v", len(got), err)
	}
	assertNoPartials(t, lab.Root)
	invariants.SameTree(t, src, filepath.Join(lab.Root, "project"))               // N1
	invariants.SameFile(t, single, filepath.Join(lab.Root, "report.pdf"))         // N1
	invariants.CheckFinals(t, lab.Root, sentSums(t, src, single))                 // N2
	invariants.ScopesIdle(t, a.h.Network().ResourceManager(), false, ServiceName) // N7
	invariants.ScopesIdle(t, b.h.Network().ResourceManager(), false, ServiceName) // N7
}

// sentSums hashes what was sent from paths (N1, N2), keyed as received.
func sentSums(t *testing.T, paths ...string) map[string]invariants.Sum {
	out := map[string]invariants.Sum{}
	for _, p := range paths {
		maps.Copy(out, invariants.SumTree(t, p))
	}
	return out
}

// libp2pLingering are goroutines a closed libp2p host leaves to finish on
// their own (identify's push loop ends with its last stream).
var libp2pLingering = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"),
}

// assertNoPartials fails if anything named *.kith-partial is under dir.
func assertNoPartials(t *testing.T, dir string) {
	t.Helper()
	for p := range tree(t, dir) {
		if filepath.Ext(p) == PartialSuffix {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestRejectWritesNothing(t *testing.T) {
	a, b := newNode(t, Config{}), newNode(t, Config{})
	know(a, b)
	src, _ := sendTree(t)
	out, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	offer := b.waitOffer(t)
	lab := invariants.NewTree(t)
	before := invariants.Snapshot(t, lab.Top)
	if _, err := b.svc.Reject(t.Context(), offer.ID); err != nil {
		t.Fatal(err)
	}
	got := a.waitState(t, out.ID, StateRejected)
	if got.Error == "" {
		t.Error("a rejected transfer says nothing about why")
	}
	b.waitFor(t, offer.ID, "sender told", func(tr Transfer) bool { return tr.Notified })
	if _, err := b.svc.Accept(t.Context(), offer.ID, ReceiveOptions{Dir: lab.Root}); !errors.Is(err, ErrNotOffered) {
		t.Errorf("accept after reject: %v, want ErrNotOffered", err)
	}
	invariants.AssertUnchangedOutside(t, before, invariants.Snapshot(t, lab.Top), lab.Root)
	invariants.AssertNothingUnder(t, before, lab.Root) // N5
}

func TestTicketFetch(t *testing.T) {
	a, b, c := newNode(t, Config{}), newNode(t, Config{}), newNode(t, Config{})
	know(a, b)
	know(a, c)
	file := filepath.Join(t.TempDir(), "photo.jpg")
	want := randomFile(t, file, 2*protocols.ChunkSize+7)
	share, err := a.svc.Share(t.Context(), []string{file}, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(share.Secret) != secretLen {
		t.Fatalf("secret of %d bytes", len(share.Secret))
	}
	wrong := append([]byte(nil), share.Secret...)
	wrong[0] ^= 1
	dir := t.TempDir()
	if _, err := c.svc.Fetch(t.Context(), a.h.ID(), share.ContentID, wrong, ReceiveOptions{Dir: dir}); err == nil {
		t.Fatal("a wrong secret fetched the files")
	}
	in, err := b.svc.Fetch(t.Context(), a.h.ID(), share.ContentID, share.Secret, ReceiveOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(t, in.ID, StateDone)
	done := a.waitState(t, share.ID, StateDone)
	if done.Peer != b.h.ID() {
		t.Errorf("the share records receiver %s, want %s", done.Peer, b.h.ID())
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "photo.jpg")); string(got) != string(want) {
		t.Error("received bytes differ")
	}
	// Served once: the ticket is used up.
	if _, err := c.svc.Fetch(t.Context(), a.h.ID(), share.ContentID, share.Secret, ReceiveOptions{Dir: t.TempDir()}); err == nil {
		t.Error("a used ticket was served again")
	}
}

func TestTicketKeepServesMany(t *testing.T) {
	a := newNode(t, Config{})
	file := filepath.Join(t.TempDir(), "notes.txt")
	want := randomFile(t, file, 5000)
	share, err := a.svc.Share(t.Context(), []string{file}, SendOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r := newNode(t, Config{})
		know(a, r)
		dir := t.TempDir()
		in, err := r.svc.Fetch(t.Context(), a.h.ID(), share.ContentID, share.Secret, ReceiveOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		r.waitState(t, in.ID, StateDone)
		if got, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(got) != string(want) {
			t.Error("received bytes differ")
		}
	}
	if got, _ := a.store.Transfer(t.Context(), share.ID); got.State != StateActive {
		t.Errorf("a kept share is %s, want active", got.State)
	}
	if _, err := a.svc.Cancel(t.Context(), share.ID); err != nil {
		t.Fatal(err)
	}
}

func TestOfferRefusedByPolicy(t *testing.T) {
	for _, tc := range []struct {
		refuse error
		code   protocols.ErrorCode
	}{{ErrNotAllowed, protocols.CodeNotAllowed}, {ErrBlocked, protocols.CodeBlocked}} {
		t.Run(tc.code.String(), func(t *testing.T) {
			a := newNode(t, Config{})
			b := newNode(t, Config{Authorize: func(peer.ID) error { return tc.refuse }})
			know(a, b)
			file := filepath.Join(t.TempDir(), "x.txt")
			randomFile(t, file, 10)
			out, err := a.svc.Send(t.Context(), b.h.ID(), []string{file}, SendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := a.waitState(t, out.ID, StateFailed)
			if want := tc.code.String(); !strings.Contains(got.Error, want) {
				t.Errorf("failed with %q, want it to say %q", got.Error, want)
			}
			if ts, _ := b.store.Transfers(context.Background(), Filter{}); len(ts) != 0 {
				t.Errorf("the refusing node stored %d transfers", len(ts))
			}
		})
	}
}

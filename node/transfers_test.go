package node_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The tests in this file up to the line below need no transfer engine: they
// check the node's side (IDs, policy, arguments, listing) on stored records.

func transferID(t *testing.T, s string) files.TransferID {
	t.Helper()
	id, err := files.ParseTransferID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func storeTransfer(t *testing.T, n *node.Node, tr files.Transfer) {
	t.Helper()
	if tr.CreatedAt.IsZero() {
		tr.CreatedAt = time.Now()
	}
	if err := n.StoreTransfer(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
}

func TestTransferIDPrefixes(t *testing.T) {
	n := nodetest.Start(t)
	other := nodetest.Start(t).ID()
	ids := []string{
		"ab120000000000000000000000000001",
		"ab120000000000000000000000000002",
		"cd340000000000000000000000000003",
	}
	for _, s := range ids {
		storeTransfer(t, n, files.Transfer{ID: transferID(t, s), Peer: other, Direction: files.Out, State: files.StateOffered, ContentID: protocols.Hash{1}})
	}
	ctx := t.Context()
	tests := []struct {
		arg  string
		want string // the ID found, or "" for an error
		err  error
	}{
		{"cd34", ids[2], nil},
		{"CD340", ids[2], nil},
		{ids[1], ids[1], nil},
		{"ab120000000000000000000000000001", ids[0], nil},
		{"ab12", "", node.ErrAmbiguousID},
		{"ef56", "", files.ErrNoTransfer},
		{"ab1", "", node.ErrBadTransferID},
		{"xyz1", "", node.ErrBadTransferID},
		{ids[0] + "0", "", node.ErrBadTransferID},
		{"ab12000000000000000000000000000f", "", files.ErrNoTransfer},
	}
	for _, tt := range tests {
		got, err := n.Transfer(ctx, tt.arg)
		switch {
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("Transfer(%q): %v, want %v", tt.arg, err, tt.err)
		case tt.err == nil && (err != nil || got.ID != tt.want):
			t.Errorf("Transfer(%q) = %q, %v; want %q", tt.arg, got.ID, err, tt.want)
		}
	}
	// An ambiguous prefix names every candidate.
	_, err := n.CancelTransfer(ctx, "ab12")
	if !errors.Is(err, node.ErrAmbiguousID) || !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), ids[1]) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
}

func TestTransferInfoFields(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) { c.Files.DownloadDir = node.DirPath(filepath.Join(c.Home, "in")) })
	ben := nodetest.Start(t)
	if _, err := n.AddContact(t.Context(), "ben", ben.ID().String()); err != nil {
		t.Fatal(err)
	}
	out := files.Transfer{
		ID: files.NewTransferID(), Peer: ben.ID(), Direction: files.Out, State: files.StateActive,
		Sources: []string{"/home/ana/report.pdf", "/home/ana/photos"}, Files: 3, Bytes: 300, DoneBytes: 100,
		Path: "relayed", Relay: ben.ID(), Notified: true, CreatedAt: time.Now(), ContentID: protocols.Hash{2},
	}
	in := files.Transfer{
		ID: files.NewTransferID(), RemoteID: files.NewTransferID(), Peer: ben.ID(), Direction: files.In,
		State: files.StateOffered, Files: 1, Bytes: 5, CreatedAt: time.Now(), ContentID: protocols.Hash{3},
	}
	storeTransfer(t, n, out)
	storeTransfer(t, n, in)
	list, err := n.Transfers(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("transfers: %+v %v", list, err)
	}
	got, err := n.Transfer(t.Context(), out.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != out.ID.String() || got.Peer != ben.ID().String() || got.PeerName != "ben" || got.Direction != "out" ||
		got.Files != 3 || got.Bytes != 300 || got.DoneBytes != 100 || got.State != "active" || got.Path != "relayed" ||
		got.Relay != ben.ID().String() || !got.Notified || strings.Join(got.Names, ",") != "report.pdf,photos" {
		t.Errorf("outgoing: %+v", got)
	}
	// A waiting offer shows the folder accepting it would use.
	got, err = n.Transfer(t.Context(), in.ID.String()[:6])
	if err != nil || got.Direction != "in" || got.State != "offered" || got.Dir != filepath.Join(n.Config().Home, "in") {
		t.Errorf("incoming offer: %+v %v", got, err)
	}
}

func TestFileOfferPolicy(t *testing.T) {
	dl := t.TempDir()
	n := nodetest.Start(t, func(c *node.Config) {
		c.Files.AutoAccept = node.AutoAcceptTrusted
		c.Files.DownloadDir = node.DirPath(dl)
	})
	friend, colleague, stranger, pest := nodetest.Start(t).ID(), nodetest.Start(t).ID(), nodetest.Start(t).ID(), nodetest.Start(t).ID()
	ctx := t.Context()
	for name, p := range map[string]peer.ID{"friend": friend, "colleague": colleague, "pest": pest} {
		if _, err := n.AddContact(ctx, name, p.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.TrustContact(ctx, "friend", true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Block(ctx, "pest", true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p        peer.ID
		err      error
		autoDir  string
		autoTook bool
	}{
		{friend, nil, dl, true},
		{colleague, nil, "", false},
		{stranger, files.ErrNotAllowed, "", false},
		{pest, files.ErrBlocked, "", false},
	}
	for _, tt := range tests {
		if err := n.AuthorizeFiles(tt.p); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("authorize %s: %v, want %v", tt.p, err, tt.err)
		}
		if dir, ok := n.AutoAccept(tt.p); dir != tt.autoDir || ok != tt.autoTook {
			t.Errorf("auto-accept %s: %q %v, want %q %v", tt.p, dir, ok, tt.autoDir, tt.autoTook)
		}
	}
	// auto_accept off (the default) accepts nothing by itself.
	off := nodetest.Start(t)
	if _, err := off.AddContact(ctx, "friend", friend.String()); err != nil {
		t.Fatal(err)
	}
	off.TrustContact(ctx, "friend", true)
	if _, ok := off.AutoAccept(friend); ok {
		t.Error("auto_accept off accepted an offer")
	}
}

func TestTransferArgumentErrors(t *testing.T) {
	n := nodetest.Start(t)
	ben := nodetest.Start(t)
	file := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(file, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	peerTicket := ben.Identity().Ticket
	secret := bytes.Repeat([]byte{7}, 16)
	ownTicket := protocols.Ticket{Peer: n.ID(), Content: make([]byte, 32), Secret: secret}.String()
	benTicket := protocols.Ticket{Peer: ben.ID(), Content: make([]byte, 32), Secret: secret}.String()
	tests := []struct {
		name string
		err  error
		call func() error
	}{
		{"relative source", node.ErrBadPath, func() error { _, err := n.SendFiles(ctx, ben.ID().String(), []string{"a.txt"}); return err }},
		{"missing source", node.ErrBadPath, func() error { _, err := n.SendFiles(ctx, ben.ID().String(), []string{file + ".no"}); return err }},
		{"no source", node.ErrBadPath, func() error { _, err := n.SendFiles(ctx, ben.ID().String(), nil); return err }},
		{"unknown peer", node.ErrUnknownPeer, func() error { _, err := n.SendFiles(ctx, "nobody", []string{file}); return err }},
		{"to self", files.ErrSelf, func() error { _, err := n.SendFiles(ctx, n.ID().String(), []string{file}); return err }},
		{"share relative", node.ErrBadPath, func() error { _, _, err := n.ShareFiles(ctx, []string{"."}, false); return err }},
		{"peer ticket", node.ErrNotFileTicket, func() error { _, err := n.ReceiveTicket(ctx, peerTicket, "", false); return err }},
		{"bad ticket", protocols.ErrTicket, func() error { _, err := n.ReceiveTicket(ctx, "kith1zzzz", "", false); return err }},
		{"own ticket", files.ErrSelf, func() error { _, err := n.ReceiveTicket(ctx, ownTicket, "", false); return err }},
		{"relative dir", node.ErrBadPath, func() error { _, err := n.ReceiveTicket(ctx, benTicket, "in", false); return err }},
		{"file as dir", node.ErrBadPath, func() error { _, err := n.ReceiveTicket(ctx, benTicket, file, false); return err }},
		{"accept unknown", files.ErrNoTransfer, func() error { _, err := n.AcceptTransfer(ctx, "abcd", "", false); return err }},
		{"reject bad id", node.ErrBadTransferID, func() error { _, err := n.RejectTransfer(ctx, "a"); return err }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestFileTicketAddrs(t *testing.T) {
	var addrs []ma.Multiaddr
	for i := range 10 {
		addrs = append(addrs,
			ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4000+i)),
			ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4011", i)),
			ma.StringCast(fmt.Sprintf("/ip4/203.0.113.%d/tcp/4011/p2p/12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ/p2p-circuit", i)))
	}
	got := node.FewTicketAddrs(addrs)
	if len(got) != 9 || !strings.HasPrefix(got[0].String(), "/ip4/10.0.0.") ||
		!strings.Contains(got[3].String(), "p2p-circuit") || !strings.HasPrefix(got[8].String(), "/ip4/127.0.0.1/") {
		t.Fatalf("file ticket addresses: %v", got)
	}
}

// ---- The tests below need the transfer engine (package files). ----

// writeRandom writes n random bytes to dir/name and returns the path.
func writeRandom(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%d and %d bytes)", a, b, len(x), len(y))
	}
}

// waitTransfer waits for a transfer event about id (any ID if "") that f
// accepts.
func waitTransfer(t *testing.T, events <-chan node.Event, id string, f func(node.Event) bool) node.TransferInfo {
	t.Helper()
	ev := waitEvent(t, events, func(ev node.Event) bool {
		return ev.Type == node.EventTransfer && (id == "" || ev.Transfer.ID == id) && f(ev)
	})
	return *ev.Transfer
}

func isState(s string) func(node.Event) bool {
	return func(ev node.Event) bool { return ev.Transfer.State == s }
}

// A contact's offer waits for accept; accepted, the file arrives whole and
// both sides say done. Needs the engine.
func TestSendFilesAccepted(t *testing.T) {
	a, b := nodetest.Start(t), nodetest.Start(t)
	befriend(t, a, b, "ana", "ben")
	src := writeRandom(t, t.TempDir(), "data.bin", 3<<20+17)
	aEvents, cancelA := a.Events().Subscribe()
	defer cancelA()
	bEvents, cancelB := b.Events().Subscribe()
	defer cancelB()
	sent, err := a.SendFiles(t.Context(), "ben", []string{src})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Direction != "out" || sent.State != "offered" || sent.Bytes != 3<<20+17 || sent.Files != 1 {
		t.Fatalf("sent: %+v", sent)
	}
	offer := waitTransfer(t, bEvents, "", func(ev node.Event) bool { return ev.Kind == node.TransferOffer })
	if offer.Peer != a.ID().String() || offer.PeerName != "ana" || offer.State != "offered" {
		t.Fatalf("offer: %+v", offer)
	}
	dir := t.TempDir()
	if _, err := b.AcceptTransfer(t.Context(), offer.ID[:8], dir, false); err != nil {
		t.Fatal(err)
	}
	got := waitTransfer(t, bEvents, offer.ID, isState("done"))
	waitTransfer(t, aEvents, sent.ID, isState("done"))
	if len(got.Names) != 1 || got.Dir != dir || got.DoneBytes != got.Bytes || got.Path != node.PathDirect {
		t.Fatalf("received: %+v", got)
	}
	sameFile(t, src, filepath.Join(dir, got.Names[0]))
}

// A trusted contact's offer is received into download_dir without asking
// when auto_accept is "trusted". Needs the engine.
func TestSendFilesAutoAcceptedFromTrusted(t *testing.T) {
	dl := t.TempDir()
	a := nodetest.Start(t)
	b := nodetest.Start(t, func(c *node.Config) {
		c.Files.AutoAccept = node.AutoAcceptTrusted
		c.Files.DownloadDir = node.DirPath(dl)
	})
	befriend(t, a, b, "ana", "ben")
	if err := b.TrustContact(t.Context(), "ana", true); err != nil {
		t.Fatal(err)
	}
	src := writeRandom(t, t.TempDir(), "notes.txt", 1000)
	aEvents, cancel := a.Events().Subscribe()
	defer cancel()
	sent, err := a.SendFiles(t.Context(), "ben", []string{src})
	if err != nil {
		t.Fatal(err)
	}
	waitTransfer(t, aEvents, sent.ID, isState("done"))
	sameFile(t, src, filepath.Join(dl, "notes.txt"))
}

// Rejecting an offer ends the sender's transfer rejected. Needs the engine.
func TestSendFilesRejected(t *testing.T) {
	a, b := nodetest.Start(t), nodetest.Start(t)
	befriend(t, a, b, "ana", "ben")
	src := writeRandom(t, t.TempDir(), "x.bin", 10)
	aEvents, cancelA := a.Events().Subscribe()
	defer cancelA()
	bEvents, cancelB := b.Events().Subscribe()
	defer cancelB()
	sent, err := a.SendFiles(t.Context(), "ben", []string{src})
	if err != nil {
		t.Fatal(err)
	}
	offer := waitTransfer(t, bEvents, "", func(ev node.Event) bool { return ev.Kind == node.TransferOffer })
	if got, err := b.RejectTransfer(t.Context(), offer.ID); err != nil || got.State != "rejected" {
		t.Fatalf("reject: %+v %v", got, err)
	}
	waitTransfer(t, aEvents, sent.ID, isState("rejected"))
	if _, err := b.AcceptTransfer(t.Context(), offer.ID, t.TempDir(), false); !errors.Is(err, files.ErrNotOffered) {
		t.Fatalf("accept after reject: %v, want ErrNotOffered", err)
	}
}

// A ticket carries everything needed: the receiver needs no contact and no
// DHT. Needs the engine.
func TestShareAndReceiveTicket(t *testing.T) {
	a, b := nodetest.Start(t), nodetest.Start(t)
	src := writeRandom(t, t.TempDir(), "shared.bin", 1<<20)
	aEvents, cancel := a.Events().Subscribe()
	defer cancel()
	share, ticket, err := a.ShareFiles(t.Context(), []string{src}, false)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := protocols.ParseTicket(ticket)
	if err != nil || tk.Peer != a.ID() || len(tk.Content) != 32 || len(tk.Secret) == 0 || len(tk.Addrs) == 0 {
		t.Fatalf("ticket %q: %+v %v", ticket, tk, err)
	}
	bEvents, cancelB := b.Events().Subscribe()
	defer cancelB()
	dir := t.TempDir()
	got, err := b.ReceiveTicket(t.Context(), ticket, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	done := waitTransfer(t, bEvents, got.ID, isState("done"))
	waitTransfer(t, aEvents, share.ID, isState("done"))
	sameFile(t, src, filepath.Join(dir, done.Names[0]))
}

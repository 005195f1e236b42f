package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestValidContactName(t *testing.T) {
	good := []string{"a", "ana", "Ben_2", "ana.work", "x-y", "Zoë", "Zoe\u0301", "नमस्ते", "日本", "a.", "q", "qmatrix",
		strings.Repeat("é", MaxContactName)}
	for _, name := range good {
		if err := ValidContactName(name); err != nil {
			t.Errorf("ValidContactName(%q) = %v, want nil", name, err)
		}
	}
	bad := []struct{ name, why string }{
		{"", "empty"},
		{strings.Repeat("a", MaxContactName+1), "65 characters, more than 64"},
		{"a b", "space"},
		{"a\u00a0b", "space"},
		{"../x", `starts with '.'`},
		{".hidden", `starts with '.'`},
		{"-x", `starts with '-'`},
		{"a/b", `'/' is not a letter`},
		{"a\x00b", "control character U+0000"},
		{"a\nb", "control character U+000A"},
		{"a\x1b[31m", "control character U+001B"},
		{"a\u200db", "is not a letter"}, // zero-width joiner
		{"a\u202eb", "is not a letter"}, // right-to-left override
		{"\u0301a", "is not a letter"},  // a mark with nothing to mark
		{"ana\xff", "not valid UTF-8"},  // invalid byte
		{"a:b", `':' is not a letter`},  // multiaddr-ish
		{"12D3KooWabc", "looks like a peer ID"},
		{"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "looks like a peer ID"},
		{"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "looks like a peer ID"},
		{"kith1qqqq", "looks like a ticket"},
		{"KITH1abc", "looks like a ticket"},
		{"Kith1", "looks like a ticket"},
		{"11", "looks like a peer ID"}, // base58 of an empty identity multihash: Resolve would take it
	}
	for _, tt := range bad {
		err := ValidContactName(tt.name)
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("ValidContactName(%q) = %v, want ErrBadName saying %q", tt.name, err, tt.why)
		}
	}
}

func TestContactsCRUD(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	addr := ma.StringCast("/ip4/203.0.113.5/udp/4011/quic-v1")
	ana := Contact{Name: "ana", PeerID: newPeer(t), Addrs: []ma.Multiaddr{addr},
		Trusted: true, AddedAt: time.UnixMilli(1_700_000_000_000)}
	ben := Contact{Name: "ben", PeerID: newPeer(t)}
	for _, c := range []Contact{ben, ana} {
		if err := s.AddContact(ctx, c); err != nil {
			t.Fatalf("AddContact(%s): %v", c.Name, err)
		}
	}
	got, err := s.ContactByName(ctx, "ana")
	if err != nil || !sameContact(got, ana) {
		t.Errorf("ContactByName(ana) = %+v, %v; want %+v", got, err, ana)
	}
	if got, err := s.ContactByPeer(ctx, ben.PeerID); err != nil || got.Name != "ben" || got.AddedAt.IsZero() || got.Addrs != nil {
		t.Errorf("ContactByPeer(ben) = %+v, %v", got, err)
	}
	if err := s.SetTrusted(ctx, "ben", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ContactByName(ctx, "ben"); !got.Trusted {
		t.Error("SetTrusted(ben, true) did not stick")
	}
	if err := s.RemoveContact(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ContactByPeer(ctx, ana.PeerID); !errors.Is(err, ErrNoContact) {
		t.Errorf("removed contact: ContactByPeer = %v, want ErrNoContact", err)
	}
	if cs, err := s.Contacts(ctx); err != nil || len(cs) != 1 || cs[0].Name != "ben" {
		t.Errorf("Contacts = %+v, %v; want only ben", cs, err)
	}
}

func sameContact(a, b Contact) bool {
	return a.Name == b.Name && a.PeerID == b.PeerID && a.Trusted == b.Trusted && a.Blocked == b.Blocked &&
		a.AddedAt.Equal(b.AddedAt) && slices.EqualFunc(a.Addrs, b.Addrs, ma.Multiaddr.Equal)
}

func TestContactErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	ana := newPeer(t)
	if err := s.AddContact(ctx, Contact{Name: "ana", PeerID: ana}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		do     func() error
		want   error
		saying string
	}{
		{"name taken", func() error { return s.AddContact(ctx, Contact{Name: "ana", PeerID: newPeer(t)}) },
			ErrNameTaken, `"ana"`},
		{"peer taken", func() error { return s.AddContact(ctx, Contact{Name: "ana2", PeerID: ana}) },
			ErrPeerTaken, ana.String() + ` is "ana"`},
		{"same again", func() error { return s.AddContact(ctx, Contact{Name: "ana", PeerID: ana}) },
			ErrPeerTaken, `"ana"`},
		{"bad name", func() error { return s.AddContact(ctx, Contact{Name: "a b", PeerID: newPeer(t)}) },
			ErrBadName, "space"},
		{"no peer", func() error { return s.AddContact(ctx, Contact{Name: "cy"}) }, nil, "empty peer ID"},
		{"not a peer ID", func() error { return s.AddContact(ctx, Contact{Name: "cy", PeerID: "garbage"}) },
			nil, "is not a peer ID"},
		{"empty address", func() error {
			return s.AddContact(ctx, Contact{Name: "cy", PeerID: newPeer(t), Addrs: []ma.Multiaddr{nil}})
		}, nil, "address 0 is empty"},
		{"by name", func() error { _, err := s.ContactByName(ctx, "nobody"); return err }, ErrNoContact, `"nobody"`},
		{"by peer", func() error { _, err := s.ContactByPeer(ctx, newPeer(t)); return err }, ErrNoContact, ""},
		{"remove", func() error { return s.RemoveContact(ctx, "nobody") }, ErrNoContact, `"nobody"`},
		{"trust", func() error { return s.SetTrusted(ctx, "nobody", true) }, ErrNoContact, `"nobody"`},
		{"trust nameless", func() error { return s.SetTrusted(ctx, "", true) }, ErrNoContact, ""},
		{"block nobody", func() error { return s.SetBlocked(ctx, "", true) }, nil, "empty peer ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.saying) {
				t.Errorf("got %v, want %v saying %q", err, tt.want, tt.saying)
			}
		})
	}
	if cs, err := s.Contacts(ctx); err != nil || len(cs) != 1 {
		t.Errorf("failed calls changed the contacts: %+v, %v", cs, err)
	}
}

func TestBlockedStrangerThenNamed(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	p := newPeer(t)
	if err := s.SetBlocked(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBlocked(ctx, p, true); err != nil { // again: no change, no error
		t.Fatal(err)
	}
	if c, err := s.ContactByPeer(ctx, p); err != nil || c.Name != "" || !c.Blocked {
		t.Fatalf("blocked stranger = %+v, %v", c, err)
	}
	if err := s.AddContact(ctx, Contact{Name: "spammer", PeerID: p}); err != nil {
		t.Fatal(err)
	}
	c, err := s.ContactByName(ctx, "spammer")
	if err != nil || c.PeerID != p || !c.Blocked {
		t.Fatalf("named stranger = %+v, %v; want blocked", c, err)
	}
	if cs, _ := s.Contacts(ctx); len(cs) != 1 {
		t.Errorf("%d rows, want 1", len(cs))
	}
}

func TestRemoveBlockedContactKeepsBlock(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	p := newPeer(t)
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4011")}
	if err := s.AddContact(ctx, Contact{Name: "ex", PeerID: p, Addrs: addrs, Trusted: true, Blocked: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveContact(ctx, "ex"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ContactByName(ctx, "ex"); !errors.Is(err, ErrNoContact) {
		t.Errorf("ContactByName after remove: %v", err)
	}
	c, err := s.ContactByPeer(ctx, p)
	if err != nil || c.Name != "" || !c.Blocked || c.Trusted || c.Addrs != nil {
		t.Errorf("after remove = %+v, %v; want a nameless blocked row", c, err)
	}
	if got, err := s.BlockedPeers(ctx); err != nil || !slices.Equal(got, []peer.ID{p}) {
		t.Errorf("BlockedPeers = %v, %v", got, err)
	}
	if err := s.RemoveContact(ctx, "ex"); !errors.Is(err, ErrNoContact) {
		t.Errorf("second remove: %v, want ErrNoContact", err)
	}
}

func TestUnblock(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	stranger, friend, nobody := newPeer(t), newPeer(t), newPeer(t)
	if err := s.AddContact(ctx, Contact{Name: "friend", PeerID: friend, Blocked: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []peer.ID{stranger, friend} {
		if err := s.SetBlocked(ctx, p, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []peer.ID{stranger, friend, nobody} {
		if err := s.SetBlocked(ctx, p, false); err != nil {
			t.Fatalf("unblock: %v", err)
		}
	}
	if _, err := s.ContactByPeer(ctx, stranger); !errors.Is(err, ErrNoContact) {
		t.Errorf("unblocked stranger still has a row: %v", err)
	}
	if c, err := s.ContactByName(ctx, "friend"); err != nil || c.Blocked {
		t.Errorf("unblocked friend = %+v, %v; want kept, not blocked", c, err)
	}
	if got, err := s.BlockedPeers(ctx); err != nil || len(got) != 0 {
		t.Errorf("BlockedPeers = %v, %v; want none", got, err)
	}
}

func TestContactsOrder(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	for _, name := range []string{"cy", "Ana", "ben"} {
		if err := s.AddContact(ctx, Contact{Name: name, PeerID: newPeer(t)}); err != nil {
			t.Fatal(err)
		}
	}
	strangers := []peer.ID{newPeer(t), newPeer(t), newPeer(t)}
	for _, p := range strangers {
		if err := s.SetBlocked(ctx, p, true); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(strangers, func(a, b peer.ID) int { return strings.Compare(a.String(), b.String()) })
	cs, err := s.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.Name+"/"+c.PeerID.String())
	}
	want := []string{"Ana/", "ben/", "cy/", "/" + strangers[0].String(), "/" + strangers[1].String(), "/" + strangers[2].String()}
	for i := range got {
		if i >= len(want) || !strings.HasPrefix(got[i], want[i]) || (want[i][0] == '/' && got[i] != want[i]) {
			t.Fatalf("Contacts order:\n got  %q\n want %q", got, want)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d contacts, want %d", len(got), len(want))
	}
}

// TestSetContactAddrs: a contact's last-known addresses replace what it had
// (a ticket's), survive reopening the file, and are kept for contacts only.
func TestSetContactAddrs(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	old := ma.StringCast("/ip4/203.0.113.5/udp/4011/quic-v1")
	now := []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.7/tcp/4012"), ma.StringCast("/ip4/192.168.1.20/tcp/4012")}
	ana := Contact{Name: "ana", PeerID: newPeer(t), Addrs: []ma.Multiaddr{old}}
	if err := s.AddContact(ctx, ana); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetContactAddrs(ctx, ana.PeerID, now); err != nil || !ok {
		t.Fatalf("SetContactAddrs = %v, %v; want changed", ok, err)
	}
	if ok, err := s.SetContactAddrs(ctx, ana.PeerID, now); err != nil || ok {
		t.Fatalf("SetContactAddrs with the same addresses = %v, %v; want unchanged", ok, err)
	}
	stranger := newPeer(t)
	if err := s.SetBlocked(ctx, stranger, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []peer.ID{stranger, newPeer(t)} {
		if ok, err := s.SetContactAddrs(ctx, p, now); err != nil || ok {
			t.Fatalf("SetContactAddrs of a non-contact = %v, %v; want nothing done", ok, err)
		}
	}
	if _, err := s.SetContactAddrs(ctx, ana.PeerID, []ma.Multiaddr{nil}); err == nil {
		t.Fatal("SetContactAddrs took an empty address")
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.ContactByPeer(ctx, ana.PeerID)
	if err != nil || !slices.EqualFunc(got.Addrs, now, ma.Multiaddr.Equal) || got.Name != "ana" {
		t.Fatalf("after reopening: %+v, %v; want ana at %v", got, err, now)
	}
	if c, _ := s2.ContactByPeer(ctx, stranger); len(c.Addrs) != 0 {
		t.Fatalf("blocked stranger has addresses %v", c.Addrs)
	}
}

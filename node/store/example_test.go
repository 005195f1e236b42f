package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/kithnet/kith/node/store"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func ExampleOpen() {
	home, err := os.MkdirTemp("", "kith-home") // $KITH_HOME, made by node.EnsureHome
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)

	s, err := store.Open(filepath.Join(home, store.File))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	ana, _ := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	err = s.AddContact(ctx, store.Contact{
		Name:   "ana",
		PeerID: ana,
		Addrs:  []ma.Multiaddr{ma.StringCast("/ip4/203.0.113.5/udp/4011/quic-v1")},
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := s.ContactByName(ctx, "ana")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name, c.PeerID == ana, c.Addrs[0])
	// Output:
	// ana true /ip4/203.0.113.5/udp/4011/quic-v1
}

func ExampleStore_AddContact() {
	home, err := os.MkdirTemp("", "kith-home")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	s, err := store.Open(filepath.Join(home, store.File))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	p, _ := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")

	// A stranger is blocked first, then named: the name sticks, so does the block.
	if err := s.SetBlocked(ctx, p, true); err != nil {
		log.Fatal(err)
	}
	if err := s.AddContact(ctx, store.Contact{Name: "pest", PeerID: p}); err != nil {
		log.Fatal(err)
	}
	c, _ := s.ContactByPeer(ctx, p)
	fmt.Println(c.Name, c.Blocked)

	// A peer has one name; names are checked.
	err = s.AddContact(ctx, store.Contact{Name: "pest2", PeerID: p})
	fmt.Println(errors.Is(err, store.ErrPeerTaken), err)
	err = s.AddContact(ctx, store.Contact{Name: "../etc", PeerID: p})
	fmt.Println(errors.Is(err, store.ErrBadName), err)
	// Output:
	// pest true
	// true store: peer is already a contact: 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA is "pest"
	// true store: bad contact name "../etc": starts with '.'
}

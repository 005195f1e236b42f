package protocols_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/kithnet/kith/protocols"
)

func ExampleParseTicket() {
	const s = "kith1aeasmabebaareidopion2knqw6h5coxuyvmy737u54vjoftohstpfzh37tgyauc36ebawbgaaabadeicb6q42aydeaaacaqdaqcqmbyibefawdanbyhraeiscmkbkfqxdamrugy4dupb6bbaucq2fi5euwtkpkfjvkv2zlnov6yldmvtws23nn5yxg5lxpf5x27q"
	t, err := protocols.ParseTicket(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("peer:", t.Peer)
	fmt.Println("addrs:", t.Addrs)
	fmt.Printf("content: %x\n", t.Content)
	fmt.Println("secret bytes:", len(t.Secret))

	_, err = protocols.ParseTicket("kith1" + s[6:])
	fmt.Println(errors.Is(err, protocols.ErrTicket), err)
	// Output:
	// peer: 12D3KooWHFd1gyNYFqxt7ke9FY2VoVVWY2XSPhvL9vg2pB6wQGfa
	// addrs: [/ip4/192.0.2.1/udp/4001/quic-v1]
	// content: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
	// secret bytes: 32
	// true protocols: invalid ticket: base32 text of 195 characters is impossible (truncated or mistyped?)
}

func ExampleTicket_String() {
	// A fixed seed keeps the example deterministic; real keys come from
	// crypto/rand.
	_, pub, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		panic(err)
	}
	// The trailing /p2p/<id> is implied by the ticket's peer and left out.
	addr := ma.StringCast("/ip4/192.0.2.1/tcp/4001/p2p/" + id.String())
	t := protocols.Ticket{Peer: id, Addrs: []ma.Multiaddr{addr}}
	s := t.String()
	fmt.Println(s)

	back, err := protocols.ParseTicket(s)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Peer, back.Addrs)
	// Output:
	// kith1aeasmabebaareiekrdr525aj6gk72uw3fu6luxlszjtqtpy5sqjbx43uraa3id3plqbaqbgaaabacbqpue
	// 12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5 [/ip4/192.0.2.1/tcp/4001]
}

func ExampleTicket_AddrInfo() {
	t, err := protocols.ParseTicket("kith1aeasmabebaareiebhf3q5kd5c5pvni2um3buy7wmzogyvenu5y32expwb5ny7sntsqbaqbgaaabacbqpuebawbgaaabadeicb6q42ayccqusaainxaaaaaaaaaaaaaaaaaaacbqpuebbenqlmv4gc3lqnrss4y3pnudado66am")
	if err != nil {
		panic(err)
	}
	ai := t.AddrInfo() // for host.Connect(ctx, ai)
	fmt.Println(ai.ID)
	for _, a := range ai.Addrs {
		fmt.Println(a)
	}
	// Output:
	// 12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq
	// /ip4/192.0.2.1/tcp/4001
	// /ip4/192.0.2.1/udp/4001/quic-v1
	// /ip6/2001:db8::1/tcp/4001
	// /dns4/example.com/tcp/443/wss
}

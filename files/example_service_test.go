package files

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// ExampleService shares a file with a ticket on one host and fetches it on
// another. A real node keeps transfers in its SQLite store; the example
// uses a small in-memory one.
func ExampleService() {
	ctx := context.Background()
	sender, receiver := exampleHost(), exampleHost()
	defer sender.Close()
	defer receiver.Close()
	receiver.Peerstore().AddAddrs(sender.ID(), sender.Addrs(), peerstore.PermanentAddrTTL)

	quiet := WithLogger(slog.New(slog.DiscardHandler))
	done := make(chan Transfer, 1)
	a, _ := New(sender, &memStore{}, Config{}, quiet)
	defer a.Close()
	b, _ := New(receiver, &memStore{}, Config{}, quiet, WithOnEvent(func(e Event) {
		if e.Transfer.State == StateDone {
			done <- e.Transfer
		}
	}))
	defer b.Close()

	src, _ := os.MkdirTemp("", "kith-example")
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello, colleague\n"), 0o644)
	share, err := a.Share(ctx, []string{filepath.Join(src, "hello.txt")}, SendOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What a ticket carries: the sender's peer ID and addresses, the content
	// ID and the secret.
	dst, _ := os.MkdirTemp("", "kith-example")
	defer os.RemoveAll(dst)
	if _, err := b.Fetch(ctx, sender.ID(), share.ContentID, share.Secret, ReceiveOptions{Dir: dst}); err != nil {
		fmt.Println(err)
		return
	}
	t := <-done
	got, _ := os.ReadFile(filepath.Join(dst, "hello.txt"))
	fmt.Printf("%s: %d file, %d bytes: %s", t.State, t.Files, t.Bytes, got)
	// Output: done: 1 file, 17 bytes: hello, colleague
}

func exampleHost() host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		panic(err)
	}
	return h
}

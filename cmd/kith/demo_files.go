package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// demoFileSize is the size of the file alice sends bob.
const demoFileSize = 64 << 20

// demoFile has alice send bob a file of random bytes; bob trusts alice and
// auto-accepts. It checks that the received file hashes like the source.
func demoFile(ctx context.Context, w io.Writer, root string, alice, bob *demoPeer) error {
	if err := bob.c.TrustContact(ctx, alice.name, true); err != nil {
		return fmt.Errorf("demo: bob trusts alice: %w", err)
	}
	src := filepath.Join(root, "alice-files", "demo.bin")
	if err := writeRandomFile(src, demoFileSize); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	sent, got, elapsed, err := sendAndWait(ctx, src, alice, bob)
	if err != nil {
		return err
	}
	if sent.State != "done" || got.State != "done" {
		return fmt.Errorf("demo: alice -> bob: file transfer %s/%s: %s%s", sent.State, got.State, sent.Error, got.Error)
	}
	return reportDemoFile(w, src, got, elapsed)
}

// sendAndWait has alice send src to bob and waits until both sides are
// final; it returns both sides' records and the time it took.
func sendAndWait(ctx context.Context, src string, alice, bob *demoPeer) (sent, got node.TransferInfo, took time.Duration, err error) {
	aw, err := watchTransfers(ctx, alice.c)
	if err != nil {
		return sent, got, 0, err
	}
	defer aw.close()
	bw, err := watchTransfers(ctx, bob.c)
	if err != nil {
		return sent, got, 0, err
	}
	defer bw.close()
	start := time.Now()
	if sent, err = alice.c.SendFiles(ctx, bob.name, []string{src}); err != nil {
		return sent, got, 0, fmt.Errorf("demo: alice sends bob a file: %w", err)
	}
	// Bob's side: the first incoming transfer from alice.
	got.State = "offered"
	if got, err = waitFinal(ctx, bw, got, func(t node.TransferInfo) bool {
		return t.Direction == "in" && t.Peer == alice.n.ID().String()
	}); err != nil {
		return sent, got, 0, err
	}
	took = time.Since(start)
	sent, err = waitFinal(ctx, aw, sent, nil)
	return sent, got, took, err
}

// reportDemoFile compares the source with bob's copy and prints the result.
func reportDemoFile(w io.Writer, src string, got node.TransferInfo, elapsed time.Duration) error {
	if len(got.Names) != 1 {
		return fmt.Errorf("demo: bob received %v, want one file", got.Names)
	}
	a, err := sha256File(src)
	if err != nil {
		return err
	}
	b, err := sha256File(filepath.Join(got.Dir, got.Names[0]))
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("demo: bob's copy differs: sha256 %s, source %s", b, a)
	}
	fmt.Fprintf(w, "  alice -> bob: %s file received and verified in %s (%.1f MB/s, path %s, auto-accepted from trusted alice)\n",
		termtext.Bytes(demoFileSize), elapsed.Round(time.Millisecond), float64(demoFileSize)/1e6/elapsed.Seconds(), got.Path)
	fmt.Fprintf(w, "  sha256 of source and received file are equal: %s\n", a)
	return nil
}

// waitFinal follows t on watch until it is done, failed or rejected. With
// match set, t is the first transfer match accepts (its ID unknown yet).
func waitFinal(ctx context.Context, watch *transferWatch, t node.TransferInfo, match func(node.TransferInfo) bool) (node.TransferInfo, error) {
	for !final(t.State) {
		select {
		case ev := <-watch.events:
			if ev.Transfer.ID == t.ID || t.ID == "" && match != nil && match(*ev.Transfer) {
				t = *ev.Transfer
			}
		case err := <-watch.errc:
			if err == nil {
				err = errors.New("event stream ended")
			}
			return t, fmt.Errorf("demo: following the transfer: %w", err)
		case <-ctx.Done():
			return t, fmt.Errorf("demo: file transfer not done (%s, %d of %d bytes): %w", t.State, t.DoneBytes, t.Bytes, ctx.Err())
		}
	}
	return t, nil
}

func writeRandomFile(path string, n int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package node_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
)

// startBenchNode starts a loopback node with the benchmark-only raw copy
// path on.
func startBenchNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.New(nodetest.Config(t), node.WithLogger(nodetest.Logger(t)), node.WithBench())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestBenchCopy(t *testing.T) {
	a, b := startBenchNode(t), startBenchNode(t)
	src := filepath.Join(t.TempDir(), "src")
	data := make([]byte, 3<<20+17) // not a whole number of 1 MiB blocks
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(t.Context(), "b", b.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
	// b does not know a yet: refused.
	if _, err := a.BenchCopy(t.Context(), "b", src); err == nil {
		t.Fatal("a copy to a node that does not have us as a contact succeeded")
	}
	if _, err := b.AddContact(t.Context(), "a", a.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
	res, err := a.BenchCopy(t.Context(), "b", src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(len(data)) || res.Seconds <= 0 || res.Conn == "" {
		t.Fatalf("copy result: %+v", res)
	}
	left, err := os.ReadDir(filepath.Join(b.Config().Home, "bench"))
	if err != nil || len(left) != 0 {
		t.Fatalf("the sink left %v (%v)", left, err)
	}
	if _, err := a.BenchCopy(t.Context(), "b", "relative"); !errors.Is(err, node.ErrBadPath) {
		t.Fatalf("relative path: %v", err)
	}
}

// Without WithBench (KITH_BENCH unset) nothing of it exists.
func TestBenchOffByDefault(t *testing.T) {
	n := nodetest.Start(t)
	if n.BenchEnabled() || slices.Contains(n.Host().Mux().Protocols(), node.BenchSinkProtocol) {
		t.Fatal("the bench sink is registered on a node without WithBench")
	}
	if _, err := n.BenchCopy(t.Context(), "x", "/x"); !errors.Is(err, node.ErrBenchDisabled) {
		t.Fatalf("BenchCopy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.Config().Home, "bench")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bench folder: %v", err)
	}
}

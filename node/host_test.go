package node

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// When the default port is taken the node listens on a random port and
// says so; an address the user chose is left alone.
func TestListenFallsBackWhenPortTaken(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ul, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	busy := []string{
		fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", tl.Addr().(*net.TCPAddr).Port),
		fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", ul.LocalAddr().(*net.UDPAddr).Port),
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	got, err := listenAddrs(busy, true, log)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("fallback %d: %s, want %s", i, got[i], want[i])
		}
	}
	if strings.Count(logs.String(), "default port taken") != 2 {
		t.Errorf("want a warning per address, got %q", logs.String())
	}
	kept, err := listenAddrs(busy, false, log)
	if err != nil || kept[0].String() != busy[0] || kept[1].String() != busy[1] {
		t.Errorf("without fallback: %v %v", kept, err)
	}
	free, err := listenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}, true, log)
	if err != nil || free[0].String() != "/ip4/127.0.0.1/tcp/0" {
		t.Errorf("free port: %v %v", free, err)
	}
}

//go:build natlab

package natlab

import (
	"strings"
	"testing"
)

// The sealing check refuses a lab with a way out: a route to an outside
// prefix, a default route on a router, an interface that is not the lab's,
// or a veth that ends in a namespace outside the lab (as one into the host's
// namespace would; the test uses a scratch namespace so it never touches
// the host's).
func TestSealCheckRefusesAWayOut(t *testing.T) {
	t.Parallel()
	lab := New(t, Options{Kith: kithBin, Hosts: []HostSpec{{Name: "relay"}, {Name: "a", NAT: Cone}}})
	a := lab.Host("a")
	outside := lab.id + "-outside"
	if err := run("ip", "netns", "add", outside); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run("ip", "netns", "del", outside) })

	tests := []struct {
		name       string
		make, undo [][]string // ip -n NS args...
		want       string
	}{
		{"route to an outside prefix",
			[][]string{{a.NS, "route", "add", "192.0.2.0/24", "via", "10.0.1.1"}},
			[][]string{{a.NS, "route", "del", "192.0.2.0/24"}},
			"leads out of the lab"},
		{"default route on a router",
			[][]string{{a.Router, "route", "add", "default", "via", "7.0.0.10"}},
			[][]string{{a.Router, "route", "del", "default"}},
			"default route"},
		{"an interface that is not the lab's",
			[][]string{{a.Router, "link", "add", "stray0", "type", "bridge"}},
			[][]string{{a.Router, "link", "del", "stray0"}},
			"unexpected interface"},
		{"a veth into a namespace outside the lab",
			[][]string{{a.NS, "link", "add", "leak0", "type", "veth", "peer", "name", "leak1", "netns", outside}},
			[][]string{{a.NS, "link", "del", "leak0"}},
			"ends outside the lab"},
	}
	if err := lab.checkSealed(); err != nil {
		t.Fatalf("a fresh lab is not sealed: %v", err)
	}
	for _, tt := range tests {
		if err := lab.seq(tt.make...); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err := lab.checkSealed()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: checkSealed() = %v, want an error about %q", tt.name, err, tt.want)
		}
		if err := lab.seq(tt.undo...); err != nil {
			t.Fatalf("%s: undo: %v", tt.name, err)
		}
		if err := lab.checkSealed(); err != nil {
			t.Fatalf("%s: still refused after undoing it: %v", tt.name, err)
		}
	}
}

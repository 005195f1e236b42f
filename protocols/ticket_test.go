package protocols

import (
	"errors"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// validTickets are tickets that must survive a round trip unchanged.
func validTickets(tb testing.TB) map[string]Ticket {
	self, relay := testPeer(tb, 1), testPeer(tb, 3)
	addrs := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, mustAddr(tb, s))
		}
		return out
	}
	sixteen := make([]string, MaxTicketAddrs)
	for i := range sixteen {
		sixteen[i] = "/ip4/192.0.2.1/udp/4001/quic-v1"
	}
	return map[string]Ticket{
		"peer only":   {Peer: self},
		"one address": {Peer: self, Addrs: addrs("/ip4/192.0.2.1/tcp/4001")},
		"mixed addresses": {Peer: self, Addrs: addrs("/ip6/2001:db8::1/tcp/4001",
			"/ip4/192.0.2.1/udp/4001/quic-v1", "/dns4/example.com/tcp/443/wss")},
		"relay address": {Peer: self, Addrs: addrs(
			"/ip4/198.51.100.7/tcp/4001/p2p/" + relay.String() + "/p2p-circuit")},
		"sixteen addresses": {Peer: self, Addrs: addrs(sixteen...)},
		"content only":      {Peer: self, Content: repeat(0xc1, 1)},
		"file": {Peer: self, Addrs: addrs("/ip4/192.0.2.1/tcp/4001"),
			Content: repeat(0xc1, 64), Secret: repeat(0x5e, 16)},
		"longest secret": {Peer: self, Secret: repeat(0x5e, 64)},
	}
}

func TestTicketRoundTrip(t *testing.T) {
	for name, in := range validTickets(t) {
		t.Run(name, func(t *testing.T) {
			s := in.String()
			if !strings.HasPrefix(s, TicketPrefix) || strings.ToLower(s) != s {
				t.Fatalf("String() = %q: want lowercase with prefix %q", s, TicketPrefix)
			}
			got, err := ParseTicket(s)
			if err != nil {
				t.Fatalf("ParseTicket(%q): %v", s, err)
			}
			if !ticketsEqual(got, in) {
				t.Fatalf("round trip: got %+v, want %+v", got, in)
			}
			if again := got.String(); again != s {
				t.Fatalf("re-encoded to %q, want %q", again, s)
			}
		})
	}
}

func TestTicketStringNormalizes(t *testing.T) {
	self := testPeer(t, 1)
	tcp := mustAddr(t, "/ip4/192.0.2.1/tcp/4001")
	own := mustAddr(t, "/p2p/"+self.String())
	in := Ticket{
		Peer:    self,
		Addrs:   []ma.Multiaddr{tcp.Encapsulate(own), own, nil},
		Content: []byte{},
		Secret:  []byte{},
	}
	want := Ticket{Peer: self, Addrs: []ma.Multiaddr{tcp}}
	got, err := ParseTicket(in.String())
	if err != nil {
		t.Fatal(err)
	}
	if !ticketsEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestParseTicketTolerance(t *testing.T) {
	tk := Ticket{Peer: testPeer(t, 1), Secret: repeat(9, 16)}
	s := tk.String()
	for _, in := range []string{s, " " + s + "\n", "\t" + strings.ToUpper(s) + "\r\n", "KiTh1" + s[5:]} {
		got, err := ParseTicket(in)
		if err != nil {
			t.Fatalf("ParseTicket(%q): %v", in, err)
		}
		if !ticketsEqual(got, tk) {
			t.Fatalf("ParseTicket(%q) = %+v, want %+v", in, got, tk)
		}
	}
}

func TestHostileTickets(t *testing.T) {
	for _, tc := range hostileTickets(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTicket(tc.input)
			if err == nil {
				t.Fatalf("ParseTicket accepted %q as %+v", tc.input, got)
			}
			if !errors.Is(err, ErrTicket) {
				t.Fatalf("error %q does not wrap ErrTicket", err)
			}
			if !strings.HasPrefix(err.Error(), ErrTicket.Error()+": ") {
				t.Fatalf("error %q does not start with %q", err, ErrTicket.Error()+": ")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestTicketAddrInfo(t *testing.T) {
	tk := Ticket{Peer: testPeer(t, 1), Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/4001")}}
	ai := tk.AddrInfo()
	if ai.ID != tk.Peer || len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(tk.Addrs[0]) {
		t.Fatalf("AddrInfo() = %+v", ai)
	}
	ai.Addrs[0] = nil
	if tk.Addrs[0] == nil {
		t.Fatal("AddrInfo shares its Addrs slice with the ticket")
	}
	if got := (Ticket{Peer: tk.Peer}).AddrInfo(); got.ID != tk.Peer || len(got.Addrs) != 0 {
		t.Fatalf("AddrInfo() without addresses = %+v", got)
	}
}

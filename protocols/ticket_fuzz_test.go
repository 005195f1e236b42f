package protocols

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseTicket checks that ParseTicket never panics, that every error
// wraps ErrTicket, and that accepted tickets are canonical:
// encode(decode(s)) is s trimmed and lowercased, and decode(encode(t)) == t.
func FuzzParseTicket(f *testing.F) {
	for _, s := range ticketSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkTicketCanonical(t, s)
	})
}

// FuzzTicketPayload fuzzes the binary payload directly, so the fuzzer spends
// its time in the field parser rather than on base32. Inputs of a few KB make
// the fuzzer's minimization slow (execs drop to 0/sec for up to a minute);
// -fuzzminimizetime=3s keeps it moving.
func FuzzTicketPayload(f *testing.F) {
	for _, s := range ticketSeeds(f) {
		if p, err := decodeTicketText(s); err == nil {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		checkTicketCanonical(t, rawTicket(p))
	})
}

func checkTicketCanonical(t *testing.T, s string) {
	tk, err := ParseTicket(s)
	if err != nil {
		if !errors.Is(err, ErrTicket) {
			t.Fatalf("error %q does not wrap ErrTicket", err)
		}
		return
	}
	enc := tk.String()
	if want := strings.ToLower(strings.TrimSpace(s)); enc != want {
		t.Fatalf("not canonical: ParseTicket(%q).String() = %q", want, enc)
	}
	again, err := ParseTicket(enc)
	if err != nil {
		t.Fatalf("re-encoded ticket %q does not parse: %v", enc, err)
	}
	if !ticketsEqual(again, tk) {
		t.Fatalf("decode(encode(t)) = %+v, want %+v", again, tk)
	}
}

// ticketSeeds returns the golden, round-trip and hostile tickets.
func ticketSeeds(tb testing.TB) []string {
	seeds := goldenTicketStrings(tb)
	for _, tk := range validTickets(tb) {
		seeds = append(seeds, tk.String())
	}
	for _, h := range hostileTickets(tb) {
		seeds = append(seeds, h.input)
	}
	return seeds
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kithnet/kith/node/nodetest"
)

// kith demo passes: relay, two peers, DHT lookup by ID, pings and messages
// both ways, an open and a private room, and a 64 MiB file (this part needs the transfer engine).
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(t.Context(), &out, nodetest.Logger(t)); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"alice -> bob: found through the DHT", "path direct",
		`alice -> bob: message "hello bob, this is alice" delivered`,
		`bob -> alice: message "hello alice, this is bob" delivered`,
		"alice, bob: joined open room lobby and see each other in it",
		`alice -> lobby: "hi bob, alice here in lobby" reached bob in`,
		`bob -> lobby: "hi alice, bob here in lobby" reached alice in`,
		"alice, bob: joined private room ops (a generated secret; key derived with Argon2id, payloads sealed)",
		`alice -> ops: "hi bob, alice here in ops" reached bob in`,
		`bob -> ops: "hi alice, bob here in ops" reached alice in`,
		"kith room log ops (on bob):",
		"alice -> bob: 64.0 MiB file received and verified in", "MB/s, path direct",
		"sha256 of source and received file are equal",
		"demo passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// The binary's demo command exits 0, as the README promises.
func TestDemoCommand(t *testing.T) {
	r := run(t, t.TempDir(), "demo")
	if r.code != 0 || !strings.Contains(r.stdout, "demo passed") {
		t.Fatalf("kith demo: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

package protocols

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseManifest parses arbitrary bytes as a manifest. ParseManifest must
// not panic; every error wraps exactly one sentinel; an accepted manifest
// passes Validate, has only paths CheckPath accepts, and survives Marshal
// and ParseManifest unchanged, with the same root.
func FuzzParseManifest(f *testing.F) {
	const maxSeed = 4 << 10 // see dmSeeds
	for _, m := range validManifests() {
		f.Add(marshal(f, m))
	}
	f.Add(readGoldenHex(f, goldenFilesDir+"/manifest.hex"))
	for _, h := range hostileManifestBytes(f) {
		if len(h.input) <= maxSeed {
			f.Add(h.input)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			n := 0
			for _, s := range []error{ErrFrameTooLarge, ErrMalformed, ErrUnsupportedVersion} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || m != nil {
				t.Fatalf("ParseManifest = %v, %q; want nil and an error wrapping one sentinel", m, err)
			}
			return
		}
		checkAcceptedManifest(t, m)
	})
}

func checkAcceptedManifest(t *testing.T, m *Manifest) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatalf("ParseManifest accepted a manifest Validate refuses: %v", err)
	}
	for _, e := range m.Entries {
		if err := CheckPath(e.Path); err != nil {
			t.Fatalf("ParseManifest accepted path %q: %v", e.Path, err)
		}
	}
	enc, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal refuses what ParseManifest accepted: %v", err)
	}
	again, err := ParseManifest(enc)
	if err != nil {
		t.Fatalf("re-encoded manifest does not parse: %v", err)
	}
	if !manifestsEqual(again, m) || again.Root() != m.Root() {
		t.Fatalf("ParseManifest(Marshal(m)) = %+v, want %+v", again.Entries, m.Entries)
	}
	if enc2 := marshal(t, again); !bytes.Equal(enc2, enc) {
		t.Fatalf("encoding is not stable: %x, then %x", enc, enc2)
	}
}

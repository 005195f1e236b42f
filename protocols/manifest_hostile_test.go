package protocols

import (
	"slices"
	"strconv"
	"testing"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// baseManifest is the valid manifest the hostile encodings are made from.
func baseManifest() *Manifest {
	return manifest(dir("d"), fileOf("d/a.txt", []byte("hello")), file("b", ChunkSize+1))
}

type hostileBytes struct {
	name  string
	input []byte
	want  error
	msg   string
}

// hostileManifestBytes are encodings ParseManifest must reject: the rules of
// Validate as they arrive on the wire, and those of the encoding itself.
func hostileManifestBytes(tb testing.TB) []hostileBytes {
	base := baseManifest()
	edit := func(f func(*filespb.Manifest)) []byte { return wireManifest(tb, base, f) }
	valid := wireManifest(tb, base, nil)
	flip := func(b []byte) []byte { c := slices.Clone(b); c[0] ^= 1; return c }
	many := make([]Entry, MaxEntries+1)
	for i := range many {
		many[i] = file("f"+strconv.Itoa(i), 0)
	}
	return slices.Concat([]hostileBytes{
		{"over MaxManifestBytes", make([]byte, MaxManifestBytes+1), ErrFrameTooLarge,
			"invalid manifest: 16777217 bytes, more than the 16777216 allowed"},
		{"garbage", []byte{0xff, 0xff, 0xff}, ErrMalformed, "invalid manifest: "},
		{"truncated", valid[:len(valid)-1], ErrMalformed, "invalid manifest: "},
		{"empty", nil, ErrUnsupportedVersion, "unsupported manifest version 0; this side speaks only version 1"},
		{"version 2", edit(func(pm *filespb.Manifest) { pm.Version = 2 }), ErrUnsupportedVersion,
			"manifest version 2"},
		{"version 2 breaking other rules", edit(func(pm *filespb.Manifest) {
			pm.Version, pm.ChunkSize, pm.Entries, pm.Root = 2, 7, nil, nil
		}), ErrUnsupportedVersion, "manifest version 2"},
		{"version as bytes", append(edit(func(pm *filespb.Manifest) { pm.Version = 0 }), pbuf(nil).bytes(1, []byte{1})...),
			ErrUnsupportedVersion, "manifest version 0"},
		{"chunk size 0", edit(func(pm *filespb.Manifest) { pm.ChunkSize = 0 }), ErrMalformed,
			"chunk size 0; version 1 manifests use 1048576"},
		{"chunk size 64 KiB", edit(func(pm *filespb.Manifest) { pm.ChunkSize = 1 << 16 }), ErrMalformed, "chunk size 65536"},
		{"no root", edit(func(pm *filespb.Manifest) { pm.Root = nil }), ErrMalformed, "root is 0 bytes; it must be exactly 32"},
		{"root of 33 bytes", edit(func(pm *filespb.Manifest) { pm.Root = append(pm.Root, 0) }), ErrMalformed, "root is 33 bytes"},
		{"manifest root mismatch", edit(func(pm *filespb.Manifest) { pm.Root = flip(pm.Root) }), ErrMalformed,
			"invalid manifest: root does not match the entries' roots"},
		{"entry root mismatch", edit(func(pm *filespb.Manifest) { pm.Entries[1].Root = flip(pm.Entries[1].Root) }),
			ErrMalformed, `entry 1 ("d/a.txt"): root does not match its chunk hashes`},
		{"chunk hash changed", edit(func(pm *filespb.Manifest) { pm.Entries[2].Chunks = flip(pm.Entries[2].Chunks) }),
			ErrMalformed, `entry 2 ("b"): root does not match its chunk hashes`},
		{"entry root missing", edit(func(pm *filespb.Manifest) { pm.Entries[0].Root = nil }), ErrMalformed,
			`entry 0 ("d"): root is 0 bytes; it must be exactly 32`},
		{"chunks of 33 bytes", edit(func(pm *filespb.Manifest) { pm.Entries[1].Chunks = make([]byte, 33) }),
			ErrMalformed, `entry 1 ("d/a.txt"): chunk hashes of 33 bytes, not a multiple of 32`},
		{"one chunk hash short", edit(func(pm *filespb.Manifest) { pm.Entries[2].Chunks = pm.Entries[2].Chunks[:32] }),
			ErrMalformed, `entry 2 ("b"): 1 chunk hashes; a file of 1048577 bytes has 2 chunks`},
		{"size 2^41", edit(func(pm *filespb.Manifest) { pm.Entries[2].Size = 1 << 41 }), ErrFrameTooLarge,
			"size 2199023255552 is more than the 1099511627776 bytes allowed"},
		{"size 2^64-1", edit(func(pm *filespb.Manifest) { pm.Entries[2].Size = 1<<64 - 1 }), ErrFrameTooLarge,
			"size 18446744073709551615 is more than"},
		{"mode 01777", edit(func(pm *filespb.Manifest) { pm.Entries[0].Mode = 0o1777 }), ErrMalformed,
			"mode 01777 has bits other than the permission bits 0777"},
		{"mode 2^32-1", edit(func(pm *filespb.Manifest) { pm.Entries[1].Mode = 1<<32 - 1 }), ErrMalformed, "mode 037777777777"},
		{"no entries", edit(func(pm *filespb.Manifest) { pm.Entries = nil }), ErrMalformed, "no entries"},
		{"too many entries", wireManifest(tb, manifest(many...), nil), ErrFrameTooLarge, "10001 entries"},
		{"hostile path", edit(func(pm *filespb.Manifest) { pm.Entries[2].Path = "../b" }), ErrMalformed,
			`entry 2: path "../b" name ".." refers to a directory itself or its parent`},
		{"terminal escape", edit(func(pm *filespb.Manifest) { pm.Entries[2].Path = "\x1b]0;pwned\x07" }), ErrMalformed,
			`entry 2: path "\x1b]0;pwned\a" contains control character U+001B`},
		{"dir with chunks", edit(func(pm *filespb.Manifest) { pm.Entries[0].Chunks = make([]byte, 32) }), ErrMalformed,
			`entry 0 ("d"): a directory with 1 chunk hashes`},
		{"case collision", edit(func(pm *filespb.Manifest) { pm.Entries[2].Path = "D" }), ErrMalformed,
			`entry 2 ("D"): same path as entry 0 ("d")`},
		{"child before parent", edit(func(pm *filespb.Manifest) { pm.Entries[0], pm.Entries[1] = pm.Entries[1], pm.Entries[0] }),
			ErrMalformed, `entry 0 ("d/a.txt"): its directory "d" is not an earlier directory entry`},
	}, hostileManifestEncodings(valid))
}

// hostileManifestEncodings break the protobuf encoding rather than a rule.
func hostileManifestEncodings(valid []byte) []hostileBytes {
	app := func(b pbuf) []byte { return append(slices.Clone(valid), b...) }
	return []hostileBytes{
		{"entries as varint", app(pbuf(nil).varint(3, 1)), ErrMalformed,
			"invalid manifest: Manifest field entries has the wrong wire type 0"},
		{"root as varint", app(pbuf(nil).varint(4, 1)), ErrMalformed, "Manifest field root has the wrong wire type 0"},
		{"chunk size as bytes", app(pbuf(nil).bytes(2, []byte{1})), ErrMalformed, "Manifest field chunk_size has the wrong wire type 2"},
		{"entry path as varint", app(pbuf(nil).bytes(3, pbuf(nil).varint(1, 5))), ErrMalformed,
			`entry 3 (""): Entry field path has the wrong wire type 0`},
		{"entry size as fixed32", app(pbuf(nil).bytes(3, pbuf(nil).bytes(1, []byte("x")).fixed32(3, 5))), ErrMalformed,
			`entry 3 ("x"): Entry field size has the wrong wire type 5`},
		{"path not UTF-8", app(pbuf(nil).bytes(3, pbuf(nil).bytes(1, []byte("a\xffb")))), ErrMalformed, "invalid UTF-8"},
		{"group", app([]byte{0x0b, 0x0c}), ErrMalformed, "invalid manifest: "},
	}
}

func TestHostileManifestBytes(t *testing.T) {
	for _, tc := range hostileManifestBytes(t) {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(tc.input)
			if m != nil {
				t.Fatalf("ParseManifest returned %+v with its error", m.Entries)
			}
			checkManifestError(t, err, tc.want, tc.msg)
		})
	}
}

// TestManifestUnknownFields: unknown fields are ignored (forward
// compatibility), and the content ID is of the bytes as sent.
func TestManifestUnknownFields(t *testing.T) {
	unknown := pbuf(nil).varint(15, 1).bytes(100, []byte("future")).fixed32(7, 9)
	base := baseManifest()
	cases := map[string][]byte{
		"in manifest": append(wireManifest(t, base, nil), unknown...),
		"in entry": wireManifest(t, base, func(pm *filespb.Manifest) {
			pm.Entries[1].ProtoReflect().SetUnknown([]byte(unknown))
		}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := ParseManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			if !manifestsEqual(m, base) {
				t.Fatalf("got %+v, want %+v", m.Entries, base.Entries)
			}
			if ContentID(b) == ContentID(marshal(t, m)) {
				t.Fatal("the content ID ignores the unknown fields")
			}
		})
	}
}

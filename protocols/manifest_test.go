package protocols

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	for name, m := range validManifests() {
		t.Run(name, func(t *testing.T) {
			b := marshal(t, m)
			got, err := ParseManifest(b)
			if err != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
			if !manifestsEqual(got, m) {
				t.Fatalf("round trip: got %+v, want %+v", got.Entries, m.Entries)
			}
			if again := marshal(t, got); !bytes.Equal(again, b) {
				t.Fatalf("re-encoded to %x, want %x", again, b)
			}
			if got.Root() != m.Root() || ContentID(b) != ContentID(marshal(t, m)) {
				t.Fatal("root or content ID changed in the round trip")
			}
		})
	}
}

// TestHashes checks HashChunk against the official BLAKE3 test vectors
// (input byte i is i%251) and the roots against their definitions.
func TestHashes(t *testing.T) {
	input := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b
	}
	vectors := map[int]string{
		0:    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		1:    "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
		1024: "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
		1025: "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
	}
	for n, want := range vectors {
		if got := HashChunk(input(n)); hex.EncodeToString(got[:]) != want {
			t.Errorf("HashChunk(%d bytes) = %x, want %s", n, got, want)
		}
	}
	var empty Entry
	if empty.Root() != HashChunk(nil) {
		t.Error("the root of an entry without chunks is not the hash of zero bytes")
	}
	e := fileOf("f", input(3*ChunkSize-1))
	cat := slicesConcat(e.Chunks)
	if e.Root() != HashChunk(cat) {
		t.Error("Entry.Root is not the hash of the concatenated chunk hashes")
	}
	many := file("many", 1000*ChunkSize) // more hashes than hashOfHashes buffers at once
	if many.Root() != HashChunk(slicesConcat(many.Chunks)) {
		t.Error("Entry.Root of 1000 chunks is not the hash of the concatenated chunk hashes")
	}
	m := manifest(dir("d"), e, file("d/x", 0))
	r0, r1, r2 := m.Entries[0].Root(), m.Entries[1].Root(), m.Entries[2].Root()
	if m.Root() != HashChunk(slicesConcat([]Hash{r0, r1, r2})) {
		t.Error("Manifest.Root is not the hash of the concatenated entry roots")
	}
	if b := marshal(t, m); ContentID(b) != HashChunk(b) {
		t.Error("ContentID is not the hash of the manifest's bytes")
	}
}

func slicesConcat(hs []Hash) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func TestChunkCount(t *testing.T) {
	cases := map[int64]int64{0: 0, 1: 1, ChunkSize - 1: 1, ChunkSize: 1, ChunkSize + 1: 2,
		10 * ChunkSize: 10, MaxFileSize: MaxFileSize / ChunkSize, -1: 0, 1<<63 - 1: 1 << 43}
	for size, want := range cases {
		if got := ChunkCount(size); got != want {
			t.Errorf("ChunkCount(%d) = %d, want %d", size, got, want)
		}
	}
}

func TestManifestCounts(t *testing.T) {
	m := validManifests()["nested"]
	if got := m.Files(); got != 3 {
		t.Errorf("Files() = %d, want 3", got)
	}
	if got := m.TotalSize(); got != 8 {
		t.Errorf("TotalSize() = %d, want 8", got)
	}
}

type hostileManifest struct {
	name string
	m    *Manifest
	want error  // the sentinel the error must wrap
	msg  string // substring of the error message
}

// hostileManifests are manifests Validate (and so Marshal) must reject.
func hostileManifests() []hostileManifest {
	many := make([]Entry, MaxEntries+1)
	for i := range many {
		many[i] = file("f"+strconv.Itoa(i), 0)
	}
	huge := fakeChunks(ChunkCount(MaxFileSize)) // shared: Validate only counts them
	tib := func(p string) Entry { return Entry{Path: p, Size: MaxFileSize, Chunks: huge} }
	return []hostileManifest{
		{"no entries", manifest(), ErrMalformed, "no entries; a manifest has at least one"},
		{"too many entries", manifest(many...), ErrFrameTooLarge, "10001 entries, more than the 10000 allowed"},
		{"parent path", manifest(file("../x", 1)), ErrMalformed, `entry 0: path "../x" name ".." refers`},
		{"escape inside", manifest(dir("a"), file("a/../../x", 1)), ErrMalformed, `entry 1: path "a/../../x"`},
		{"absolute", manifest(file("/etc/passwd", 1)), ErrMalformed, `path "/etc/passwd" is absolute`},
		{"drive", manifest(file(`C:\x`, 1)), ErrMalformed, `path "C:\\x" contains ":"`},
		{"escape code", manifest(file("\x1b[31mred", 1)), ErrMalformed, `path "\x1b[31mred" contains control character U+001B`},
		{"bidi override", manifest(file("evil\u202etxt.exe", 1)), ErrMalformed, `"evil\u202etxt.exe"`},
		{"device", manifest(file("nul.txt", 1)), ErrMalformed, "is a device name on Windows"},
		{"partial", manifest(file("x.kith-partial", 1)), ErrMalformed, ".kith-partial"},
		{"empty path", manifest(file("", 1)), ErrMalformed, `entry 0: path "" is empty`},
		{"child before parent", manifest(file("d/x", 1), dir("d")), ErrMalformed,
			`entry 0 ("d/x"): its directory "d" is not an earlier directory entry`},
		{"missing parent", manifest(dir("a"), file("a/b/c", 1)), ErrMalformed,
			`entry 1 ("a/b/c"): its directory "a/b" is not an earlier directory entry`},
		{"file as parent", manifest(file("d", 1), file("d/x", 1)), ErrMalformed, `its directory "d" is not`},
		{"parent of another case", manifest(dir("D"), file("d/x", 1)), ErrMalformed, `its directory "d" is not`},
		{"duplicate", manifest(file("a", 1), file("b", 1), file("a", 2)), ErrMalformed,
			`entry 2 ("a"): same path as entry 0 ("a") on a file system that ignores case or normalization`},
		{"duplicate dir", manifest(dir("a"), dir("a")), ErrMalformed, "same path as entry 0"},
		{"file collides with dir", manifest(dir("a"), file("A", 1)), ErrMalformed, `entry 1 ("A"): same path as entry 0 ("a")`},
		{"case", manifest(file("README", 1), file("readme", 1)), ErrMalformed, "same path as entry 0"},
		{"umlaut case", manifest(file("Ä", 1), file("ä", 1)), ErrMalformed, `entry 1 ("ä"): same path as entry 0 ("Ä")`},
		{"sharp s", manifest(file("straße", 1), file("STRASSE", 1)), ErrMalformed, "same path as entry 0"},
		{"sharp s capital", manifest(file("ß", 1), file("SS", 1)), ErrMalformed, "same path as entry 0"},
		{"NFD duplicate", manifest(file("ä", 1), file("a\u0308", 1)), ErrMalformed,
			"not in Unicode normalization form C"},
		{"nested case", manifest(dir("d"), file("d/x", 1), file("d/X", 1)), ErrMalformed, "entry 2"},
		{"dir with size", manifest(Entry{Path: "d", Dir: true, Size: 1}), ErrMalformed,
			`entry 0 ("d"): a directory of 1 bytes; a directory has size 0`},
		{"dir with chunks", manifest(Entry{Path: "d", Dir: true, Chunks: fakeChunks(1)}), ErrMalformed,
			"a directory with 1 chunk hashes"},
		{"file over MaxFileSize", manifest(Entry{Path: "big", Size: MaxFileSize + 1}), ErrFrameTooLarge,
			`entry 0 ("big"): size 1099511627777 is more than the 1099511627776 bytes allowed`},
		{"file of 2^63-1", manifest(Entry{Path: "big", Size: 1<<63 - 1}), ErrFrameTooLarge, "is more than"},
		{"negative size", manifest(Entry{Path: "neg", Size: -1}), ErrMalformed, "size -1 is negative"},
		{"total over MaxTotalSize", manifest(tib("1"), tib("2"), tib("3"), tib("4"), tib("5")), ErrFrameTooLarge,
			`entry 4 ("5"): the files total more than the 4398046511104 bytes allowed`},
		{"too few chunks", manifest(Entry{Path: "f", Size: ChunkSize + 1, Chunks: fakeChunks(1)}), ErrMalformed,
			"1 chunk hashes; a file of 1048577 bytes has 2 chunks"},
		{"too many chunks", manifest(Entry{Path: "f", Size: 1, Chunks: fakeChunks(2)}), ErrMalformed,
			"2 chunk hashes; a file of 1 bytes has 1 chunks"},
		{"empty file with a chunk", manifest(Entry{Path: "f", Chunks: fakeChunks(1)}), ErrMalformed,
			"1 chunk hashes; a file of 0 bytes has 0 chunks"},
		{"file without chunks", manifest(Entry{Path: "f", Size: 10}), ErrMalformed, "0 chunk hashes"},
		{"setuid", manifest(Entry{Path: "f", Mode: 0o644 | fs.ModeSetuid}), ErrMalformed,
			"mode 040000644 has bits other than the permission bits 0777"},
		{"setgid", manifest(Entry{Path: "f", Mode: fs.ModeSetgid | 0o755}), ErrMalformed, "has bits other than"},
		{"sticky", manifest(Entry{Path: "d", Dir: true, Mode: fs.ModeSticky | 0o777}), ErrMalformed, "mode"},
		{"dir mode bit", manifest(Entry{Path: "d", Dir: true, Mode: fs.ModeDir | 0o755}), ErrMalformed, "mode"},
		{"symlink", manifest(Entry{Path: "l", Mode: fs.ModeSymlink | 0o777}), ErrMalformed, "mode"},
		{"unix setuid bit", manifest(Entry{Path: "f", Mode: 0o4755}), ErrMalformed, "mode 04755"},
	}
}

func TestHostileManifest(t *testing.T) {
	for _, tc := range hostileManifests() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			checkManifestError(t, err, tc.want, tc.msg)
			b, err2 := tc.m.Marshal()
			if b != nil || err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Marshal = %d bytes, %v; want nothing and Validate's error", len(b), err2)
			}
		})
	}
}

// checkManifestError fails unless err wraps want (and no other sentinel),
// mentions msg, and prints safely.
func checkManifestError(t *testing.T, err, want error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted")
	}
	n := 0
	for _, s := range []error{ErrFrameTooLarge, ErrMalformed, ErrUnsupportedVersion} {
		if errors.Is(err, s) {
			n++
		}
	}
	if !errors.Is(err, want) || n != 1 {
		t.Fatalf("error %q does not wrap %q alone", err, want)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
	checkPrintable(t, err.Error())
}

package protocols

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReadDMFrame reads frames from arbitrary bytes until an error. Read must
// not panic; every error is io.EOF or wraps exactly one sentinel; and every
// accepted frame is canonical in effect: Write accepts it, and reading what
// Write wrote gives an equal frame and encodes to the same bytes again.
func FuzzReadDMFrame(f *testing.F) {
	for _, s := range dmSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewDMReader(bytes.NewReader(data))
		for {
			fr, err := r.Read()
			if err != nil {
				checkDMReadError(t, err)
				return
			}
			checkDMReencode(t, fr)
		}
	})
}

func checkDMReencode(t *testing.T, f DMFrame) {
	t.Helper()
	var buf bytes.Buffer
	if err := NewDMWriter(&buf).Write(f); err != nil {
		t.Fatalf("Write refuses the frame Read accepted (%+v): %v", f, err)
	}
	enc := bytes.Clone(buf.Bytes())
	r := NewDMReader(&buf)
	again, err := r.Read()
	if err != nil {
		t.Fatalf("re-encoded frame %x does not read: %v", enc, err)
	}
	if !dmFramesEqual(again, f) {
		t.Fatalf("decode(encode(f)) = %+v, want %+v", again, f)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("re-encoded frame %x: after it, err = %v, want io.EOF", enc, err)
	}
	if enc2 := encodeDM(t, again); !bytes.Equal(enc2, enc) {
		t.Fatalf("encoding is not stable: %x, then %x", enc, enc2)
	}
}

// dmSeeds returns the golden, round-trip and hostile inputs, and a stream of
// several frames. Inputs of 64 KiB (the longest texts, a body after an
// oversized length) are left out: the fuzzer spends its time minimizing their
// offspring (0 execs/sec for the whole run) instead of fuzzing, and the unit
// tests cover them. Only the oversized length prefix itself is kept.
func dmSeeds(tb testing.TB) [][]byte {
	const maxSeed = 4 << 10
	seeds := goldenDMInputs(tb)
	var stream []byte
	for _, fr := range validDMFrames() {
		if enc := encodeDM(tb, fr); len(enc) <= maxSeed {
			seeds = append(seeds, enc)
			stream = append(stream, enc...)
		}
	}
	seeds = append(seeds, stream)
	for _, h := range hostileDMFrames() {
		seeds = append(seeds, h.input[:min(len(h.input), maxSeed)])
	}
	return seeds
}

package protocols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// A length prefix within the limit is a claim, not a licence: what a reader
// allocates follows the bytes that arrive (RELIABILITY.md B3; seen in
// node/hostile_test.go, where four claimed Offers of MaxFilesFrame that
// were never sent cost a node 64 MiB).
func TestClaimedBodyNotAllocatedUpFront(t *testing.T) {
	for _, sent := range []int{0, 100, 1 << 20} {
		in := append(binary.AppendUvarint(nil, MaxFilesFrame), make([]byte, sent)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewFilesReader(bytes.NewReader(in)).Read(MaxFilesFrame)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("sent %d of %d: err = %v, want a malformed frame cut short", sent, MaxFilesFrame, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(4*sent+2*bodyStep) {
			t.Errorf("sent %d of a claimed %d bytes: %d bytes allocated, want at most %d",
				sent, MaxFilesFrame, grew, 4*sent+2*bodyStep)
		}
	}
}

// readBody reads bodies across its growth steps exactly.
func TestReadBodySizes(t *testing.T) {
	for _, n := range []int{0, 1, bodyStep - 1, bodyStep, bodyStep + 1, 3*bodyStep + 7, MaxFilesFrame} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(i % 251)
		}
		got, err := readBody(io.MultiReader(bytes.NewReader(want), bytes.NewReader([]byte("next"))), n)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("n %d: %d bytes, err %v", n, len(got), err)
		}
	}
}

package hostile_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/hostile"
)

// specs are one Spec of each exchange, with a reader of its first frame as
// the receiver reads it.
func specs() []struct {
	spec hostile.Spec
	read func(io.Reader) error
} {
	id := [16]byte{1, 2, 3}
	return []struct {
		spec hostile.Spec
		read func(io.Reader) error
	}{
		{hostile.DM(id, time.UnixMilli(1767225600000), "hi"), func(r io.Reader) error {
			_, err := protocols.NewDMReader(r).Read()
			return err
		}},
		{hostile.FilesOffer(id, []byte("not parsed by the framing")), func(r io.Reader) error {
			_, err := protocols.NewFilesReader(r).Read(protocols.MaxFilesFrame)
			return err
		}},
		{hostile.FilesFetch(protocols.Hash{9}, bytes.Repeat([]byte{7}, 16)), func(r io.Reader) error {
			_, err := protocols.NewFilesReader(r).Read(protocols.MaxFilesFrame)
			return err
		}},
		{hostile.History("/kith/room/1/open/lobby", 100), func(r io.Reader) error {
			_, err := protocols.NewHistoryReader(r).Read(protocols.MaxHistoryRequest)
			return err
		}},
	}
}

// TestSpecsMatchRealCodec checks the raw builder against the real writer
// and every bad frame against the real reader: the bytes a test sends are
// the attack it names, not another one.
func TestSpecsMatchRealCodec(t *testing.T) {
	for _, s := range specs() {
		t.Run(s.spec.Name, func(t *testing.T) {
			if got, want := s.spec.Version(1), s.spec.Valid(); !bytes.Equal(got, want) {
				t.Fatalf("Version(1) = %x\nthe real writer wrote %x", got, want)
			}
			for _, tc := range []struct {
				name string
				in   []byte
				code protocols.ErrorCode // 0: accepted
			}{
				{"valid", s.spec.Valid(), 0},
				{"unknown fields", s.spec.UnknownFields(), 0},
				{"version 2", s.spec.Version(2), protocols.CodeUnsupportedVersion},
				{"version 0", s.spec.Version(0), protocols.CodeUnsupportedVersion},
				{"length 2^63", s.spec.Oversized(1 << 63), protocols.CodeTooLarge},
				{"length 2^32", s.spec.Oversized(1 << 32), protocols.CodeTooLarge},
				{"length limit+1", s.spec.Oversized(uint64(s.spec.Limit) + 1), protocols.CodeTooLarge},
				{"11-byte varint", s.spec.LongVarint(), protocols.CodeMalformed},
				{"wrong wire type", s.spec.WrongWireType(), protocols.CodeMalformed},
				{"truncated field", s.spec.TruncatedField(), protocols.CodeMalformed},
				{"ends inside", s.spec.EndsInside(), protocols.CodeMalformed},
			} {
				err := s.read(bytes.NewReader(tc.in))
				if tc.code == 0 {
					if err != nil {
						t.Errorf("%s: %v, want accepted", tc.name, err)
					}
					continue
				}
				if err == nil || protocols.ErrorCodeFor(err) != tc.code {
					t.Errorf("%s: err = %v (%v), want %v", tc.name, err, protocols.ErrorCodeFor(err), tc.code)
				}
			}
		})
	}
}

func TestLongVarintIsElevenBytes(t *testing.T) {
	if b := hostile.LongVarint(); len(b) != 11 || b[10] != 1 {
		t.Fatalf("LongVarint = %x", b)
	}
}

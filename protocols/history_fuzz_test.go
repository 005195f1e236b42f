package protocols

import (
	"bytes"
	"io"
	"reflect"
	"testing"
)

// FuzzReadHistoryFrame reads frames from arbitrary bytes until an error,
// with the server's limit (MaxHistoryRequest) or the requester's. Read must
// not panic; every error is io.EOF or wraps exactly one sentinel; and every
// accepted frame writes again, reads back equal and encodes to the same
// bytes.
func FuzzReadHistoryFrame(f *testing.F) {
	var stream []byte
	for _, s := range goldenHistoryInputs(f) {
		f.Add(s, false)
		stream = append(stream, s...)
	}
	f.Add(stream, true)
	for _, h := range hostileHistoryFrames(f) {
		f.Add(h.input[:min(len(h.input), 4<<10)], h.server)
	}
	f.Fuzz(func(t *testing.T, data []byte, server bool) {
		limit := MaxHistoryFrame
		if server {
			limit = MaxHistoryRequest
		}
		r := NewHistoryReader(bytes.NewReader(data))
		for {
			fr, err := r.Read(limit)
			if err != nil {
				checkDMReadError(t, err)
				return
			}
			checkHistoryReencode(t, fr)
		}
	})
}

func checkHistoryReencode(t *testing.T, f HistoryFrame) {
	t.Helper()
	var buf bytes.Buffer
	if err := NewHistoryWriter(&buf).Write(f); err != nil {
		t.Fatalf("Write refuses the frame Read accepted (%+v): %v", f, err)
	}
	enc := bytes.Clone(buf.Bytes())
	r := NewHistoryReader(&buf)
	again, err := r.Read(MaxHistoryFrame)
	if err != nil {
		t.Fatalf("re-encoded frame %x does not read: %v", enc, err)
	}
	if !reflect.DeepEqual(again, f) {
		t.Fatalf("decode(encode(f)) = %+v, want %+v", again, f)
	}
	if _, err := r.Read(MaxHistoryFrame); err != io.EOF {
		t.Fatalf("re-encoded frame %x: after it, err = %v, want io.EOF", enc, err)
	}
	if enc2 := encodeHistory(t, again); !bytes.Equal(enc2, enc) {
		t.Fatalf("encoding is not stable: %x, then %x", enc, enc2)
	}
}

package protocols

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// errLost is what yamux reports on a stream whose connection ended without
// a goodbye (the peer's process was killed and its kernel closed the TCP
// connection with a FIN): it wraps io.EOF.
var errLost = fmt.Errorf("stream reset: connection closed: %w", io.EOF)

// cutReader returns data, then err.
type cutReader struct {
	data []byte
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, c.err
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

// A stream cut by a lost connection is the network's failure: whatever
// the cut splits (nothing, a length prefix, a frame, a chunk's data), the
// readers report it as the stream's error, with its cause, and neither as
// a malformed frame (a peer's fault) nor as the clean end (io.EOF itself).
// Only a clean end inside a frame is malformed. Before, a lost connection
// inside a frame was "malformed" (files.TestSenderConnectionLostPauses).
func TestLostConnectionIsNotMalformed(t *testing.T) {
	var files bytes.Buffer
	data := counting(7, 1000)
	if err := NewFilesWriter(&files).WriteChunk(ChunkHeader{Entry: 0, Index: 3, Size: uint32(len(data))}, data); err != nil {
		t.Fatal(err)
	}
	readFiles := func(r io.Reader) error {
		fr := NewFilesReader(r)
		f, err := fr.Read(MaxFilesControlFrame)
		if err != nil {
			return err
		}
		if err := fr.ReadChunkData(make([]byte, f.Chunk.Size)); err != nil {
			return err
		}
		_, err = fr.Read(MaxFilesControlFrame)
		return err
	}
	dm := encodeDM(t, msgFrame(dmID(1), "hello"))
	readDM := func(r io.Reader) error {
		dr := NewDMReader(r)
		if _, err := dr.Read(); err != nil {
			return err
		}
		_, err := dr.Read()
		return err
	}
	var hist bytes.Buffer
	if err := NewHistoryWriter(&hist).Write(HistoryFrame{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: 10}}); err != nil {
		t.Fatal(err)
	}
	readHistory := func(r io.Reader) error {
		hr := NewHistoryReader(r)
		if _, err := hr.Read(MaxHistoryRequest); err != nil {
			return err
		}
		_, err := hr.Read(MaxHistoryRequest)
		return err
	}
	for _, c := range []struct {
		name   string
		stream []byte
		read   func(io.Reader) error
	}{{"files", files.Bytes(), readFiles}, {"dm", dm, readDM}, {"history", hist.Bytes(), readHistory}} {
		for cut := 0; cut <= len(c.stream); cut++ {
			err := c.read(&cutReader{data: c.stream[:cut], err: errLost})
			if !errors.Is(err, errLost) || errors.Is(err, ErrMalformed) || err == io.EOF {
				t.Fatalf("%s, connection lost after %d of %d bytes: err = %v; want the stream's error, not malformed, not ended",
					c.name, cut, len(c.stream), err)
			}
			err = c.read(&cutReader{data: c.stream[:cut], err: io.EOF})
			switch {
			case cut == 0 || cut == len(c.stream):
				if err != io.EOF {
					t.Fatalf("%s, stream closed after %d of %d bytes: err = %v; want the clean end", c.name, cut, len(c.stream), err)
				}
			case !errors.Is(err, ErrMalformed):
				t.Fatalf("%s, stream closed after %d of %d bytes: err = %v; want malformed", c.name, cut, len(c.stream), err)
			}
		}
	}
}

package protocols_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kithnet/kith/protocols"
)

// The sender's side: write a message, then read the receiver's answer. On a
// libp2p stream, the sender would call CloseWrite after its last message.
func ExampleDMWriter() {
	var stream bytes.Buffer // stands in for a network.Stream
	w := protocols.NewDMWriter(&stream)

	id := [16]byte{0: 0xab, 15: 0xcd} // in practice random
	sentAt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := w.Write(protocols.DMFrame{Message: &protocols.DMMessage{ID: id, SentAt: sentAt, Text: "hi"}})
	fmt.Println(err)
	fmt.Printf("%x\n", stream.Bytes())

	// Write refuses what the receiver would refuse, and writes nothing.
	long := protocols.DMMessage{ID: id, SentAt: sentAt, Text: strings.Repeat("x", protocols.MaxDMText+1)}
	err = w.Write(protocols.DMFrame{Message: &long})
	fmt.Println(errors.Is(err, protocols.ErrFrameTooLarge), err)
	// Output:
	// <nil>
	// 210a1f08011210ab0000000000000000000000000000cd1880d0eab6b73322026869
	// true protocols: frame too large: message text is 65537 bytes, more than the 65536 allowed
}

// The receiver's side: answer every message in order, and stop at the end of
// the stream or at the first frame it refuses.
func ExampleDMReader() {
	// What a sender wrote: two messages, then it closed its write side.
	var in, out bytes.Buffer
	sender := protocols.NewDMWriter(&in)
	for i, text := range []string{"hello", "are you there?"} {
		m := protocols.DMMessage{ID: [16]byte{15: byte(i + 1)}, SentAt: time.UnixMilli(1767225600000 + int64(i)), Text: text}
		if err := sender.Write(protocols.DMFrame{Message: &m}); err != nil {
			panic(err)
		}
	}

	r, w := protocols.NewDMReader(&in), protocols.NewDMWriter(&out)
	for {
		f, err := r.Read()
		if err == io.EOF {
			break // the sender is done
		}
		if err != nil {
			_ = w.Write(protocols.DMFrame{Error: &protocols.RemoteError{Code: protocols.ErrorCodeFor(err)}})
			break
		}
		if f.Message == nil {
			_ = w.Write(protocols.DMFrame{Error: &protocols.RemoteError{Code: protocols.CodeUnexpected}})
			break
		}
		fmt.Printf("%x %s %q\n", f.Message.ID[14:], f.Message.SentAt.Format(time.RFC3339Nano), f.Message.Text)
		// ... store the message durably, then:
		_ = w.Write(protocols.DMFrame{Ack: &protocols.DMAck{ID: f.Message.ID}})
	}
	fmt.Printf("answered with %d bytes\n", out.Len())
	// Output:
	// 0001 2026-01-01T00:00:00Z "hello"
	// 0002 2026-01-01T00:00:00.001Z "are you there?"
	// answered with 42 bytes
}

// A receiver answers a frame it cannot take with the code ErrorCodeFor gives;
// the sender reads that answer as a *RemoteError.
func ExampleErrorCodeFor() {
	// A hostile sender claims a 4 GiB frame. Read refuses it before it
	// allocates anything.
	in := bytes.NewReader([]byte{0x80, 0x80, 0x80, 0x80, 0x10})
	_, err := protocols.NewDMReader(in).Read()
	fmt.Println(err)

	var answer bytes.Buffer
	refusal := protocols.RemoteError{Code: protocols.ErrorCodeFor(err), Message: "frames are at most 66560 bytes"}
	if err := protocols.NewDMWriter(&answer).Write(protocols.DMFrame{Error: &refusal}); err != nil {
		panic(err)
	}

	// The sender's side.
	f, err := protocols.NewDMReader(&answer).Read()
	if err != nil {
		panic(err)
	}
	var remote error = f.Error
	fmt.Println(remote)
	// Output:
	// protocols: frame too large: length prefix says 4294967296 bytes, more than the 66560 allowed
	// peer refused: too_large: frames are at most 66560 bytes
}

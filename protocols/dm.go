package protocols

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// DMProtocol is the stream protocol of direct messages, specified in the
// package documentation (section "Direct messages").
const DMProtocol protocol.ID = "/kith/dm/1.0.0"

// Limits and the in-band version of /kith/dm/1.0.0.
const (
	// DMVersion is the only Message version this code speaks and accepts.
	DMVersion = 1
	// MaxDMText is the most bytes of UTF-8 text a direct message carries.
	MaxDMText = 64 << 10
	// MaxDMFrame is the most bytes a frame may have after its length prefix.
	MaxDMFrame = MaxDMText + 1<<10
	// MaxDMErrorMessage is the most bytes of an Error frame's message.
	MaxDMErrorMessage = 256

	dmIDLen = 16
)

// DMMessage is a direct message on the wire. Its sender is the stream's
// remote peer, never a field.
type DMMessage struct {
	// ID is chosen at random by the sender; the receiver stores a message
	// once per sender and ID, however often it is retried.
	ID [16]byte
	// SentAt is the sender's clock, sent as Unix milliseconds (finer
	// precision is dropped); it must be after 1970-01-01 UTC. Read returns
	// it in UTC.
	SentAt time.Time
	// Text is valid UTF-8 of at most MaxDMText bytes.
	Text string
}

// DMAck answers a Message: the receiver has stored it durably.
type DMAck struct {
	ID [16]byte // the answered message's ID
}

// DMFrame is one frame of /kith/dm/1.0.0. Exactly one field is set.
type DMFrame struct {
	Message *DMMessage
	Ack     *DMAck
	Error   *RemoteError
}

// checkParts checks that exactly one of the frame's parts is set.
func (f DMFrame) checkParts() error {
	n := 0
	for _, set := range []bool{f.Message != nil, f.Ack != nil, f.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: frame has %d parts; it must have exactly one of message, ack, error",
			ErrMalformed, n)
	}
	return nil
}

// checkSentAt checks a sent_at value in Unix milliseconds.
func checkSentAt(ms int64) error {
	if ms <= 0 {
		return fmt.Errorf("%w: message sent_at is %d; it must be a positive number of Unix milliseconds",
			ErrMalformed, ms)
	}
	return nil
}

// checkText checks a message's text.
func checkText(s string) error {
	if len(s) > MaxDMText {
		return fmt.Errorf("%w: message text is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(s), MaxDMText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: message text is not valid UTF-8", ErrMalformed)
	}
	return nil
}

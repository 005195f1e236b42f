package protocols

import (
	"errors"
	"fmt"
	"time"
	"unicode"
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

// Errors from DMReader.Read and DMWriter.Write wrap one of these and say what
// is wrong. ErrorCodeFor maps them to the code to answer with.
var (
	// ErrFrameTooLarge: a length prefix above MaxDMFrame, text above
	// MaxDMText, or an error message above MaxDMErrorMessage.
	ErrFrameTooLarge = errors.New("protocols: frame too large")
	// ErrMalformed: anything else the specification does not allow,
	// including a frame cut off by the end of the stream.
	ErrMalformed = errors.New("protocols: malformed frame")
	// ErrUnsupportedVersion: a Message whose version is not DMVersion.
	ErrUnsupportedVersion = errors.New("protocols: unsupported version")
)

// ErrorCode says why a receiver refused a message. Its values are the wire
// values of the Error frame's code.
type ErrorCode int32

// Error codes; the package documentation says when each is used.
const (
	CodeMalformed ErrorCode = 1 + iota
	CodeTooLarge
	CodeUnsupportedVersion
	CodeNotAllowed
	CodeBlocked
	CodeRateLimited
	CodeInternal
	CodeUnexpected
)

var codeNames = [...]string{
	CodeMalformed:          "malformed",
	CodeTooLarge:           "too_large",
	CodeUnsupportedVersion: "unsupported_version",
	CodeNotAllowed:         "not_allowed",
	CodeBlocked:            "blocked",
	CodeRateLimited:        "rate_limited",
	CodeInternal:           "internal",
	CodeUnexpected:         "unexpected",
}

// String is the code's name in lowercase, such as "not_allowed", or
// "code(N)" for a code this version does not know.
func (c ErrorCode) String() string {
	if c >= CodeMalformed && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", int32(c))
}

// ErrorCodeFor returns the code a receiver answers with when reading or
// checking a frame failed with err: CodeTooLarge for ErrFrameTooLarge,
// CodeMalformed for ErrMalformed, CodeUnsupportedVersion for
// ErrUnsupportedVersion, and CodeInternal for anything else.
func ErrorCodeFor(err error) ErrorCode {
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrMalformed):
		return CodeMalformed
	case errors.Is(err, ErrUnsupportedVersion):
		return CodeUnsupportedVersion
	default:
		return CodeInternal
	}
}

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

// RemoteError is an Error frame: the receiver refused the oldest unanswered
// message and ends the stream.
type RemoteError struct {
	// Code is never 0. Codes above CodeUnexpected come from a newer peer.
	Code ErrorCode
	// Message is a short hint for humans: UTF-8, at most MaxDMErrorMessage
	// bytes, no control characters. It may be empty.
	Message string
}

// Error is "peer refused the message: CODE" followed by ": MESSAGE" when
// there is one.
func (e *RemoteError) Error() string {
	s := "peer refused the message: " + e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
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

// checkCode checks an Error frame's code: 0 (unspecified) and negative codes
// are invalid; codes this version does not know are accepted.
func checkCode(c ErrorCode) error {
	if c <= 0 {
		return fmt.Errorf("%w: error code %d is not a valid code", ErrMalformed, int32(c))
	}
	return nil
}

// checkErrorMessage checks an Error frame's message.
func checkErrorMessage(s string) error {
	if len(s) > MaxDMErrorMessage {
		return fmt.Errorf("%w: error message is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(s), MaxDMErrorMessage)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: error message is not valid UTF-8", ErrMalformed)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: error message has control character %U at byte %d",
				ErrMalformed, r, i)
		}
	}
	return nil
}

package protocols

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors about received data (frames of /kith/dm/1.0.0 and
// /kith/files/1.0.0, file manifests, entry paths) wrap one of these and say
// what is wrong. ErrorCodeFor maps them to the code to answer with.
var (
	// ErrFrameTooLarge: a length prefix above the reader's limit, or a
	// field, count or size above the limit the specification gives it.
	ErrFrameTooLarge = errors.New("protocols: frame too large")
	// ErrMalformed: anything else the specification does not allow,
	// including a frame cut off by the end of the stream.
	ErrMalformed = errors.New("protocols: malformed frame")
	// ErrUnsupportedVersion: a version field (of a DM Message, a file
	// Offer or Fetch, a manifest) this side does not speak.
	ErrUnsupportedVersion = errors.New("protocols: unsupported version")
)

// ErrorCode says why a peer refused a message or a transfer, or ended a
// transfer. Its values are the wire values of the Error frame's code, one
// space of codes for every kith protocol; the package documentation says
// which codes each protocol uses.
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
	CodeUnknownTransfer // files: no such transfer (or a wrong secret)
	CodeCancelled       // files: a user stopped the transfer
	CodeSourceChanged   // files: the sender's files changed since they were hashed
	CodeRootMismatch    // files: the receiver's root is not the manifest's
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
	CodeUnknownTransfer:    "unknown_transfer",
	CodeCancelled:          "cancelled",
	CodeSourceChanged:      "source_changed",
	CodeRootMismatch:       "root_mismatch",
}

// String is the code's name in lowercase, such as "not_allowed", or
// "code(N)" for a code this version does not know.
func (c ErrorCode) String() string {
	if c >= CodeMalformed && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", int32(c))
}

// ErrorCodeFor returns the code a peer answers with when reading or checking
// a frame, a manifest or a path it received failed with err: CodeTooLarge for ErrFrameTooLarge,
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

// RemoteError is an Error frame: in /kith/dm/1.0.0 the receiver refused the
// oldest unanswered message; in /kith/files/1.0.0 either side refused or
// ended the exchange. The stream ends after it.
type RemoteError struct {
	// Code is never 0. Codes above CodeRootMismatch come from a newer peer.
	Code ErrorCode
	// Message is a short hint for humans: UTF-8, at most MaxDMErrorMessage
	// bytes, no control characters. It may be empty.
	Message string
}

// Error is "peer refused: CODE" followed by ": MESSAGE" when there is one.
func (e *RemoteError) Error() string {
	s := "peer refused: " + e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
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

// ErrorHint makes msg fit an Error frame's message: every character that is
// not graphic becomes a space, and it is cut (at a character boundary) to
// MaxDMErrorMessage bytes.
func ErrorHint(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		if !unicode.IsGraphic(r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > MaxDMErrorMessage {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

package protocols

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
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

package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
)

// Malformed bodies and unknown fields are bad requests.
func TestTransferBadJSON(t *testing.T) {
	s := NewServer(nodetest.Start(t), nodetest.Logger(t))
	for _, tt := range []struct{ path, body string }{
		{"/v1/transfers/send", `{"to": "x", "paths": "not a list"}`},
		{"/v1/transfers/share", `{"paths": [], "kepp": true}`},
		{"/v1/transfers/receive", `{"ticket": `},
		{"/v1/transfers/abcd/accept", `[]`},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, tt.path, strings.NewReader(tt.body))
		s.srv.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"code":"bad_request"`) {
			t.Errorf("POST %s %s: %d %s", tt.path, tt.body, rec.Code, rec.Body)
		}
	}
}

// Every error of the transfer methods maps to the code the CLI's exit
// status follows.
func TestTransferErrorCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{wrap(node.ErrAmbiguousID), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrBadTransferID), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrBadPath), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrNotFileTicket), CodeBadRequest, http.StatusBadRequest},
		{wrap(files.ErrSelf), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrNotEd25519), CodeBadRequest, http.StatusBadRequest}, // contacts add of an RSA peer
		{wrap(files.ErrNoTransfer), CodeNotFound, http.StatusNotFound},
		{wrap(files.ErrNotOffered), CodeConflict, http.StatusConflict},
		{wrap(files.ErrNotAllowed), CodeRefused, http.StatusForbidden},
		{wrap(files.ErrBlocked), CodeRefused, http.StatusForbidden},
		{wrap(files.ErrLimitedPath), CodeUnreachable, http.StatusBadGateway},
		{wrap(node.ErrUnreachable), CodeUnreachable, http.StatusBadGateway},
		{wrap(files.ErrClosed), CodeInternal, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if code, status := errorCode(tt.err); code != tt.code || status != tt.status {
			t.Errorf("errorCode(%v) = %s %d, want %s %d", tt.err, code, status, tt.code, tt.status)
		}
	}
}

// Every error of the room methods maps to the code the CLI's exit status
// follows.
func TestRoomErrorCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{wrap(node.ErrBadRoomName), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrBadRoomSecret), CodeBadRequest, http.StatusBadRequest},
		{wrap(node.ErrBadRoomLimit), CodeBadRequest, http.StatusBadRequest},
		{wrap(chat.ErrRoomText), CodeBadRequest, http.StatusBadRequest},
		{wrap(chat.ErrEmpty), CodeBadRequest, http.StatusBadRequest},
		{wrap(chat.ErrNotJoined), CodeNotFound, http.StatusNotFound},
		{wrap(chat.ErrRoomKeyChange), CodeConflict, http.StatusConflict},
		{wrap(chat.ErrClosed), CodeInternal, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if code, status := errorCode(tt.err); code != tt.code || status != tt.status {
			t.Errorf("errorCode(%v) = %s %d, want %s %d", tt.err, code, status, tt.code, tt.status)
		}
	}
}

// A bad ?limit is a bad request, not all messages.
func TestRoomMessagesBadLimit(t *testing.T) {
	s := NewServer(nodetest.Start(t), nodetest.Logger(t))
	for _, q := range []string{"limit=-1", "limit=ten"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/rooms/lobby/messages?"+q, nil)
		s.srv.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"code":"bad_request"`) {
			t.Errorf("GET ?%s: %d %s", q, rec.Code, rec.Body)
		}
	}
}

// POST /v1/rooms never answers with the secret, nor quotes the body in an
// error, whatever is wrong with the request.
func TestJoinRoomNeverEchoesSecret(t *testing.T) {
	s := NewServer(nodetest.Start(t), nodetest.Logger(t))
	post := func(body string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/rooms", strings.NewReader(body))
		s.srv.Handler.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const first, second = "first-secret-Qx7", "second-secret-Zk9"
	tests := []struct {
		what, body string
		status     int
		hidden     []string
	}{
		{"join", `{"name":"ops","secret":"` + b64(first) + `"}`, http.StatusOK, []string{first, b64(first)}},
		{"same secret", `{"name":"ops","secret":"` + b64(first) + `"}`, http.StatusOK, []string{first, b64(first)}},
		{"another secret", `{"name":"ops","secret":"` + b64(second) + `"}`, http.StatusConflict, []string{second, b64(second)}},
		{"too short", `{"name":"new","secret":"` + b64("Qx7Zk9") + `"}`, http.StatusBadRequest, []string{"Qx7Zk9", b64("Qx7Zk9")}},
		{"misspelt field", `{"name":"new","secrte":"` + b64(second) + `"}`, http.StatusBadRequest, []string{second, b64(second)}},
		{"not base64", `{"name":"new","secret":"` + second + `!"}`, http.StatusBadRequest, []string{second}},
		{"not JSON", `{"name":"new","secret":` + second, http.StatusBadRequest, []string{second}},
		{"too large", `{"name":"new","secret":"` + strings.Repeat(b64(second), 300) + `"}`, http.StatusBadRequest, []string{b64(second)}},
	}
	for _, tt := range tests {
		status, body := post(tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.what, status, tt.status)
		}
		for _, h := range tt.hidden {
			if strings.Contains(body, h) {
				t.Errorf("%s: the answer shows the secret (%d bytes of it)", tt.what, len(h))
			}
		}
	}
}

package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/node"
)

// JoinRequest is the body of POST /v1/rooms. Secret is nil for an open
// room. It travels only over the 0600 control socket, and is never logged.
type JoinRequest struct {
	Name   string `json:"name"`
	Secret []byte `json:"secret,omitempty"`
}

// RoomSendRequest is the body of POST /v1/rooms/{name}/messages.
type RoomSendRequest struct {
	Text string `json:"text"`
}

// Rooms lists the rooms we are in, by name (GET /v1/rooms).
func (c *Client) Rooms(ctx context.Context) ([]node.RoomInfo, error) {
	var v []node.RoomInfo
	return v, c.do(ctx, http.MethodGet, "/v1/rooms", nil, &v)
}

// JoinRoom joins an open room (secret nil) or a private one (POST
// /v1/rooms). Joining a room we are in with the same secret is not an
// error.
func (c *Client) JoinRoom(ctx context.Context, name string, secret []byte) (node.RoomInfo, error) {
	body, err := joinBody(name, secret)
	if err != nil {
		return node.RoomInfo{}, err
	}
	defer clear(body)
	var v node.RoomInfo
	return v, c.do(ctx, http.MethodPost, "/v1/rooms", rawBody(body), &v)
}

// joinBody encodes a JoinRequest into one buffer of its own, which the
// caller wipes: json.Marshal would leave a copy of the secret in its pool.
func joinBody(name string, secret []byte) ([]byte, error) {
	n, err := json.Marshal(name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(n)+base64.StdEncoding.EncodedLen(len(secret))+24)
	b = append(append(b, `{"name":`...), n...)
	if len(secret) > 0 {
		b = base64.StdEncoding.AppendEncode(append(b, `,"secret":"`...), secret)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// LeaveRoom leaves a room (DELETE /v1/rooms/{name}); its messages stay.
func (c *Client) LeaveRoom(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/rooms/"+url.PathEscape(name), nil, &struct{}{})
}

// SendRoom publishes text to a room (POST /v1/rooms/{name}/messages).
func (c *Client) SendRoom(ctx context.Context, room, text string) (node.RoomMessageInfo, error) {
	var v node.RoomMessageInfo
	return v, c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/messages", RoomSendRequest{Text: text}, &v)
}

// RoomMessages lists a room's last limit messages (0: all) in room order,
// oldest first (GET /v1/rooms/{name}/messages?limit=N).
func (c *Client) RoomMessages(ctx context.Context, room string, limit int) ([]node.RoomMessageInfo, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v []node.RoomMessageInfo
	return v, c.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), nil, &v)
}

func (s *Server) routeRooms(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rooms", s.handleRooms)
	mux.HandleFunc("POST /v1/rooms", s.handleJoinRoom)
	mux.HandleFunc("DELETE /v1/rooms/{name}", s.handleLeaveRoom)
	mux.HandleFunc("POST /v1/rooms/{name}/messages", s.handleSendRoom)
	mux.HandleFunc("GET /v1/rooms/{name}/messages", s.handleRoomMessages)
}

func (s *Server) handleRooms(w http.ResponseWriter, r *http.Request) {
	rs, err := s.n.Rooms(r.Context())
	if rs == nil {
		rs = []node.RoomInfo{}
	}
	reply(w, rs, err)
}

func (s *Server) handleJoinRoom(w http.ResponseWriter, r *http.Request) {
	req, err := readJoin(r)
	defer clear(req.Secret)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	info, err := s.n.JoinRoom(r.Context(), req.Name, req.Secret)
	reply(w, info, err)
}

// maxJoinBody caps a JoinRequest: a name, and a secret of at most
// protocols.MaxRoomSecret bytes in base64, with room to spare.
const maxJoinBody = 4 << 10

// readJoin decodes a JoinRequest, strictly like readJSON, but through
// buffers it wipes (the body in one of its own, each field's raw text), so
// that the secret's only copy left is the returned one, which the caller
// wipes. Its errors never quote the body.
func readJoin(r *http.Request) (JoinRequest, error) {
	buf := make([]byte, maxJoinBody+1)
	defer clear(buf)
	n, err := io.ReadFull(r.Body, buf)
	switch {
	case err == nil:
		return JoinRequest{}, fmt.Errorf("request body over %d bytes", maxJoinBody)
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return JoinRequest{}, fmt.Errorf("read the request: %w", err)
	}
	body := buf[:n]
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return JoinRequest{}, errors.New("the request is not a JSON object")
	}
	for k, v := range fields {
		clear(v)
		if k != "name" && k != "secret" {
			return JoinRequest{}, fmt.Errorf("unknown field %q", k)
		}
	}
	var req JoinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		clear(req.Secret)
		return JoinRequest{}, errors.New(`"name" must be a string and "secret" base64`)
	}
	return req, nil
}

func (s *Server) handleLeaveRoom(w http.ResponseWriter, r *http.Request) {
	reply(w, struct{}{}, s.n.LeaveRoom(r.Context(), r.PathValue("name")))
}

func (s *Server) handleSendRoom(w http.ResponseWriter, r *http.Request) {
	var req RoomSendRequest
	if readJSON(w, r, &req) {
		m, err := s.n.SendRoom(r.Context(), r.PathValue("name"), req.Text)
		reply(w, m, err)
	}
}

func (s *Server) handleRoomMessages(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			writeError(w, fmt.Errorf("%w: limit %q is not a number of messages", errBadRequest, v))
			return
		}
	}
	ms, err := s.n.RoomMessages(r.Context(), r.PathValue("name"), limit)
	if ms == nil {
		ms = []node.RoomMessageInfo{}
	}
	reply(w, ms, err)
}

// isBadRoomArg reports errors in a room request's arguments.
func isBadRoomArg(err error) bool {
	for _, e := range []error{node.ErrBadRoomName, node.ErrBadRoomSecret, node.ErrBadRoomLimit, chat.ErrRoomText} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

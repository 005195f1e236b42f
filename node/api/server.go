package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/store"
	"github.com/kithnet/kith/protocols"
)

// SocketFile is the control socket's name inside a kith home.
const SocketFile = "kith.sock"

// SocketPath is the control socket of a home.
func SocketPath(home string) string { return filepath.Join(home, SocketFile) }

// Server serves the control API for one node.
type Server struct {
	n   *node.Node
	log *slog.Logger
	srv *http.Server
}

// NewServer returns a server for n. It does not listen yet.
func NewServer(n *node.Node, log *slog.Logger) *Server {
	s := &Server{n: n, log: log.With("component", "api")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", s.handleID)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/ping", s.handlePing)
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	s.routeContacts(mux)
	s.routeTransfers(mux)
	s.routeRooms(mux)
	s.routeBench(mux)
	// Every request's context ends at Shutdown, so event streams and long
	// pings do not hold the daemon up.
	ctx, cancel := context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.srv.RegisterOnShutdown(cancel)
	return s
}

// Serve answers requests on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, ends event streams and waits for
// requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Listen creates the control socket with mode 0600. The caller must hold the
// home's lock: any socket already there was left by a crashed daemon and is
// replaced.
func Listen(home string) (net.Listener, error) {
	path := SocketPath(home)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api: remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	// The home is 0700, so nobody else can reach the socket before this.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("api: chmod socket: %w", err)
	}
	return l, nil
}

func (s *Server) handleID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.n.Identity())
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.n.Status())
}

// PingRequest is the body of POST /v1/ping.
type PingRequest struct {
	Peer       string `json:"peer"`
	Count      int    `json:"count"`
	IntervalMs int    `json:"interval_ms"`
}

// maxPings bounds one ping request.
const maxPings = 10000

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	var req PingRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Count < 1 || req.Count > maxPings || req.IntervalMs < 0 {
		writeError(w, fmt.Errorf("%w: count must be 1..%d and interval_ms >= 0", errBadRequest, maxPings))
		return
	}
	st := newStream(w)
	err := s.n.Ping(r.Context(), req.Peer, req.Count, time.Duration(req.IntervalMs)*time.Millisecond,
		func(res node.PingResult) { st.send(res) })
	if err != nil {
		st.fail(err)
	}
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	events, cancel := s.n.Events().Subscribe()
	defer cancel()
	st := newStream(w)
	st.flush() // the client knows the subscription is live once headers arrive
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !st.send(ev) {
				return
			}
		}
	}
}

// errBadRequest marks errors in what the client sent.
var errBadRequest = errors.New("bad request")

// Error codes in API error bodies.
const (
	CodeBadRequest  = "bad_request"
	CodeUnknownPeer = "unknown_peer"
	CodeUnreachable = "unreachable"
	CodeNotFound    = "not_found"
	CodeConflict    = "conflict"
	CodeRefused     = "refused"  // the peer refused (not a contact, blocked)
	CodeNoSpace     = "no_space" // not enough free space to receive
	CodeInternal    = "internal"
)

// errorCode maps an error to its API code and HTTP status. This is the only
// place errors become HTTP statuses.
func errorCode(err error) (string, int) {
	var re *protocols.RemoteError
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, store.ErrBadName), isBadMessage(err), isBadTransferArg(err),
		isBadRoomArg(err), errors.Is(err, node.ErrNotEd25519):
		return CodeBadRequest, http.StatusBadRequest
	case errors.Is(err, node.ErrUnknownPeer), errors.Is(err, node.ErrNotPeer), errors.Is(err, protocols.ErrTicket):
		return CodeUnknownPeer, http.StatusBadRequest
	case errors.Is(err, node.ErrUnreachable), errors.Is(err, files.ErrLimitedPath):
		return CodeUnreachable, http.StatusBadGateway
	case errors.Is(err, store.ErrNoContact), errors.Is(err, files.ErrNoTransfer), errors.Is(err, chat.ErrNotJoined):
		return CodeNotFound, http.StatusNotFound
	case errors.Is(err, store.ErrNameTaken), errors.Is(err, store.ErrPeerTaken), errors.Is(err, files.ErrNotOffered),
		errors.Is(err, chat.ErrRoomKeyChange):
		return CodeConflict, http.StatusConflict
	case errors.As(err, &re), errors.Is(err, files.ErrNotAllowed), errors.Is(err, files.ErrBlocked):
		return CodeRefused, http.StatusForbidden
	case errors.Is(err, files.ErrNoSpace), errors.Is(err, files.ErrDiskFull):
		return CodeNoSpace, http.StatusInsufficientStorage
	default:
		return CodeInternal, http.StatusInternalServerError
	}
}

// isBadTransferArg reports errors in a transfer request's arguments.
func isBadTransferArg(err error) bool {
	for _, e := range []error{node.ErrBadPath, node.ErrBadTransferID, node.ErrAmbiguousID, node.ErrNotFileTicket, files.ErrSelf, files.ErrNoDir} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func isBadMessage(err error) bool {
	for _, e := range []error{chat.ErrEmpty, chat.ErrTooLong, chat.ErrNotUTF8, chat.ErrSelf} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ErrorBody is the JSON body of an API error.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeError(w http.ResponseWriter, err error) {
	code, status := errorCode(err)
	writeJSON(w, status, ErrorBody{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxBody caps request bodies.
const maxBody = 1 << 20

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, fmt.Errorf("%w: %w", errBadRequest, err))
		return false
	}
	return true
}

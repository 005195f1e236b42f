package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/kithnet/kith/node"
)

// SendFilesRequest is the body of POST /v1/transfers/send.
type SendFilesRequest struct {
	To    string   `json:"to"`    // contact name, peer ID or ticket
	Paths []string `json:"paths"` // absolute
}

// ShareRequest is the body of POST /v1/transfers/share.
type ShareRequest struct {
	Paths []string `json:"paths"` // absolute
	Keep  bool     `json:"keep"`  // serve any number of receivers until cancelled
}

// ShareResponse answers POST /v1/transfers/share.
type ShareResponse struct {
	Ticket   string            `json:"ticket"`
	Transfer node.TransferInfo `json:"transfer"`
}

// ReceiveRequest is the body of POST /v1/transfers/receive.
type ReceiveRequest struct {
	Ticket    string `json:"ticket"`
	Dir       string `json:"dir"` // absolute; "" is the download folder
	Overwrite bool   `json:"overwrite"`
}

// AcceptRequest is the body of POST /v1/transfers/{id}/accept.
type AcceptRequest struct {
	Dir       string `json:"dir"` // absolute; "" is the download folder
	Overwrite bool   `json:"overwrite"`
}

func (s *Server) routeTransfers(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/transfers", s.handleTransfers)
	mux.HandleFunc("GET /v1/transfers/{id}", s.handleTransfer)
	mux.HandleFunc("POST /v1/transfers/send", s.handleSendFiles)
	mux.HandleFunc("POST /v1/transfers/share", s.handleShare)
	mux.HandleFunc("POST /v1/transfers/receive", s.handleReceive)
	mux.HandleFunc("POST /v1/transfers/{id}/accept", s.handleAccept)
	mux.HandleFunc("POST /v1/transfers/{id}/reject", s.handleAnswer(s.n.RejectTransfer))
	mux.HandleFunc("POST /v1/transfers/{id}/cancel", s.handleAnswer(s.n.CancelTransfer))
}

func (s *Server) handleTransfers(w http.ResponseWriter, r *http.Request) {
	ts, err := s.n.Transfers(r.Context())
	if ts == nil {
		ts = []node.TransferInfo{}
	}
	reply(w, ts, err)
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	t, err := s.n.Transfer(r.Context(), r.PathValue("id"))
	reply(w, t, err)
}

func (s *Server) handleSendFiles(w http.ResponseWriter, r *http.Request) {
	var req SendFilesRequest
	if readJSON(w, r, &req) {
		t, err := s.n.SendFiles(r.Context(), req.To, req.Paths)
		reply(w, t, err)
	}
}

func (s *Server) handleShare(w http.ResponseWriter, r *http.Request) {
	var req ShareRequest
	if readJSON(w, r, &req) {
		t, ticket, err := s.n.ShareFiles(r.Context(), req.Paths, req.Keep)
		reply(w, ShareResponse{Ticket: ticket, Transfer: t}, err)
	}
}

func (s *Server) handleReceive(w http.ResponseWriter, r *http.Request) {
	var req ReceiveRequest
	if readJSON(w, r, &req) {
		t, err := s.n.ReceiveTicket(r.Context(), req.Ticket, req.Dir, req.Overwrite)
		reply(w, t, err)
	}
}

func (s *Server) handleAccept(w http.ResponseWriter, r *http.Request) {
	var req AcceptRequest
	if readJSON(w, r, &req) {
		t, err := s.n.AcceptTransfer(r.Context(), r.PathValue("id"), req.Dir, req.Overwrite)
		reply(w, t, err)
	}
}

// handleAnswer serves reject and cancel, which take no body.
func (s *Server) handleAnswer(f func(context.Context, string) (node.TransferInfo, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := f(r.Context(), r.PathValue("id"))
		reply(w, t, err)
	}
}

// Transfers lists every transfer, newest first.
func (c *Client) Transfers(ctx context.Context) ([]node.TransferInfo, error) {
	var v []node.TransferInfo
	return v, c.do(ctx, http.MethodGet, "/v1/transfers", nil, &v)
}

// Transfer returns one transfer, by ID or unique prefix, with its entries.
func (c *Client) Transfer(ctx context.Context, id string) (node.TransferInfo, error) {
	var v node.TransferInfo
	return v, c.do(ctx, http.MethodGet, "/v1/transfers/"+url.PathEscape(id), nil, &v)
}

// SendFiles offers paths (absolute) to a contact name, peer ID or ticket.
func (c *Client) SendFiles(ctx context.Context, to string, paths []string) (node.TransferInfo, error) {
	var v node.TransferInfo
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/send", SendFilesRequest{To: to, Paths: paths}, &v)
}

// ShareFiles serves paths (absolute) for a ticket, which it returns.
func (c *Client) ShareFiles(ctx context.Context, paths []string, keep bool) (ShareResponse, error) {
	var v ShareResponse
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/share", ShareRequest{Paths: paths, Keep: keep}, &v)
}

// ReceiveTicket fetches (or resumes fetching) a file ticket into dir.
func (c *Client) ReceiveTicket(ctx context.Context, ticket, dir string, overwrite bool) (node.TransferInfo, error) {
	var v node.TransferInfo
	req := ReceiveRequest{Ticket: ticket, Dir: dir, Overwrite: overwrite}
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/receive", req, &v)
}

// AcceptTransfer accepts an incoming offer into dir.
func (c *Client) AcceptTransfer(ctx context.Context, id, dir string, overwrite bool) (node.TransferInfo, error) {
	var v node.TransferInfo
	req := AcceptRequest{Dir: dir, Overwrite: overwrite}
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/"+url.PathEscape(id)+"/accept", req, &v)
}

// RejectTransfer declines an incoming offer.
func (c *Client) RejectTransfer(ctx context.Context, id string) (node.TransferInfo, error) {
	var v node.TransferInfo
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/"+url.PathEscape(id)+"/reject", nil, &v)
}

// CancelTransfer stops a transfer for good.
func (c *Client) CancelTransfer(ctx context.Context, id string) (node.TransferInfo, error) {
	var v node.TransferInfo
	return v, c.do(ctx, http.MethodPost, "/v1/transfers/"+url.PathEscape(id)+"/cancel", nil, &v)
}

package api

import (
	"net/http"
	"strconv"

	"github.com/kithnet/kith/node"
)

// ContactRequest is the body of POST /v1/contacts.
type ContactRequest struct {
	Name string `json:"name"`
	Peer string `json:"peer"` // ticket or peer ID
}

// TrustRequest is the body of POST /v1/contacts/{name}/trust.
type TrustRequest struct {
	Trusted bool `json:"trusted"`
}

// BlockRequest is the body of POST /v1/block.
type BlockRequest struct {
	Peer    string `json:"peer"` // contact name, peer ID or ticket
	Blocked bool   `json:"blocked"`
}

// BlockResponse answers POST /v1/block.
type BlockResponse struct {
	PeerID  string `json:"peer_id"`
	Blocked bool   `json:"blocked"`
}

// SendRequest is the body of POST /v1/messages.
type SendRequest struct {
	Peer string `json:"peer"`
	Text string `json:"text"`
}

func (s *Server) routeContacts(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/contacts", s.handleContacts)
	mux.HandleFunc("POST /v1/contacts", s.handleAddContact)
	mux.HandleFunc("DELETE /v1/contacts/{name}", s.handleRemoveContact)
	mux.HandleFunc("POST /v1/contacts/{name}/trust", s.handleTrust)
	mux.HandleFunc("POST /v1/block", s.handleBlock)
	mux.HandleFunc("POST /v1/messages", s.handleSend)
	mux.HandleFunc("GET /v1/messages", s.handleMessages)
}

func (s *Server) handleContacts(w http.ResponseWriter, r *http.Request) {
	cs, err := s.n.Contacts(r.Context())
	reply(w, cs, err)
}

func (s *Server) handleAddContact(w http.ResponseWriter, r *http.Request) {
	var req ContactRequest
	if readJSON(w, r, &req) {
		c, err := s.n.AddContact(r.Context(), req.Name, req.Peer)
		reply(w, c, err)
	}
}

func (s *Server) handleRemoveContact(w http.ResponseWriter, r *http.Request) {
	err := s.n.RemoveContact(r.Context(), r.PathValue("name"))
	reply(w, struct{}{}, err)
}

func (s *Server) handleTrust(w http.ResponseWriter, r *http.Request) {
	var req TrustRequest
	if readJSON(w, r, &req) {
		err := s.n.TrustContact(r.Context(), r.PathValue("name"), req.Trusted)
		reply(w, struct{}{}, err)
	}
}

func (s *Server) handleBlock(w http.ResponseWriter, r *http.Request) {
	var req BlockRequest
	if readJSON(w, r, &req) {
		p, err := s.n.Block(r.Context(), req.Peer, req.Blocked)
		reply(w, BlockResponse{PeerID: p.String(), Blocked: req.Blocked}, err)
	}
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if readJSON(w, r, &req) {
		m, err := s.n.SendMessage(r.Context(), req.Peer, req.Text)
		reply(w, m, err)
	}
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	ms, err := s.n.Messages(r.Context(), r.URL.Query().Get("from"), after)
	if ms == nil {
		ms = []node.MessageInfo{}
	}
	reply(w, ms, err)
}

// reply writes v, or err as an API error.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

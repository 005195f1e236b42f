package api

import "net/http"

// BenchCopyRequest is the body of POST /v1/bench/copy.
type BenchCopyRequest struct {
	To   string `json:"to"`   // contact name, peer ID or ticket
	Path string `json:"path"` // absolute path of a regular file
}

// routeBench adds the benchmark-only routes, and only when the node was
// built with node.WithBench (kith daemon with KITH_BENCH=1): otherwise
// /v1/bench/... is 404 like any unknown path.
func (s *Server) routeBench(mux *http.ServeMux) {
	if !s.n.BenchEnabled() {
		return
	}
	mux.HandleFunc("POST /v1/bench/copy", s.handleBenchCopy)
	mux.HandleFunc("GET /v1/bench/stats", s.handleBenchStats)
}

func (s *Server) handleBenchCopy(w http.ResponseWriter, r *http.Request) {
	var req BenchCopyRequest
	if readJSON(w, r, &req) {
		res, err := s.n.BenchCopy(r.Context(), req.To, req.Path)
		reply(w, res, err)
	}
}

func (s *Server) handleBenchStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.n.BenchStats()
	reply(w, st, err)
}

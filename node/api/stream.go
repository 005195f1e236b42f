package api

import (
	"encoding/json"
	"net/http"
)

// stream writes NDJSON: one JSON object per line, flushed as it is written.
// An error after the first line is sent as a final {"error", "code"} line;
// before it, as an ordinary error response.
type stream struct {
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func newStream(w http.ResponseWriter) *stream {
	return &stream{w: w, enc: json.NewEncoder(w)}
}

func (s *stream) start() {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
}

func (s *stream) flush() {
	s.start()
	http.NewResponseController(s.w).Flush()
}

// send writes one line; false means the client is gone.
func (s *stream) send(v any) bool {
	s.start()
	if err := s.enc.Encode(v); err != nil {
		return false
	}
	return http.NewResponseController(s.w).Flush() == nil
}

func (s *stream) fail(err error) {
	if !s.started {
		writeError(s.w, err)
		return
	}
	code, _ := errorCode(err)
	s.send(ErrorBody{Error: err.Error(), Code: code})
}

package main

import (
	"encoding/json"
	"io"
)

// printJSON writes v as one JSON object on a line.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// Package roompb holds the protobuf message of kith's group rooms, generated
// from ../room.proto by `go generate` in package pb (see ../gen.go). Only
// package protocols uses it; the meaning of every field is specified in
// protocols/doc.go.
package roompb

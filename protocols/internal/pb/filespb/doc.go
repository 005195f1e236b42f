// Package filespb holds the protobuf messages of /kith/files/1.0.0 and of its
// manifests, generated from ../files.proto by `go generate` in package pb
// (see ../gen.go). Only package protocols uses it; the meaning of every field
// is specified in protocols/doc.go.
package filespb

// Package pb holds the protobuf messages of kith's wire protocols, generated
// from the .proto files here. Only package protocols uses it; the meaning of
// every field is specified in protocols/doc.go.
//
// dm.pb.go is generated and committed; never edit it by hand. Regenerate it
// with `go generate ./...` (or `just gen`), which needs protoc on PATH
// (apt-get install protobuf-compiler; the committed file was made with
// libprotoc 3.21.12, which its header records). protoc-gen-go is built from
// the google.golang.org/protobuf version pinned in go.mod, into bin/ (which
// git ignores), so the output depends on go.mod, not on what happens to be
// installed.
package pb

//go:generate go build -o ../../../bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
//go:generate protoc --plugin=protoc-gen-go=../../../bin/protoc-gen-go --proto_path=. --go_out=. --go_opt=paths=source_relative dm.proto

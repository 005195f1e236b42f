// Package pb holds the protobuf messages of kith's wire protocols, generated
// from the .proto files here. Only package protocols uses it; the meaning of
// every field is specified in protocols/doc.go.
//
// dm.pb.go, filespb/files.pb.go, roompb/room.pb.go and roompb/history.pb.go are generated and committed; never edit
// them by hand. Regenerate them with `go generate ./...` (or `just gen`),
// which needs protoc on PATH (apt-get install protobuf-compiler; the
// committed files were made with libprotoc 3.21.12, which their headers
// record). protoc-gen-go is built from the google.golang.org/protobuf version
// pinned in go.mod, into bin/ (which git ignores), so the output depends on
// go.mod, not on what happens to be installed.
//
// files.proto's messages Frame and Error would collide with dm.proto's in one
// Go package, so its go_package is filespb and its output goes there
// (--go_opt=module strips this package's import path from go_package);
// room.proto's and history.proto's output goes to roompb the same way.
package pb

//go:generate go build -o ../../../bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
//go:generate protoc --plugin=protoc-gen-go=../../../bin/protoc-gen-go --proto_path=. --go_out=. --go_opt=paths=source_relative dm.proto
//go:generate protoc --plugin=protoc-gen-go=../../../bin/protoc-gen-go --proto_path=. --go_out=. --go_opt=module=github.com/kithnet/kith/protocols/internal/pb files.proto
//go:generate protoc --plugin=protoc-gen-go=../../../bin/protoc-gen-go --proto_path=. --go_out=. --go_opt=module=github.com/kithnet/kith/protocols/internal/pb room.proto
//go:generate protoc --plugin=protoc-gen-go=../../../bin/protoc-gen-go --proto_path=. --go_out=. --go_opt=module=github.com/kithnet/kith/protocols/internal/pb history.proto

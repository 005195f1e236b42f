package protocols

import "testing"

// BenchmarkDeriveRoomKey is the cost of joining a private room (Argon2id,
// 64 MiB, t=3, p=4): the ms/op is what a user waits for.
func BenchmarkDeriveRoomKey(b *testing.B) {
	for b.Loop() {
		if _, err := DeriveRoomKey("team", []byte("correct horse battery staple")); err != nil {
			b.Fatal(err)
		}
	}
}

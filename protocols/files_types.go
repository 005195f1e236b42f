package protocols

// Hash is a BLAKE3-256 digest: of a chunk, of a file's chunk hashes, of a
// manifest's entry roots, or of a manifest's bytes (its content ID).
type Hash [32]byte

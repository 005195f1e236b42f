package files

import "golang.org/x/sys/unix"

// blockSize is the unit of st's block counts: f_frsize (f_bsize is only
// the preferred I/O size, usually but not always the same).
func blockSize(st *unix.Statfs_t) int64 {
	if st.Frsize > 0 {
		return st.Frsize
	}
	return st.Bsize
}

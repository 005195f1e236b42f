package files

import "os"

// fileCache keeps a few open files, most recently used first.
type fileCache struct {
	max  int
	list []*cachedFile
}

type cachedFile struct {
	key   int // entry index
	f     *os.File
	dirty bool // written since it was last synced
}

// get returns the file of key, now the most recently used, or nil.
func (c *fileCache) get(key int) *cachedFile {
	for i, cf := range c.list {
		if cf.key == key {
			copy(c.list[1:i+1], c.list[:i])
			c.list[0] = cf
			return cf
		}
	}
	return nil
}

// add inserts f as the most recently used file and returns the file it
// pushed out, if any, for the caller to close.
func (c *fileCache) add(key int, f *os.File) (cf, evicted *cachedFile) {
	if len(c.list) >= c.max {
		evicted = c.list[len(c.list)-1]
		c.list = c.list[:len(c.list)-1]
	}
	cf = &cachedFile{key: key, f: f}
	c.list = append([]*cachedFile{cf}, c.list...)
	return cf, evicted
}

// remove takes key's file out of the cache and returns it, or nil.
func (c *fileCache) remove(key int) *cachedFile {
	for i, cf := range c.list {
		if cf.key == key {
			c.list = append(c.list[:i], c.list[i+1:]...)
			return cf
		}
	}
	return nil
}

// closeAll closes every file and empties the cache.
func (c *fileCache) closeAll() error {
	var first error
	for _, cf := range c.list {
		if err := cf.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.list = nil
	return first
}

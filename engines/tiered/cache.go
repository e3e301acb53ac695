package tiered

import (
	"container/list"
	"sync"
)

// frameKey names one frame of one cold object.
type frameKey struct {
	object string
	frame  int
}

// frameCache keeps decompressed frames, least recently used first out,
// within a budget of bytes. A frame's bytes are never written after it is
// decoded, so Records may hold slices of it after it left the cache: the
// garbage collector frees it once the last of them is dropped. The budget
// bounds what the cache keeps, not what readers hold.
type frameCache struct {
	mu    sync.Mutex
	limit int64
	size  int64
	lru   *list.List // of *cacheEntry, most recent at the front
	byKey map[frameKey]*list.Element
}

type cacheEntry struct {
	key  frameKey
	data []byte
}

func newFrameCache(limit int64) *frameCache {
	return &frameCache{limit: limit, lru: list.New(), byKey: map[frameKey]*list.Element{}}
}

func (c *frameCache) get(k frameKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// put adds a frame, evicting the least recently used ones beyond the
// budget. A frame larger than the whole budget is not kept.
func (c *frameCache) put(k frameKey, data []byte) {
	n := int64(len(data))
	if n > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.byKey[k] = c.lru.PushFront(&cacheEntry{key: k, data: data})
	c.size += n
	for c.size > c.limit {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.byKey, e.key)
		c.size -= int64(len(e.data))
	}
}

// dropObject forgets every frame of a deleted object.
func (c *frameCache) dropObject(object string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); e.key.object == object {
			c.lru.Remove(el)
			delete(c.byKey, e.key)
			c.size -= int64(len(e.data))
		}
		el = next
	}
}

// bytes returns the bytes the cache holds.
func (c *frameCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

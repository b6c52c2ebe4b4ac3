package container

import (
	"sync"
	"time"
)

const (
	maxMeta         = 16384            // containers with cached names; far above any real host
	metaRetry       = 30 * time.Second // after a failed Engine API call
	fetchQueueDepth = 256
)

type metaState uint8

const (
	metaPending metaState = iota // queued for the Engine API
	metaKnown                    // name and image known
	metaMissing                  // the engine does not know it (another runtime)
	metaFailed                   // the engine could not be asked; retry after retryAt
)

type meta struct {
	name, image string
	pod         Pod
	state       metaState
	retryAt     time.Time
}

// metaCache holds container names and images. It has its own lock so a slow
// writer never holds up index reads on the hot path.
type metaCache struct {
	mu sync.RWMutex
	m  map[string]meta
}

func newMetaCache() *metaCache { return &metaCache{m: make(map[string]meta)} }

// get returns the cached metadata and whether an Engine API request is due.
func (c *metaCache) get(id string, now time.Time) (meta, bool) {
	c.mu.RLock()
	m, ok := c.m[id]
	c.mu.RUnlock()
	return m, !ok || (m.state == metaFailed && now.After(m.retryAt))
}

// claim marks id pending if nobody else has; only the claimer enqueues.
func (c *metaCache) claim(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[id]; ok && (m.state != metaFailed || !now.After(m.retryAt)) {
		return false
	}
	c.putLocked(id, meta{state: metaPending})
	return true
}

func (c *metaCache) put(id string, m meta) {
	c.mu.Lock()
	c.putLocked(id, m)
	c.mu.Unlock()
}

func (c *metaCache) putLocked(id string, m meta) {
	if _, ok := c.m[id]; !ok && len(c.m) >= maxMeta {
		for k := range c.m { // random victim; it is refetched if still needed
			delete(c.m, k)
			break
		}
	}
	c.m[id] = m
}

// settle stores the answer to a queued lookup unless events or the list have
// meanwhile stored something fresher (or Gone forgot the container).
func (c *metaCache) settle(id string, m meta) {
	c.mu.Lock()
	if old, ok := c.m[id]; ok && old.state == metaPending {
		c.m[id] = m
	}
	c.mu.Unlock()
}

func (c *metaCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

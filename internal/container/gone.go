package container

import (
	"context"
	"sync"
)

// goneQueue hands "container gone" ids to one reader without ever blocking the
// resolver and without losing any: a missed id would keep the container's
// metric labels and kernel map entries forever. It holds at most maxEntries ids
// (each container is gone once, and the index holds no more), so it stays
// bounded even when nobody reads.
type goneQueue struct {
	mu   sync.Mutex
	ids  []string
	wake chan struct{}
	once sync.Once
}

func (q *goneQueue) init() { q.once.Do(func() { q.wake = make(chan struct{}, 1) }) }

// push queues id; false when the queue is full.
func (q *goneQueue) push(id string) bool {
	q.init()
	q.mu.Lock()
	if len(q.ids) >= maxEntries {
		q.mu.Unlock()
		return false
	}
	q.ids = append(q.ids, id)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pump delivers queued ids to out, in order, until ctx ends.
func (q *goneQueue) pump(ctx context.Context, out chan<- string) {
	q.init()
	for {
		q.mu.Lock()
		batch := q.ids
		q.ids = nil
		q.mu.Unlock()
		for i, id := range batch {
			select {
			case out <- id:
			case <-ctx.Done():
				q.requeue(batch[i:])
				return
			}
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}

// requeue puts undelivered ids back in front.
func (q *goneQueue) requeue(ids []string) {
	q.mu.Lock()
	q.ids = append(ids, q.ids...)
	q.mu.Unlock()
}

package container

import (
	"context"
	"errors"
	"time"
)

const (
	eventsBackoffMin = time.Second
	eventsBackoffMax = 30 * time.Second
)

// fetchLoop answers queued name lookups, one Engine API call at a time.
func (r *Resolver) fetchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-r.fetch:
			c, err := r.engine.inspect(ctx, id)
			switch {
			case err == nil:
				r.meta.settle(id, meta{name: c.Name, image: c.Image, pod: c.Pod, state: metaKnown})
			case errors.Is(err, errNoSuchContainer):
				r.meta.settle(id, meta{state: metaMissing})
			case ctx.Err() != nil:
				return
			default:
				r.log.Debug("inspect container", logKeyContainer, id, "err", err)
				r.meta.settle(id, meta{state: metaFailed, retryAt: r.now().Add(metaRetry)})
			}
		}
	}
}

// followEvents keeps the events stream open while ctx lives. A missing
// engine is normal: it is logged once at info, then retried with backoff.
func (r *Resolver) followEvents(ctx context.Context) {
	backoff := eventsBackoffMin
	reported := false // the current outage has been logged
	for ctx.Err() == nil {
		began := time.Now()
		err := r.engine.events(ctx, func() {
			r.log.Info("following docker engine events", "docker_host", r.engine.ep.String())
			reported = false
			r.seedFromList(ctx)
			r.walked.Store(true)
		}, r.handleEvent)
		// Unreachable is an answer too (reported below): /readyz must not
		// wait for an engine that may never start.
		r.walked.Store(true)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = eventsBackoffMin
		}
		if !reported {
			r.log.Info("docker engine not reachable; container names and images unavailable until it is", "docker_host", r.engine.ep.String(), "err", err)
			reported = true
		} else {
			r.log.Debug("docker engine events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, eventsBackoffMax)
	}
}

// seedFromList caches names of the running containers. It runs after the
// events stream is open, so no start can fall between the two.
func (r *Resolver) seedFromList(ctx context.Context) {
	cs, err := r.engine.list(ctx)
	if err != nil {
		r.log.Warn("list docker containers", "err", err)
		return
	}
	for _, c := range cs {
		r.meta.put(c.ID, meta{name: c.Name, image: c.Image, pod: c.Pod, state: metaKnown})
	}
}

func (r *Resolver) handleEvent(ev engineEvent) {
	id := ev.containerID()
	if !isID(id) {
		return
	}
	switch ev.action() {
	case "create", "start", "rename":
		if name := ev.Actor.Attributes["name"]; name != "" {
			// Attributes carry the container's labels too.
			r.meta.put(id, meta{name: name, image: ev.Actor.Attributes["image"], pod: podFromLabels(ev.Actor.Attributes), state: metaKnown})
		} else {
			r.withMeta(id) // pre-1.22 engines send no attributes
		}
	case "destroy":
		// Keep the name while cgroups (or their grace) remain; Gone forgets it then.
		r.mu.RLock()
		held := r.idx.holds(id)
		r.mu.RUnlock()
		if !held {
			r.meta.forget(id)
		}
	}
}

package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultGrace    = 2 * time.Minute
	dockerHostNone  = "none"
	maxSweepPeriod  = 30 * time.Second
	minSweepPeriod  = time.Second
	sweepsPerGrace  = 4
	logKeyCgroupID  = "cgroup_id"
	logKeyContainer = "container_id"
)

// Container is a container as events and /status show it.
type Container struct {
	ID    string `json:"id"`              // 64 hex
	Name  string `json:"name,omitempty"`  // from the Docker Engine API, without leading "/"
	Image string `json:"image,omitempty"` // as the container was created from
	Pod
}

// Pod is what the kubelet's Docker labels say about a container's pod
// (io.kubernetes.*): no Kubernetes client is needed.
type Pod struct {
	Pod          string `json:"pod,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
	PodContainer string `json:"pod_container,omitempty"` // the container's name in the pod spec
}

// maxPodField bounds each pod label value (Kubernetes names are at most 253).
const maxPodField = 253

// podFromLabels reads the kubelet's labels; the zero Pod when there are none.
func podFromLabels(labels map[string]string) Pod {
	cut := func(s string) string {
		if len(s) > maxPodField {
			return s[:maxPodField]
		}
		return s
	}
	return Pod{
		Pod:          cut(labels["io.kubernetes.pod.name"]),
		PodNamespace: cut(labels["io.kubernetes.pod.namespace"]),
		PodContainer: cut(labels["io.kubernetes.container.name"]),
	}
}

// Options configure a Resolver; the zero value auto-detects everything.
type Options struct {
	CgroupRoot string        // mount point of the cgroup v2 hierarchy; "" = from /proc/self/mountinfo
	DockerHost string        // "" = DOCKER_HOST as the docker CLI reads it; "none" disables enrichment
	Grace      time.Duration // how long a removed cgroup stays resolvable; default 2m
	Logger     *slog.Logger
}

// Resolver maps cgroup ids to containers. All methods are safe for concurrent use.
type Resolver struct {
	log    *slog.Logger
	root   string  // cgroup2 mount point, "" when there is none
	engine *engine // nil when enrichment is off
	now    func() time.Time

	mu  sync.RWMutex
	idx *index

	meta    *metaCache
	fetch   chan string
	gone    chan string
	pending goneQueue                      // gone ids not yet taken by the reader of gone
	handles atomic.Pointer[handleResolver] // nil: no fallback (not started, unsupported, stopped)
	started atomic.Bool
	// walked is set once the first container walk is done: the cgroup tree
	// in Start, and Docker's container list fetched (or the engine found
	// unreachable, which is logged).
	walked atomic.Bool
}

// NewResolver checks the options; only a bad option is an error. A host
// without cgroup2 or without Docker still gets a working (if blind) resolver.
func NewResolver(opts Options) (*Resolver, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "container")
	if opts.Grace < 0 {
		return nil, fmt.Errorf("container: grace %v is negative", opts.Grace)
	}
	if opts.Grace == 0 {
		opts.Grace = defaultGrace
	}
	r := &Resolver{
		log:   log,
		now:   time.Now,
		idx:   newIndex(maxEntries, opts.Grace),
		meta:  newMetaCache(),
		fetch: make(chan string, fetchQueueDepth),
		gone:  make(chan string),
	}

	root, err := cgroupRoot(opts.CgroupRoot)
	switch {
	case errors.Is(err, errNoCgroup2):
		log.Warn("no cgroup2 hierarchy mounted; every event will look like the host")
	case err != nil:
		return nil, err
	}
	r.root = root

	if r.engine, err = newEngineFromOptions(opts.DockerHost, log); err != nil {
		return nil, err
	}
	return r, nil
}

// cgroupRoot validates an explicit root or finds the mounted one.
func cgroupRoot(root string) (string, error) {
	if root == "" {
		return detectCgroup2Mount()
	}
	ok, err := isCgroup2(root)
	if err != nil {
		return "", fmt.Errorf("container: cgroup root %s: %w", root, err)
	}
	if !ok {
		return "", fmt.Errorf("container: cgroup root %s is not a cgroup2 mount", root)
	}
	return root, nil
}

func newEngineFromOptions(host string, log *slog.Logger) (*engine, error) {
	if host == dockerHostNone {
		return nil, nil
	}
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	ep, err := parseDockerHost(host, os.Getenv("DOCKER_TLS_VERIFY"))
	if errors.Is(err, errTLSUnsupported) {
		log.Warn("docker engine over TLS is not supported; container names and images disabled", "docker_host", host)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return newEngine(ep), nil
}

// Start seeds the index from the cgroup tree and starts the background work
// (expiry, Docker events, name lookups), which stops when ctx is done.
// Start the cgroup_mkdir/rmdir sensor first: events that race with the walk
// then win over it, and nothing falls in between.
func (r *Resolver) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("container: resolver already started")
	}
	if r.root != "" {
		n, err := r.walk()
		if err != nil {
			return fmt.Errorf("container: seed index: %w", err)
		}
		r.log.Debug("cgroup index seeded", "root", r.root, "cgroups", n)
		if h, err := openHandleResolver(r.root); err != nil {
			r.log.Warn("cgroup id fallback unavailable", "err", err)
		} else {
			r.handles.Store(h)
		}
	}
	go r.sweep(ctx)
	go r.pending.pump(ctx, r.gone)
	if r.engine != nil {
		go r.fetchLoop(ctx)
		go r.followEvents(ctx)
	} else {
		r.walked.Store(true)
	}
	go func() {
		<-ctx.Done()
		if h := r.handles.Swap(nil); h != nil {
			h.close()
		}
	}()
	return nil
}

// Ready is nil once the first container walk is done (see walked).
func (r *Resolver) Ready() error {
	switch {
	case !r.started.Load():
		return errors.New("container resolver not started")
	case !r.walked.Load():
		return errors.New("first container walk (Docker's container list) not done")
	}
	return nil
}

// CgroupCreated records a new cgroup; path is relative to the hierarchy root.
func (r *Resolver) CgroupCreated(cgroupID uint64, path string) {
	ctr := IDFromCgroupPath(path)
	r.mu.Lock()
	gone := r.idx.add(cgroupID, ctr, false)
	r.mu.Unlock()
	r.emitGone(gone)
	if ctr != "" {
		r.withMeta(ctr) // prefetch the name before the first event needs it
	}
}

// CgroupRemoved marks a cgroup removed; it stays resolvable for Grace.
func (r *Resolver) CgroupRemoved(cgroupID uint64, path string) {
	ctr := IDFromCgroupPath(path)
	r.mu.Lock()
	gone := r.idx.remove(cgroupID, ctr, r.now())
	r.mu.Unlock()
	r.emitGone(gone)
}

// Lookup returns the container of a cgroup, or the zero Container for the host.
// It never waits on the network; a miss costs one open_by_handle_at, once.
func (r *Resolver) Lookup(cgroupID uint64) Container {
	r.mu.RLock()
	e, ok := r.idx.get(cgroupID)
	r.mu.RUnlock()
	ctr := e.ctr
	if !ok {
		ctr = r.resolveMiss(cgroupID)
	}
	if ctr == "" {
		return Container{}
	}
	return r.withMeta(ctr)
}

// resolveMiss asks the kernel for the cgroup's path and caches the answer,
// negative ones included (they expire like removed cgroups).
func (r *Resolver) resolveMiss(id uint64) string {
	h := r.handles.Load()
	if h == nil {
		return ""
	}
	path, removed, err := h.path(id)
	switch {
	case err == nil:
	case handleGone(err):
		removed = true
	case handleUnsupported(err):
		if r.handles.CompareAndSwap(h, nil) {
			r.log.Warn("cgroup id fallback disabled; ids unseen by the walk and tracepoints stay unresolved (needs CAP_DAC_READ_SEARCH)", "err", err)
		}
		return ""
	default:
		r.log.Debug("resolve cgroup id", logKeyCgroupID, id, "err", err)
		removed = true
	}
	ctr := IDFromCgroupPath(path)
	var gone []string
	r.mu.Lock()
	if e, ok := r.idx.get(id); ok { // a tracepoint got there first
		ctr = e.ctr
	} else if removed {
		gone = r.idx.remove(id, ctr, r.now())
	} else {
		gone = r.idx.add(id, ctr, true)
	}
	r.mu.Unlock()
	r.emitGone(gone)
	return ctr
}

// withMeta fills name and image when known and otherwise queues a lookup.
func (r *Resolver) withMeta(ctr string) Container {
	c := Container{ID: ctr}
	if r.engine == nil {
		return c
	}
	now := r.now()
	m, due := r.meta.get(ctr, now)
	if m.state == metaKnown {
		c.Name, c.Image, c.Pod = m.name, m.image, m.pod
	}
	if due && r.meta.claim(ctr, now) {
		select {
		case r.fetch <- ctr:
		default:
			r.meta.forget(ctr)
			r.log.Debug("container name lookup dropped: queue full", logKeyContainer, ctr)
		}
	}
	return c
}

// Containers returns the containers with live cgroups, sorted by id.
func (r *Resolver) Containers() []Container {
	r.mu.RLock()
	ids := r.idx.liveContainers()
	r.mu.RUnlock()
	slices.Sort(ids)
	out := make([]Container, 0, len(ids))
	now := r.now()
	for _, id := range ids {
		c := Container{ID: id}
		if m, _ := r.meta.get(id, now); m.state == metaKnown {
			c.Name, c.Image, c.Pod = m.name, m.image, m.pod
		}
		out = append(out, c)
	}
	return out
}

// Gone delivers ids of containers whose last cgroup was removed Grace ago.
func (r *Resolver) Gone() <-chan string { return r.gone }

func (r *Resolver) emitGone(ids []string) {
	for _, id := range ids {
		r.meta.forget(id)
		if !r.pending.push(id) {
			r.log.Warn("container gone notification dropped: nobody reads them", logKeyContainer, id)
		}
	}
}

// sweep expires removed cgroups a few times per grace period.
func (r *Resolver) sweep(ctx context.Context) {
	period := min(max(r.idx.grace/sweepsPerGrace, minSweepPeriod), maxSweepPeriod)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.expire()
		}
	}
}

func (r *Resolver) expire() {
	r.mu.Lock()
	gone := r.idx.expire(r.now())
	r.mu.Unlock()
	r.emitGone(gone)
}

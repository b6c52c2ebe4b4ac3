package tracer

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/observer-dev/observer/internal/sensor"
)

// DefaultRetryInterval is how often a sensor that could not attach is tried
// again. On Debian's stock kernels overlay and veth are modules that dockerd
// loads, usually after the observer has started at boot: the copyup and veth
// sensors find their targets only on a later attempt. A failed attempt costs a
// few milliseconds of CPU (see BenchmarkRetryUnavailable).
const DefaultRetryInterval = 10 * time.Second

// retryInterval resolves Options.RetryInterval: 0 means the default, and a
// negative value (returned as 0) turns retries off.
func (o *Options) retryInterval() time.Duration {
	switch {
	case o.RetryInterval == 0:
		return DefaultRetryInterval
	case o.RetryInterval < 0:
		return 0
	}
	return o.RetryInterval
}

// retryable tells whether trying again can help. A mode forced on a sensor
// without programs for it never will, nor tail_call when the latency sensor
// cannot run in tp_btf mode; anything else may (a module loaded later, a
// transient load failure), and an attempt is cheap.
func (s *sensorDef) retryable(opts *Options) bool {
	forced, ok := opts.forcedMode(s.name)
	if !ok {
		return true
	}
	if forced == ModeTailCall && !opts.latencyMayTailCall() {
		return false
	}
	return contains(s.modes, forced)
}

// pending is a sensor waiting for a retry, owned by the retry loop.
type pending struct {
	def    sensorDef
	reason string // the last reason logged and shown in Status
}

// failed records why an attempt failed and tells whether the reason is new,
// which is when it is worth a log line and a status update: an unchanged
// failure every few seconds would only bury the logs.
func (p *pending) failed(reason string) (changed bool) {
	if reason == p.reason {
		return false
	}
	p.reason = reason
	return true
}

// retryLoop tries the pending sensors every interval until all have attached
// or the tracer closes.
//
// Kernel BTF is not cached across rounds: cilium/ebpf v0.22 has no global
// kernel spec cache any more (no btf.FlushKernelSpec; a btf.Cache passed in
// CollectionOptions lives as long as its owner, who drops it to flush), and
// each round makes a new btf.Cache, so /sys/kernel/btf and its module list
// are read anew and a module loaded since the last round is found.
//
// A round runs when the kernel's BTF changed (a module was loaded: the usual
// reason a sensor can attach later), and otherwise only every fullRetryRounds
// intervals: on a kernel that refuses a hook for good, a round would cost tens
// of milliseconds of CPU every interval, forever.
func (t *Tracer) retryLoop(ctx context.Context, every time.Duration, pend []*pending) {
	defer close(t.retryDone)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastBTF, quiet := kernelBTFNames(), 0
	for len(pend) > 0 {
		select {
		case <-t.done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		names := kernelBTFNames()
		if quiet++; names == lastBTF && quiet < fullRetryRounds {
			continue
		}
		lastBTF, quiet = names, 0
		pend = t.retry(ctx, pend)
	}
}

// fullRetryRounds: without a BTF change, retry every this many intervals (5
// minutes at the default interval).
const fullRetryRounds = 30

// kernelBTFNames lists /sys/kernel/btf (vmlinux and one file per loaded module
// with BTF): reading a directory is cheap, decoding BTF is not.
func kernelBTFNames() string {
	entries, err := os.ReadDir("/sys/kernel/btf")
	if err != nil {
		return ""
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return strings.Join(names, " ")
}

// retry makes one attempt per pending sensor and returns those still pending.
func (t *Tracer) retry(ctx context.Context, pend []*pending) []*pending {
	kernelBTF := btf.NewCache() // fresh: sees modules loaded since the last round
	still := pend[:0]
	for i, p := range pend {
		select {
		case <-t.done:
			return append(still, pend[i:]...)
		default:
		}
		t.retries.Add(1)
		r, err := t.attachSensor(p.def, kernelBTF)
		if err != nil {
			if p.failed(err.Error()) {
				t.log.Warn("sensor unavailable", "sensor", p.def.name, "reason", p.reason, "late", true)
				t.setUnavailable(p.def.name, p.reason)
			}
			still = append(still, p)
			continue
		}
		t.mapsMu.Lock()
		t.status = slices.DeleteFunc(t.status, func(st sensor.Status) bool { return st.Name == p.def.name })
		t.running = append(t.running, r)
		if r.reader != nil {
			// Close waits for this loop before it waits for readers, so
			// this Add never races with its Wait.
			t.wg.Add(1)
			go t.read(ctx, r)
		}
		t.mapsMu.Unlock()
		t.log.Info("sensor attached", "sensor", p.def.name, "mode", r.att.mode, "variant", r.att.variant, "late", true)
	}
	return still
}

// setUnavailable updates the reason Status gives for an unavailable sensor.
func (t *Tracer) setUnavailable(name, reason string) {
	t.mapsMu.Lock()
	defer t.mapsMu.Unlock()
	for i := range t.status {
		if t.status[i].Name == name {
			t.status[i].Unavailable = reason
		}
	}
}

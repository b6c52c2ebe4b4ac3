package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/incident"
	"github.com/observer-dev/observer/internal/metrics"
	"github.com/observer-dev/observer/internal/pipeline"
	"github.com/observer-dev/observer/internal/recorder"
)

// lostCheckEvery is how often the events_lost rule reads the sensors' counters.
const lostCheckEvery = 5 * time.Second

// memoryHeadroom is what the Go memory limit allows beyond the recorder's
// bound: the rest of the daemon's live heap (containers, queues, the
// pipeline's batches) and the garbage a storm makes between collections.
const memoryHeadroom = 24 << 20

// MemoryLimit is the Go runtime's soft memory limit as /status reports it.
type MemoryLimit struct {
	Bytes int64  `json:"bytes"`
	From  string `json:"from"` // "GOMEMLIMIT", "recorder" (--recorder-bytes + headroom) or "none"
}

// setMemoryLimit bounds the Go heap by the recorder's bound plus a fixed
// headroom, unless the user set GOMEMLIMIT. Without it the collector lets the
// heap grow to twice the live heap (GOGC=100), and a full recorder is most of
// the live heap: RSS went to 3x --recorder-bytes under a storm.
func setMemoryLimit(fc config.Forensics, log *slog.Logger) MemoryLimit {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		l := MemoryLimit{Bytes: debug.SetMemoryLimit(-1), From: "GOMEMLIMIT"}
		log.Info("go memory limit", "bytes", l.Bytes, "from", l.From)
		return l
	}
	if !fc.Enabled {
		log.Info("go memory limit", "bytes", "none", "from", "no recorder, no GOMEMLIMIT")
		return MemoryLimit{Bytes: debug.SetMemoryLimit(-1), From: "none"}
	}
	l := MemoryLimit{Bytes: fc.MaxBytes + memoryHeadroom, From: "recorder"}
	debug.SetMemoryLimit(l.Bytes)
	log.Info("go memory limit", "bytes", l.Bytes, "from", fmt.Sprintf("--recorder-bytes + %dMiB (set GOMEMLIMIT to override)", memoryHeadroom>>20))
	return l
}

// forensics is the flight recorder with its captures and incident rules.
type forensics struct {
	rec       *recorder.Recorder
	observers []pipeline.Observer
	routes    map[string]http.Handler
}

func (f *forensics) stats() *recorder.Stats {
	if f.rec == nil {
		return nil
	}
	s := f.rec.Stats()
	return &s
}

// snapshotProviders are the sections of every state snapshot. Detectors add
// theirs here (one line each) or through Options.SnapshotProviders.
func snapshotProviders(opts Options, b *bus.Bus, kernel string) []recorder.Provider {
	return append([]recorder.Provider{
		{Name: "host", Collect: func(context.Context) (any, error) { return hostFacts(opts.Version, kernel), nil }},
		{Name: "sensors", Collect: func(context.Context) (any, error) { return opts.Source.Status(), nil }},
		{Name: "containers", Collect: func(context.Context) (any, error) { return opts.Resolver.Containers(), nil }},
		{Name: "subscriber_dropped_events", Collect: func(context.Context) (any, error) { return b.Dropped(), nil }},
	}, opts.SnapshotProviders...)
}

// captureHeader gives captures their host facts.
func captureHeader(opts Options, kernel string) func() capture.Header {
	host, _ := os.Hostname()
	return func() capture.Header {
		return capture.Header{Host: host, Kernel: kernel, ObserverVersion: opts.Version, Sensors: opts.Source.Status()}
	}
}

// startForensics starts the recorder, the capture manager, the incident rules
// and the SIGUSR1 trigger when the configuration enables them.
func startForensics(ctx context.Context, wg *sync.WaitGroup, opts Options, b *bus.Bus, m *metrics.Metrics, kernel string) (*forensics, error) {
	fc := opts.Config.Forensics
	if !fc.Enabled {
		return &forensics{}, nil
	}
	store, err := incident.OpenStore(fc.CaptureDir, fc.CaptureKeep, fc.CaptureMaxBytes)
	if err != nil {
		return nil, err
	}
	rec, err := recorder.New(recorder.Options{
		Window:    fc.Window,
		MaxBytes:  fc.MaxBytes,
		Providers: snapshotProviders(opts, b, kernel),
		Header:    captureHeader(opts, kernel),
		Logger:    opts.Logger,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	rec.Subscribe(b)
	mgr := incident.NewManager(incident.Options{
		Recorder: rec, Store: store, Duration: fc.IncidentDuration, Cooldown: fc.IncidentCooldown, Logger: opts.Logger,
	})
	rules := incident.NewRules(fc.IncidentRules, fc.CopyUpThreshold, mgr.Fire)
	m.Registry().MustRegister(mgr.Collectors()...)
	m.Registry().MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "observer_recorder_bytes", Help: "Bytes the flight recorder holds (bounded by --recorder-bytes)."},
			func() float64 { return float64(rec.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "observer_recorder_entries", Help: "Events and snapshots the flight recorder holds."},
			func() float64 { return float64(rec.Stats().Entries) }),
	)

	wg.Add(3)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	go func() { defer wg.Done(); defer store.Close(); mgr.Run(ctx) }()
	go func() {
		defer wg.Done()
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		tick := time.NewTicker(lostCheckEvery)
		defer tick.Stop()
		rules.CheckLost(opts.Source.Status(), time.Now())
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				mgr.Signal()
			case now := <-tick.C:
				rules.CheckLost(opts.Source.Status(), now)
			}
		}
	}()
	opts.Logger.Info("flight recorder on", "window", fc.Window, "bytes", fc.MaxBytes, "captures", store.Dir(), "incident_rules", strings.Join(fc.IncidentRules, ","))
	return &forensics{
		rec:       rec,
		observers: []pipeline.Observer{rules},
		routes:    map[string]http.Handler{"POST /capture": mgr},
	}, nil
}

// HostFacts is the "host" snapshot section.
type HostFacts struct {
	Hostname        string `json:"hostname"`
	Kernel          string `json:"kernel"`
	OS              string `json:"os,omitempty"`
	Arch            string `json:"arch"`
	CPUs            int    `json:"cpus"`
	ObserverVersion string `json:"observer_version"`
	ObserverPID     int    `json:"observer_pid"`
	BootID          string `json:"boot_id,omitempty"`
}

func hostFacts(version, kernel string) HostFacts {
	h := HostFacts{Kernel: kernel, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), ObserverVersion: version, ObserverPID: os.Getpid()}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/etc/os-release"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				h.OS = strings.Trim(v, `"`)
			}
		}
	}
	return h
}

// Package config parses the daemon's command line into a validated Config. Every
// problem is one clear line; the caller exits with status 2.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/server"
)

// Config is the daemon's configuration.
type Config struct {
	// Listen is HOST:PORT or unix:PATH. On a network address only /metrics,
	// /healthz and /readyz are open unless WebConfigFile authenticates clients.
	Listen string
	// Socket is the control socket (every route, mode 0600); "" none.
	Socket string
	// WebConfigFile configures TLS and basic auth on Listen (exporter-toolkit).
	WebConfigFile string
	EventsFile    string // "" none, "-" stdout
	WatchComms    []string
	// Attach maps a sensor name (or "*") to a forced attach mode.
	Attach          map[string]string
	Sensors         []string // nil: all
	DockerHost      string   // "" = DOCKER_HOST or the default socket; "none" disables
	LogLevel        slog.Level
	LogFormat       string // LogFormatText or LogFormatJSON
	ShowVersion     bool   // --version: print it and exit
	RingBufferBytes int
	Forensics       Forensics
	// Syscall latency sensor (see internal/latency).
	SyscallBreakdown      bool // per-syscall counts in the kernel
	SyscallTop            int  // syscalls per container in /status and the opt-in label
	SyscallLabel          bool // per-syscall metrics (implies SyscallBreakdown)
	SyscallSampleEvery    int  // measure one syscall in N
	SyscallContainersOnly bool // skip host cgroups in the kernel
	// PodLabels exports observer_container_info{container,pod,namespace,pod_container}.
	PodLabels bool
	// ResidueGrace is how long an object must stay orphaned before it is residue.
	ResidueGrace time.Duration
	// ResidueInterval is how often the residue detectors rescan the kernel.
	ResidueInterval time.Duration
}

// Ring buffer bounds. A ring buffer is kernel memory each sensor pins for the
// daemon's life (and the tracer maps it into the daemon too); the events that
// travel through it are rare, 256 KiB holds about a thousand, and drops are
// counted. 16 MiB per sensor (about 130 MiB for every sensor) is far past any
// need; beyond it a typo costs gigabytes (1 GiB took 4.2 GB RSS and 11 s to
// start) or, past 4 GiB, wraps the kernel's 32-bit size to 0.
const (
	MinRingBufferBytes = 4096
	MaxRingBufferBytes = 16 << 20
)

// CheckListen accepts what the daemon can listen on without resolving a
// name: IP:PORT, :PORT (every address) or [IPv6]:PORT with a port of 0 to
// 65535, or unix:PATH. A host name is refused rather than looked up: a node
// agent should send no DNS query for its own listen address, and a name that
// does not resolve must fail here, before any BPF program loads.
func CheckListen(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return errors.New("want unix:PATH with a socket path")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q: want an IP address (names are not resolved; e.g. 127.0.0.1, [::1], 0.0.0.0) or unix:PATH", host)
	}
	return nil
}

// DefaultListen is loopback only: metrics and events describe the host.
const DefaultListen = "127.0.0.1:9810"

// Residue detector defaults, shared with `observer capture --standalone`.
const (
	DefaultResidueGrace    = time.Minute
	DefaultResidueInterval = 10 * time.Second
)

// Log formats (slog's handlers).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Defaults for the values Parse cannot know itself.
type Defaults struct {
	WatchComms []string
	// Usage, when set, writes what --help prints before the flags (the
	// command's synopsis and subcommands).
	Usage func(io.Writer)
}

// Parse reads args (without the program name). -h/--help returns flag.ErrHelp
// after printing usage to usage.
func Parse(args []string, def Defaults, usage io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("observer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &Config{}
	var watch, attach, sensors, level string
	fs.StringVar(&c.Listen, "listen", DefaultListen, "HTTP `address` (HOST:PORT or unix:PATH): /metrics, /healthz and /readyz for anyone who reaches it; the other routes only with --web.config.file credentials (or on a unix: socket)")
	fs.StringVar(&c.Socket, "socket", server.DefaultSocket, "control socket `path` (mode 0600) serving every route to root; the observer CLI's default; none disables")
	fs.StringVar(&c.WebConfigFile, "web.config.file", "", "exporter-toolkit web config `file`: TLS (tls_server_config) and basic auth with bcrypt hashes (basic_auth_users) on --listen")
	fs.StringVar(&c.EventsFile, "events", "", "also append every event as a JSON line to `FILE` (- for stdout)")
	fs.StringVar(&watch, "watch-comm", strings.Join(def.WatchComms, ","), "comma-separated daemon `names` whose fatal signals and exits are reported; a trailing * matches a prefix")
	fs.StringVar(&attach, "attach", "", "force attach modes: `MODE` for all sensors, or sensor=MODE,... (modes: fentry, kprobe, tp_btf, raw_tracepoint, tail_call, tracepoint)")
	fs.StringVar(&sensors, "sensors", "", "comma-separated `sensors` to run (default all), or -name,... to run all but those")
	fs.StringVar(&c.DockerHost, "docker-host", "", "Docker Engine API `address` for container names (default $DOCKER_HOST or unix:///var/run/docker.sock; none disables)")
	fs.StringVar(&level, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", LogFormatText, "log `format`: text (key=value) or json (one object per line)")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
	fs.IntVar(&c.RingBufferBytes, "ring-buffer-size", 0, "per-sensor ring buffer `bytes` (power of two, 4096 to 16777216; default 0: each sensor its own, 4 MiB for rename, 7.75 MiB in all): kernel memory each sensor pins")
	var forensics forensicsFlags
	c.Forensics.addFlags(fs, &forensics)

	fs.BoolVar(&c.SyscallBreakdown, "syscall-breakdown", false, "latency sensor: also count calls and time per syscall in the kernel (top N per container in /status)")
	fs.IntVar(&c.SyscallTop, "syscall-top", 5, "latency sensor: syscalls per container shown in /status and by --syscall-label (`N`, 1..64)")
	fs.BoolVar(&c.SyscallLabel, "syscall-label", false, "latency sensor: export observer_syscall_top_{calls,seconds}_total{container,syscall} for the top N syscalls (implies --syscall-breakdown)")
	fs.IntVar(&c.SyscallSampleEvery, "syscall-sample-every", sensor.DefaultSyscallSampleEvery, "latency and seccomp sensors: time one syscall (filter run) in `N` on average, picked at random (1 = all; every syscall is counted either way)")
	fs.BoolVar(&c.SyscallContainersOnly, "syscall-containers-only", false, "latency sensor: measure container cgroups only (host syscalls still pay for the hooks and a per-thread counter)")
	fs.BoolVar(&c.PodLabels, "pod-labels", false, "export observer_container_info{container,pod,namespace,pod_container} from the kubelet's Docker labels (io.kubernetes.*), for labelled containers only")
	fs.DurationVar(&c.ResidueGrace, "residue-grace", DefaultResidueGrace, "how long a semaphore array or veth must stay orphaned before it is reported as residue")
	fs.DurationVar(&c.ResidueInterval, "residue-interval", DefaultResidueInterval, "how often the residue detectors rescan /proc/sysvipc/sem and the links")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			if def.Usage != nil {
				def.Usage(usage)
			} else {
				fmt.Fprintln(usage, "Usage: observer [flags]")
			}
			fs.PrintDefaults()
			return nil, err
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see observer help for the commands)", fs.Arg(0))
	}
	if c.ShowVersion {
		return c, nil
	}
	if err := CheckListen(c.Listen); err != nil {
		return nil, fmt.Errorf("-listen %q: %v", c.Listen, err)
	}
	if err := c.checkListen(); err != nil {
		return nil, err
	}
	c.WatchComms = splitList(watch)
	c.Sensors = splitList(sensors)
	var err error
	if c.Attach, err = parseAttach(attach); err != nil {
		return nil, err
	}
	if c.LogFormat != LogFormatText && c.LogFormat != LogFormatJSON {
		return nil, fmt.Errorf("-log-format %q: want text or json", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	if c.SyscallTop < 1 || c.SyscallTop > 64 {
		return nil, fmt.Errorf("-syscall-top %d: want 1..64", c.SyscallTop)
	}
	if c.SyscallSampleEvery < 1 || c.SyscallSampleEvery > 1<<20 {
		return nil, fmt.Errorf("-syscall-sample-every %d: want 1..%d", c.SyscallSampleEvery, 1<<20)
	}
	if c.SyscallLabel {
		c.SyscallBreakdown = true
	}
	if c.ResidueGrace < 0 {
		return nil, fmt.Errorf("-residue-grace %v: must not be negative", c.ResidueGrace)
	}
	if c.ResidueInterval < time.Second {
		return nil, fmt.Errorf("-residue-interval %v: want at least 1s", c.ResidueInterval)
	}
	if rb := c.RingBufferBytes; rb != 0 && (rb < MinRingBufferBytes || rb > MaxRingBufferBytes || rb&(rb-1) != 0) {
		return nil, fmt.Errorf("-ring-buffer-size %d: want a power of two from %d to %d (16 MiB)", rb, MinRingBufferBytes, MaxRingBufferBytes)
	}
	if err := c.Forensics.finish(&forensics); err != nil {
		return nil, err
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseAttach accepts "MODE" (every sensor) or "sensor=MODE,...". Mode names are
// checked by the tracer, which owns them.
func parseAttach(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range splitList(s) {
		sensor, mode, ok := strings.Cut(part, "=")
		if !ok {
			sensor, mode = "*", part
		}
		if sensor == "" || mode == "" {
			return nil, fmt.Errorf("-attach %q: want MODE or sensor=MODE", part)
		}
		if _, dup := out[sensor]; dup {
			return nil, fmt.Errorf("-attach: %s given twice", sensor)
		}
		out[sensor] = mode
	}
	return out, nil
}

// checkListen validates the listen address, socket and web config.
func (c *Config) checkListen() error {
	if path, ok := strings.CutPrefix(c.Listen, server.UnixPrefix); ok {
		if path == "" {
			return fmt.Errorf("-listen %q: want unix:PATH", c.Listen)
		}
		if c.WebConfigFile != "" {
			return fmt.Errorf("-web.config.file: applies to a HOST:PORT --listen, not a unix socket")
		}
	}
	if c.Socket == "none" {
		c.Socket = ""
	}
	if c.Socket != "" && server.UnixPrefix+c.Socket == c.Listen {
		c.Socket = "" // one socket serves both
	}
	if c.WebConfigFile != "" {
		if err := web.Validate(c.WebConfigFile); err != nil {
			return fmt.Errorf("-web.config.file %s: %v", c.WebConfigFile, err)
		}
	}
	return nil
}

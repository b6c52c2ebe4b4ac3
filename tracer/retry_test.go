package tracer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
)

func TestRetryInterval(t *testing.T) {
	for _, c := range []struct {
		set, want time.Duration
	}{
		{0, DefaultRetryInterval},
		{-1, 0},
		{-time.Hour, 0},
		{250 * time.Millisecond, 250 * time.Millisecond},
	} {
		o := Options{RetryInterval: c.set}
		if got := o.retryInterval(); got != c.want {
			t.Errorf("RetryInterval %v: interval %v, want %v", c.set, got, c.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	veth := sensorDef{name: SensorVeth, modes: []Mode{ModeFentry, ModeKprobe}}
	for _, c := range []struct {
		attach map[string]Mode
		want   bool
	}{
		{nil, true},
		{map[string]Mode{SensorVeth: ModeKprobe}, true},
		{map[string]Mode{"*": ModeFentry}, true},
		// Forced into a mode it has no programs for: no attempt can succeed.
		{map[string]Mode{SensorVeth: ModeTracepoint}, false},
		{map[string]Mode{"*": ModeTPBTF}, false},
		// Its own override wins over "*".
		{map[string]Mode{"*": ModeTPBTF, SensorVeth: ModeKprobe}, true},
		{map[string]Mode{SensorCgroup: ModeTracepoint}, true},
	} {
		o := Options{Attach: c.attach}
		if got := veth.retryable(&o); got != c.want {
			t.Errorf("attach %v: retryable = %v, want %v", c.attach, got, c.want)
		}
	}
}

func TestPendingLogsOnlyChangedReasons(t *testing.T) {
	p := &pending{reason: "fentry: target not found"}
	for i, c := range []struct {
		reason  string
		changed bool
	}{
		{"fentry: target not found", false},
		{"fentry: target not found", false},
		{"fentry: load: out of memory", true},
		{"fentry: load: out of memory", false},
		{"fentry: target not found", true},
	} {
		if got := p.failed(c.reason); got != c.changed {
			t.Errorf("attempt %d (%q): changed = %v, want %v", i, c.reason, got, c.changed)
		}
		if p.reason != c.reason {
			t.Errorf("attempt %d: reason %q, want %q", i, p.reason, c.reason)
		}
	}
}

// logBuffer collects JSON log lines from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the records with this message for this sensor.
func (b *logBuffer) lines(t *testing.T, msg, sensor string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == msg && rec["sensor"] == sensor {
			out = append(out, rec)
		}
	}
	return out
}

// checkFailureLogs asserts the retry loop logged a failure only when its
// reason changed: no two successive lines for a sensor give the same reason.
func checkFailureLogs(t *testing.T, logs *logBuffer, sensor string) []map[string]any {
	t.Helper()
	lines := logs.lines(t, "sensor unavailable", sensor)
	if len(lines) == 0 {
		t.Fatalf("no \"sensor unavailable\" line for %s", sensor)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i]["reason"] == lines[i-1]["reason"] {
			t.Fatalf("failure logged again with an unchanged reason: %v", lines[i])
		}
	}
	return lines
}

// TestRetryWhileUnavailable runs the retry loop against a sensor that cannot
// attach on this kernel (veth on the build host: no fentry, no kprobes) while
// other goroutines read Status and the on-demand readers, then closes the
// tracer: run with -race. The failure is logged once however many retries
// run, and a forced mode the sensor lacks is never retried.
func TestRetryWhileUnavailable(t *testing.T) {
	requireRoot(t)
	logs := &logBuffer{}
	tr, err := New(Options{
		Sensors:       []string{SensorCgroup, SensorVeth, SensorSignal},
		Attach:        map[string]Mode{SensorSignal: ModeFentry}, // signal has no fentry programs
		RetryInterval: 5 * time.Millisecond,
		Logger:        logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		tr.Close()
		t.Fatal(err)
	}
	defer tr.Close()
	if st, _ := statusOf(tr, SensorVeth); st.Active() {
		t.Skipf("veth attached at start in %s mode: nothing to retry here (TestLateAttachVeth covers late attach, in make vmtest)", st.Mode)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tr.Status()
				tr.SyscallLatency() // not enabled: ErrNotRunning, but it takes the map lock
				tr.MeasuredCgroups()
			}
		})
	}
	// No module loads here: a round runs every fullRetryRounds intervals (150 ms).
	deadline := time.Now().Add(10 * time.Second)
	for tr.retries.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	n := tr.retries.Load()
	if n < 10 {
		t.Fatalf("%d retries within 10s at a 5ms interval", n)
	}
	st, _ := statusOf(tr, SensorVeth)
	if st.Active() || st.Unavailable == "" {
		t.Fatalf("veth status after %d failed retries = %+v, want unavailable with a reason", n, st)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	after := tr.retries.Load()
	time.Sleep(50 * time.Millisecond)
	if tr.retries.Load() != after {
		t.Fatalf("retries went on after Close: %d, then %d", after, tr.retries.Load())
	}
	lines := checkFailureLogs(t, logs, SensorVeth)
	if lines[0]["retry_every"] == nil {
		t.Errorf("first failure line lacks retry_every: %v", lines[0])
	}
	sig := logs.lines(t, "sensor unavailable", SensorSignal)
	if len(sig) != 1 || sig[0]["retry_every"] != nil {
		t.Errorf("signal forced to fentry (no such programs): want one failure line without retry_every, got %v", sig)
	}
	t.Logf("%d failed attempts, %d failure line(s) for veth: %s", n, len(lines), st.Unavailable)
}

// vethModule is where the QEMU guest keeps the module it loads at boot
// (internal/vmtest/initscript.go).
const vethModule = "/vmtest/modules/veth.ko"

// removeVeth unloads the veth module, skipping when that is not possible or
// would disturb anything, and loads it again when the test ends so the rest
// of the suite finds it as the guest set it up.
func removeVeth(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/module/veth/initstate"); err != nil {
		t.Skip("veth is not a loaded module here (built into this kernel, or absent): it cannot be loaded late")
	}
	if _, err := os.Stat(vethModule); err != nil {
		t.Skipf("no %s to load veth again (make vmtest provides it): %v", vethModule, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "veth" {
			t.Skipf("veth device %s exists: removing the module would delete it", l.Attrs().Name)
		}
	}
	t.Cleanup(func() {
		if err := loadVethModule(); err != nil {
			t.Errorf("load veth again: %v", err)
		}
	})
	// A tracer closed just before may still hold the module for a moment
	// (links are released after an RCU grace period).
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.DeleteModule("veth", unix.O_NONBLOCK)
		if err == nil {
			return
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			refs, _ := os.ReadFile("/sys/module/veth/refcnt")
			t.Skipf("cannot remove the veth module (refcnt %s): %v", strings.TrimSpace(string(refs)), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func loadVethModule() error {
	f, err := os.Open(vethModule)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", vethModule, err)
	}
	return nil
}

// TestLateAttachVeth is the production case: the observer starts before
// dockerd loads veth. With the module removed, the veth sensor must start
// unavailable; once the module is loaded it must attach on a retry (best mode,
// then forced kprobe) and report a veth pair created afterwards. Runs in the
// QEMU guests (make vmtest); the build host has veth built in and neither
// fentry nor kprobes.
func TestLateAttachVeth(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		force, want Mode
	}{
		{"", ModeFentry},
		{ModeKprobe, ModeKprobe},
	} {
		name := string(c.force)
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			switch offered, known := kernelOffers(t, SensorVeth, c.want); {
			case !known:
				t.Skipf("cannot tell whether this kernel offers %s (no row in %s): late attach runs in make vmtest", c.want, testenv.ModesFile)
			case !offered:
				t.Skipf("this kernel does not offer %s (%s), so veth cannot attach in it: late attach runs in make vmtest", c.want, testenv.ModesFile)
			}
			removeVeth(t)
			logs := &logBuffer{}
			opts := Options{
				// cgroup attaches at start: Start fails when nothing can.
				Sensors:       []string{SensorVeth, SensorCgroup},
				RetryInterval: 100 * time.Millisecond,
				Logger:        logs.logger(),
			}
			if c.force != "" {
				opts.Attach = map[string]Mode{SensorVeth: c.force}
			}
			tr, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(func() {
				cancel()
				tr.Close()
			})
			if err := tr.Start(ctx); err != nil {
				t.Fatal(err)
			}
			st, _ := statusOf(tr, SensorVeth)
			if st.Active() || st.Unavailable == "" {
				t.Fatalf("veth module removed, yet status = %+v", st)
			}
			t.Logf("without the module: %s", st.Unavailable)
			time.Sleep(300 * time.Millisecond) // a few failed retries
			if err := loadVethModule(); err != nil {
				t.Fatal(err)
			}
			loaded := time.Now()
			for st, _ = statusOf(tr, SensorVeth); !st.Active(); st, _ = statusOf(tr, SensorVeth) {
				if time.Since(loaded) > 10*time.Second {
					t.Fatalf("veth module loaded 10s ago, sensor still unavailable: %s", st.Unavailable)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if Mode(st.Mode) != c.want {
				t.Fatalf("attached late in %s mode, want %s", st.Mode, c.want)
			}
			t.Logf("attached in %s mode %v after the module was loaded", st.Mode, time.Since(loaded).Round(time.Millisecond))
			checkFailureLogs(t, logs, SensorVeth)
			att := logs.lines(t, "sensor attached", SensorVeth)
			if len(att) != 1 || att[0]["late"] != true || att[0]["mode"] != string(c.want) {
				t.Fatalf("want one \"sensor attached\" line with late=true mode=%s, got %v", c.want, att)
			}

			name := fmt.Sprintf("obsl%d", os.Getpid()%100000)
			testenv.VethPair(t, name, name+"p")
			ev := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethCreate && c.Name == name
			}).(*event.VethChange)
			if ev.PID != uint32(os.Getpid()) {
				t.Fatalf("veth_create = %+v, want pid %d", ev, os.Getpid())
			}
		})
	}
}

// BenchmarkRetryUnavailable measures a failed retry round, wall and CPU time
// (user+system, so the kernel's verifier work counts): "veth" alone, and
// "all" for every sensor that cannot attach on this kernel (on the build
// host copyup, seccomp and veth: fentry refused, no kprobes), which share one
// round's kernel BTF as the retry loop does.
func BenchmarkRetryUnavailable(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	tr, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	var failing []sensorDef
	var veth []sensorDef
	for _, s := range sensors() {
		r, err := tr.attachSensor(s, btf.NewCache())
		if err == nil {
			r.att.close()
			continue
		}
		failing = append(failing, s)
		if s.name == SensorVeth {
			veth = append(veth, s)
		}
	}
	for _, c := range []struct {
		name string
		defs []sensorDef
	}{{"veth", veth}, {"all", failing}} {
		b.Run(c.name, func(b *testing.B) {
			if len(c.defs) == 0 {
				b.Skip("every sensor of this set attaches on this kernel: no failed retry to measure")
			}
			var names []string
			for _, d := range c.defs {
				names = append(names, d.name)
			}
			b.Logf("sensors: %v", names)
			var before, after unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &before)
			for b.Loop() {
				kernelBTF := btf.NewCache()
				for _, d := range c.defs {
					if r, err := tr.attachSensor(d, kernelBTF); err == nil {
						r.att.close()
						b.Fatalf("%s attached", d.name)
					}
				}
			}
			unix.Getrusage(unix.RUSAGE_SELF, &after)
			cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

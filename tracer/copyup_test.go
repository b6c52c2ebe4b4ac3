package tracer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/metrics"
	"github.com/observer-dev/observer/internal/pipeline"
	"github.com/observer-dev/observer/internal/testenv"
)

// copyUpRig is the daemon's event path around one tracer: the copyup sensor in a
// forced mode plus the cgroup sensor, feeding a real container.Resolver through
// the pipeline, with real metrics, so events carry the container id.
type copyUpRig struct {
	tr      *Tracer
	variant string // TypesOverlay, or TypesVmlinuxOnly where overlay has no BTF
	metrics *metrics.Metrics
	sub     *bus.Subscription
}

func startCopyUpRig(t *testing.T, mode Mode) *copyUpRig {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr, err := New(Options{
		Sensors: []string{SensorCopyUp, SensorCgroup},
		Attach:  map[string]Mode{SensorCopyUp: mode},
		Logger:  quiet,
	})
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
	var variant string
	for _, st := range tr.Status() {
		if st.Name == SensorCopyUp {
			reportMatrix(t, SensorCopyUp, mode, st)
			if offered, known := kernelOffers(t, SensorCopyUp, mode); known && !offered {
				if st.Mode != "" || st.Unavailable == "" {
					t.Fatalf("this kernel does not offer %s to copyup (%s), yet status = %+v", mode, testenv.ModesFile, st)
				}
				t.Skipf("copyup/%s unavailable here, as expected: %s", mode, st.Unavailable)
			}
			if st.Mode != string(mode) {
				t.Fatalf("copyup forced to %s in the kernel matrix, got %+v", mode, st)
			}
			variant = st.Variant
			t.Logf("copyup: %s, %s", st.Mode, st.Variant)
		}
	}
	res, err := container.NewResolver(container.Options{DockerHost: "none", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	rig := &copyUpRig{
		tr:      tr,
		variant: variant,
		metrics: metrics.New(metrics.Sources{Sensors: tr.Status}),
		sub:     b.Subscribe("test", 4096, func(ev event.Event) bool { return ev.Hdr().Type == event.TypeCopyUp }),
	}
	p := &pipeline.Pipeline{Correlator: res, Observers: []pipeline.Observer{rig.metrics}, Bus: b}
	go p.Run(ctx, tr.Events())
	return rig
}

// checkNoneInFlight: once the copy-ups are over, the in-flight counter that
// lets the splice and clone hooks skip their lookup is back to zero: every
// copy-up that counted itself in also counted itself out.
func (r *copyUpRig) checkNoneInFlight(t *testing.T) {
	t.Helper()
	// The event is submitted just before the exit hook counts itself out.
	var n int64
	for i := 0; i < 100; i++ {
		if n = r.inFlight(t); n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("copyups_inflight = %d after the copy-ups ended, want 0", n)
}

func (r *copyUpRig) inFlight(t *testing.T) int64 {
	t.Helper()
	r.tr.mapsMu.RLock()
	defer r.tr.mapsMu.RUnlock()
	var coll *ebpf.Collection
	for _, s := range r.tr.running {
		if s.def.name == SensorCopyUp {
			coll = s.att.coll
		}
	}
	if coll == nil {
		t.Fatal("copyup sensor not running")
	}
	var n int64
	if err := coll.Variables["copyups_inflight"].Get(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// until returns the copy-ups of container id, in order, up to and including the
// first one whose path is last.
func (r *copyUpRig) until(t *testing.T, id, last string) []*event.CopyUp {
	t.Helper()
	var got []*event.CopyUp
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-r.sub.C():
			c := ev.(*event.CopyUp)
			if c.ContainerID != id {
				continue
			}
			got = append(got, c)
			line, _ := json.Marshal(c)
			t.Logf("%s", line)
			if c.Path == last {
				return got
			}
		case <-deadline:
			t.Fatalf("no copy_up of %s in container %s within 20s; got %s", last, id[:12], describe(got))
		}
	}
}

func describe(evs []*event.CopyUp) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\n  ")
		b.WriteString(e.Path + " " + e.Trigger + " " + e.Result)
	}
	return b.String()
}

func withPath(evs []*event.CopyUp, path string) []*event.CopyUp {
	var out []*event.CopyUp
	for _, e := range evs {
		if e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// run runs a script in the container and fails on a runc error; a non-zero
// exit is the script's business.
func run(t *testing.T, c *testenv.Container, script string) testenv.RunResult {
	t.Helper()
	res, err := c.Run(context.Background(), script)
	if err != nil {
		t.Fatalf("container %s: %v\n%s", c.ID[:12], err, res.Output)
	}
	return res
}

// checkMetrics compares the container's metrics with the events it produced.
func (r *copyUpRig) checkMetrics(t *testing.T, id string, evs []*event.CopyUp) {
	t.Helper()
	var sum float64
	var bytes uint64
	results := map[string]float64{}
	for _, e := range evs {
		sum += float64(e.DurationNS) / 1e9
		bytes += e.BytesCopied
		results[e.Result]++
	}
	short := r.metrics.ContainerLabel(id)
	count, gotSum := histogram(t, r.metrics, "observer_copy_up_duration_seconds", short)
	if count != uint64(len(evs)) || math.Abs(gotSum-sum) > 1e-6*math.Max(1, sum) {
		t.Errorf("duration histogram: count %d sum %.9f, events: %d summing to %.9f s", count, gotSum, len(evs), sum)
	}
	fams, _ := r.metrics.Registry().Gather()
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["container"] != short {
				continue
			}
			switch f.GetName() {
			case "observer_copy_up_bytes_total":
				if got := m.GetCounter().GetValue(); got != float64(bytes) {
					t.Errorf("bytes_total = %v, events say %d", got, bytes)
				}
			case "observer_copy_ups_total":
				if got := m.GetCounter().GetValue(); got != results[labels["result"]] {
					t.Errorf("copy_ups_total{result=%q} = %v, events say %v", labels["result"], got, results[labels["result"]])
				}
			}
		}
	}
}

func histogram(t *testing.T, m *metrics.Metrics, name, ctr string) (uint64, float64) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "container" && l.GetValue() == ctr {
					return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

// fill writes size bytes of non-zero data: a sparse file would copy up its holes for free.
func fill(path string, size int) error {
	chunk := bytes.Repeat([]byte("observer"), 1<<17) // 1 MiB
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for n := 0; n < size; n += len(chunk) {
		if _, err := f.Write(chunk[:min(len(chunk), size-n)]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func checkHeader(t *testing.T, e *event.CopyUp, id string) {
	t.Helper()
	if e.ContainerID != id || e.PID == 0 || e.TID == 0 || e.Comm == "" || e.CgroupID == 0 {
		t.Errorf("%s: header %+v, want container %s, a pid, tid, comm and cgroup", e.Path, e.Header, id[:12])
	}
	if e.DurationNS == 0 || e.DurationNS > uint64(time.Minute) {
		t.Errorf("%s: duration %d ns is not plausible", e.Path, e.DurationNS)
	}
}

// known checks a field that needs overlay's types: it must be want, or absent
// (nil, never a zero) in the vmlinux_only variant.
func known[T comparable](t *testing.T, r *copyUpRig, what string, got *T, want T) {
	t.Helper()
	switch {
	case r.variant == TypesVmlinuxOnly && got != nil:
		t.Errorf("%s = %v in the %s variant, want it absent", what, *got, TypesVmlinuxOnly)
	case r.variant != TypesVmlinuxOnly && got == nil:
		t.Errorf("%s absent, want %v", what, want)
	case r.variant != TypesVmlinuxOnly && *got != want:
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}

func TestCopyUp(t *testing.T) {
	requireRoot(t)
	if testenv.VMKernel() == "" {
		t.Skip("copy-up hooks need fentry or kprobes: runs in the QEMU tier (make vmtest); TestCopyUpUnavailableHere covers this host")
	}
	const bigSize = 64 << 20
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			rig := startCopyUpRig(t, mode)

			t.Run("data", func(t *testing.T) {
				c := testenv.NewContainer(t, testenv.ContainerOptions{
					Lower: map[string]string{"marker": strings.Repeat("m", 4096)},
					Prepare: func(lower string) error {
						if err := fill(filepath.Join(lower, "big"), bigSize); err != nil {
							return err
						}
						if err := os.WriteFile(filepath.Join(lower, "h1"), []byte("linked\n"), 0o644); err != nil {
							return err
						}
						return os.Link(filepath.Join(lower, "h1"), filepath.Join(lower, "h2"))
					},
				})
				if res := run(t, c, "echo -n x >> /big && echo -n y >> /big && echo x >> /h1"); res.ExitCode != 0 {
					t.Fatalf("exit %d: %s", res.ExitCode, res.Output)
				}
				// Already copied up: neither the append nor anything else may report /big again.
				// The chmod of /marker is the fence that proves the sensor caught up.
				if res := run(t, c, "echo -n z >> /big && chmod 600 /marker"); res.ExitCode != 0 {
					t.Fatalf("exit %d: %s", res.ExitCode, res.Output)
				}
				evs := rig.until(t, c.ID, "/marker")
				big := withPath(evs, "/big")
				if len(big) != 1 {
					t.Fatalf("copy_up events for /big: %d, want exactly 1; got %s", len(big), describe(evs))
				}
				b := big[0]
				checkHeader(t, b, c.ID)
				if b.BytesCopied < bigSize || b.Result != "ok" || b.FileType != "regular" {
					t.Errorf("/big: %+v, want bytes %d, ok, regular", b, bigSize)
				}
				known(t, rig, "/big size", b.Size, bigSize)
				known(t, rig, "/big metadata_only", b.MetadataOnly, false)
				if b.Trigger != "open" && b.Trigger != "openat" {
					t.Errorf("/big trigger %q (nr %d), want open or openat", b.Trigger, b.SyscallNr)
				}
				known(t, rig, "/big nlink", b.Nlink, 1)
				known(t, rig, "/big hardlinks_broken", b.HardlinksBroken, false)

				h := withPath(evs, "/h1")
				if len(h) != 1 {
					t.Fatalf("/h1 (lower nlink 2): %s, want one copy_up", describe(h))
				}
				known(t, rig, "/h1 hardlinks_broken", h[0].HardlinksBroken, true)
				known(t, rig, "/h1 nlink", h[0].Nlink, 2)
				m := withPath(evs, "/marker")[0]
				if !slices.Contains([]string{"chmod", "fchmodat", "fchmodat2"}, m.Trigger) || m.BytesCopied != 4096 {
					t.Errorf("/marker without metacopy: trigger %q bytes %d, want chmod, a data copy of 4096", m.Trigger, m.BytesCopied)
				}
				known(t, rig, "/marker metadata_only", m.MetadataOnly, false)
				testenv.Result(t, map[string]any{
					"test": "copy_up_64MiB", "kernel": kernelRelease(), "vm": testenv.VMKernel(), "mode": string(mode),
					"bytes": b.BytesCopied, "duration_ns": b.DurationNS,
					"mib_per_s": math.Round(float64(b.BytesCopied) / (1 << 20) / (float64(b.DurationNS) / 1e9)),
				})
				rig.checkMetrics(t, c.ID, evs)
				rig.checkNoneInFlight(t)
			})

			t.Run("metacopy", func(t *testing.T) {
				c := testenv.NewContainer(t, testenv.ContainerOptions{
					MountOptions: []string{"metacopy=on"},
					Prepare:      func(lower string) error { return fill(filepath.Join(lower, "small"), 1<<20) },
				})
				if res := run(t, c, "chmod 600 /small && echo x >> /small"); res.ExitCode != 0 {
					t.Fatalf("exit %d: %s", res.ExitCode, res.Output)
				}
				// A directory copy-up fences the events of the first run.
				if res := run(t, c, "chmod 600 /bin"); res.ExitCode != 0 {
					t.Fatalf("exit %d: %s", res.ExitCode, res.Output)
				}
				evs := rig.until(t, c.ID, "/bin")
				small := withPath(evs, "/small")
				if len(small) != 2 {
					t.Fatalf("copy_up events for /small: %s, want the metadata then the data", describe(small))
				}
				meta, data := small[0], small[1]
				checkHeader(t, meta, c.ID)
				if !slices.Contains([]string{"chmod", "fchmodat", "fchmodat2"}, meta.Trigger) || meta.BytesCopied != 0 {
					t.Errorf("chmod with metacopy=on: %+v, want trigger chmod, no bytes", meta)
				}
				known(t, rig, "metacopy metadata_only", meta.MetadataOnly, true)
				if data.BytesCopied != 1<<20 || (data.Trigger != "open" && data.Trigger != "openat") {
					t.Errorf("write after metacopy: %+v, want the 1 MiB data copy by open", data)
				}
				known(t, rig, "data after metacopy metadata_only", data.MetadataOnly, false)
				if d := withPath(evs, "/bin"); d[0].FileType != "directory" || d[0].Trigger == "" {
					t.Errorf("/bin: %+v, want a directory copy-up", d[0])
				}
				rig.checkMetrics(t, c.ID, evs)
				rig.checkNoneInFlight(t)
			})

			t.Run("enospc", func(t *testing.T) {
				c := testenv.NewContainer(t, testenv.ContainerOptions{
					UpperSize: 8 << 20,
					Prepare:   func(lower string) error { return fill(filepath.Join(lower, "big"), 16<<20) },
				})
				res := run(t, c, "echo x >> /big")
				if res.ExitCode == 0 || !strings.Contains(res.Output, "No space left") {
					t.Fatalf("append to a 16 MiB file over an 8 MiB upper: exit %d %q, want ENOSPC", res.ExitCode, res.Output)
				}
				evs := rig.until(t, c.ID, "/big")
				e := evs[len(evs)-1]
				checkHeader(t, e, c.ID)
				if e.Result != "ENOSPC" || e.Errno != 28 || e.BytesCopied >= 16<<20 || e.FileType != "regular" {
					t.Errorf("/big on a full upper: %+v, want result ENOSPC, a partial copy of the 16 MiB regular file", e)
				}
				known(t, rig, "ENOSPC size", e.Size, 16<<20)
				known(t, rig, "ENOSPC nlink", e.Nlink, 1)
				known(t, rig, "ENOSPC metadata_only", e.MetadataOnly, false)
				rig.checkMetrics(t, c.ID, evs)
				rig.checkNoneInFlight(t)
			})
		})
	}
}

// TestCopyUpUnavailableHere runs where neither fentry nor kprobes work (the
// build host): the sensor must say so in both modes, in /status and in
// observer_sensor_info, and report nothing.
func TestCopyUpUnavailableHere(t *testing.T) {
	requireRoot(t)
	if testenv.VMKernel() != "" {
		t.Skip("the kernel matrix offers both modes: TestCopyUp covers it")
	}
	fentry := fentryWorks()
	if fentry && haveKprobes() {
		t.Skip("this kernel offers fentry and kprobes: nothing is unavailable")
	}
	for _, mode := range []Mode{"", ModeFentry, ModeKprobe} {
		name := string(mode)
		if name == "" {
			name = "best"
		}
		t.Run(name, func(t *testing.T) {
			if (mode == ModeFentry && fentry) || (mode == ModeKprobe && haveKprobes()) {
				t.Skipf("this kernel offers %s", mode)
			}
			opts := Options{Sensors: []string{SensorCopyUp}}
			if mode != "" {
				opts.Attach = map[string]Mode{SensorCopyUp: mode}
			}
			tr, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Start(context.Background()); err == nil {
				t.Fatalf("start succeeded with copyup as the only sensor: %+v", tr.Status())
			}
			st := tr.Status()
			reportMatrix(t, SensorCopyUp, mode, st[0])
			if len(st) != 1 || st[0].Active() || st[0].Unavailable == "" || st[0].EventsReceived != 0 {
				t.Fatalf("status = %+v, want copyup unavailable with a reason", st)
			}
			reason := st[0].Unavailable
			if !haveKprobes() && mode != ModeFentry && !strings.Contains(reason, "kprobes") {
				t.Errorf("reason %q does not say the kernel lacks kprobes", reason)
			}
			if !fentry && mode != ModeKprobe && !strings.Contains(reason, "fentry") {
				t.Errorf("reason %q does not name the fentry failure", reason)
			}
			m := metrics.New(metrics.Sources{Sensors: tr.Status})
			want := `observer_sensor_info{mode="unavailable",reason="` + strings.ReplaceAll(reason, `"`, `\"`) + `",sensor="copyup",variant=""} 1`
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(
				"# HELP observer_sensor_info 1 for each sensor's attach mode; mode=\"unavailable\" with the reason when it could not attach; variant: how it adapted to the kernel (per-thread state, types read), empty for sensors with one form.\n"+
					"# TYPE observer_sensor_info gauge\n"+want+"\n"), "observer_sensor_info"); err != nil {
				t.Errorf("observer_sensor_info: %v", err)
			}
			if n := testutil.CollectAndCount(m.Registry(), "observer_copy_up_duration_seconds", "observer_copy_ups_total"); n != 0 {
				t.Errorf("%d copy-up series reported by an unavailable sensor", n)
			}
		})
	}
}

// fentryWorks loads and attaches an empty fentry program, independently of the
// sensors, to learn whether this kernel allows fentry at all.
func fentryWorks() bool {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceFEntry,
		AttachTo:     "vfs_getattr",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return false
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return false
	}
	l.Close()
	return true
}

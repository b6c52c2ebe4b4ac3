package tracer

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/eventlog"
	"github.com/observer-dev/observer/internal/pipeline"
)

// BenchmarkUserspacePath (make bench-events) pushes ring-buffer records of a
// container's rename through the daemon's userspace path: decode, container
// lookup, pipeline, bus, and the --events file's JSON writer. It reports
// events/s per CPU core (the process's user+system time) alongside ns/op.
// The producer waits when the file's queue is half full, so the rate is one
// the writer sustains, not one it drops at.
func BenchmarkUserspacePath(b *testing.B) {
	const ctr = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var rec renameRenameEvent
	rec.Hdr.TsBootNs, rec.Hdr.CgroupId, rec.Hdr.Pid, rec.Hdr.Tid, rec.Hdr.Type = 1, 4242, 100, 101, uint16(renameEventTypeEVENT_RENAME_EXDEV)
	putString(rec.Hdr.Comm[:], "mv")
	raw := renameRecord(rec, "/var/lib/app/data/dir", "/var/lib/app/data/moved")

	res, err := container.NewResolver(container.Options{DockerHost: "none", Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	res.CgroupCreated(4242, "/system.slice/docker-"+ctr+".scope")
	if got := res.Lookup(4242).ID; got != ctr {
		b.Fatalf("resolver maps the cgroup to %q", got)
	}
	f, err := eventlog.Open(filepath.Join(b.TempDir(), "events.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bs := bus.New()
	sub := bs.Subscribe("file", eventlog.Queue, nil)
	wrote := make(chan error, 1)
	go func() { wrote <- f.Write(sub, nil, nil) }()
	p := &pipeline.Pipeline{Correlator: res, Bus: bs}
	in := make(chan event.Event, 4096)
	ran := make(chan struct{})
	go func() { p.Run(context.Background(), in); close(ran) }()

	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		ev, err := decodeRename(raw)
		if err != nil {
			b.Fatal(err)
		}
		for len(sub.C()) > eventlog.Queue/2 {
			time.Sleep(50 * time.Microsecond)
		}
		in <- ev
	}
	close(in)
	<-ran
	bs.Close()
	if err := <-wrote; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu, wall := processCPU()-cpu0, time.Since(start)
	if d := bs.Dropped()["file"]; d != 0 {
		b.Fatalf("file subscriber dropped %d events", d)
	}
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

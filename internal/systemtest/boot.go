package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/vmtest"
)

// KernelRun is what one boot of the guest gave.
type KernelRun struct {
	Kernel   vmtest.Kernel
	Release  string
	Results  []Result
	Problems []string
	Duration time.Duration
	LogPath  string
}

// Passed reports whether the guest booted, ran every scenario and none failed.
func (r KernelRun) Passed() bool { return len(r.Problems) == 0 }

// BootConfig is how each kernel boots the disk.
type BootConfig struct {
	Disk    string
	OutDir  string        // .systemtest: <kernel>/console.log, results.jsonl
	Timeout time.Duration // boot to poweroff
	QEMU    vmtest.QEMU
	// Initrd finds the initrd for a kernel's release (Debian's own
	// /boot/initrd.img-<release> by default).
	Initrd func(k vmtest.Kernel, release, modDir string) (string, error)
	// Progress gets the console lines worth showing while the guest runs.
	Progress io.Writer
	// Scenarios limits the run to these (all when empty), for iterating on one.
	Scenarios []string
}

// DefaultQEMU is vmtest's TCG machine with the memory a node with dockerd
// and Prometheus needs. One vCPU: with two, the observer's threads hit soft
// lockups under multi-threaded TCG while programs attached.
func DefaultQEMU() vmtest.QEMU {
	q := vmtest.DefaultQEMU()
	q.Memory = "2048"
	q.CPUs = 1
	return q
}

// rootModules are what the guest's initramfs loads to mount its disk, where
// the kernel does not have them built in (ext4 checks metadata with crc32c,
// a soft dependency modules.dep does not list).
var rootModules = []string{"virtio_pci", "virtio_blk", "crc32c_generic", "ext4"}

// mountRoot is the /init of a built initramfs: load the modules, mount the
// disk and hand over to systemd.
const mountRoot = `export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $MODULES; do insmod /modules/$m.ko || echo "insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "mounting /dev/vda failed"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`

// Initrd is the initrd Debian's kernel package made for the release
// (/boot/initrd.img-<release>), or, for a kernel unpacked without one (5.10),
// a busybox initramfs that loads virtio and ext4 and mounts the disk, built
// into dir.
func Initrd(dir string) func(k vmtest.Kernel, release, modDir string) (string, error) {
	return func(k vmtest.Kernel, release, modDir string) (string, error) {
		p := "/boot/initrd.img-" + release
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		img, order, err := vmtest.BootInitramfs(modDir, rootModules, mountRoot)
		if err != nil {
			return "", fmt.Errorf("kernel %s has no %s; building one: %w", k.Name, p, err)
		}
		out := filepath.Join(dir, k.Name, "initramfs.cpio.gz")
		if err := os.WriteFile(out, img, 0o644); err != nil {
			return "", err
		}
		slog.Info("built an initramfs", "kernel", k.Name, "modules", order, "path", out)
		return out, nil
	}
}

// Boot runs the guest once on kernel k; every failure becomes a Problem.
func Boot(ctx context.Context, cfg BootConfig, k vmtest.Kernel) KernelRun {
	start := time.Now()
	res := KernelRun{Kernel: k}
	fail := func(err error) KernelRun {
		res.Problems = append(res.Problems, err.Error())
		res.Duration = time.Since(start)
		return res
	}
	dir := filepath.Join(cfg.OutDir, k.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	// A stale results file must not pass for this run's.
	os.Remove(filepath.Join(dir, "results.jsonl"))
	vmlinuz, modDir, err := k.Resolve()
	if err != nil {
		return fail(err)
	}
	release := filepath.Base(modDir)
	initrd, err := cfg.Initrd(k, release, modDir)
	if err != nil {
		return fail(err)
	}
	res.LogPath = filepath.Join(dir, "console.log")
	logf, err := os.Create(res.LogPath)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()

	slog.Info("booting the node", "kernel", k.Name, "release", release, "log", res.LogPath)
	con := vmtest.NewConsole(k.Name)
	bootCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	g := vmtest.Guest{
		Kernel: vmlinuz, Initrd: initrd,
		Append: "console=ttyS0 root=/dev/vda rw panic=-1 loglevel=4 systemd.show_status=error observer.kernel=" + k.Name +
			" observer.scenarios=" + strings.Join(cfg.Scenarios, ","),
		// -snapshot: the run writes to a temporary overlay, the cached disk stays as built.
		Extra: []string{"-drive", "file=" + cfg.Disk + ",if=virtio,format=raw", "-snapshot", "-nic", "none"},
	}
	bootErr := cfg.QEMU.Run(bootCtx, g, logf, func(line string) {
		con.Line(line)
		showProgress(cfg.Progress, k.Name, start, line)
	})
	res.Release = con.Release
	res.Problems = con.Problems(nil)
	if bootErr != nil {
		msg := bootErr.Error()
		if errors.Is(bootErr, context.DeadlineExceeded) {
			msg = fmt.Sprintf("timed out after %s (raise -timeout or look at %s)", cfg.Timeout, res.LogPath)
		}
		res.Problems = append([]string{msg}, res.Problems...)
	}
	res.Results, res.Problems = collect(k.Name, con.Results, res.Problems)
	if err := WriteResults(filepath.Join(dir, "results.jsonl"), res.Results); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	res.Duration = time.Since(start)
	return res
}

// collect turns the console's result objects into Results and names what is
// wrong: a failed scenario, one that never reported, one reported twice.
func collect(kernel string, objs []map[string]any, problems []string) ([]Result, []string) {
	byName := map[string]Result{}
	for _, o := range objs {
		raw, _ := json.Marshal(o)
		var r Result
		if err := json.Unmarshal(raw, &r); err != nil || r.Scenario == "" {
			problems = append(problems, fmt.Sprintf("result line without a scenario: %s", raw))
			continue
		}
		if _, dup := byName[r.Scenario]; dup {
			problems = append(problems, fmt.Sprintf("scenario %s reported twice", r.Scenario))
		}
		r.Kernel = kernel
		byName[r.Scenario] = r
	}
	var out []Result
	for _, s := range Scenarios {
		r, ok := byName[s.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("scenario %s: no result (the guest stopped before it)", s.Name))
			continue
		}
		switch r.Status {
		case Pass, Unavailable:
		case Fail:
			problems = append(problems, fmt.Sprintf("scenario %s failed: %s", s.Name, r.Reason))
		default:
			problems = append(problems, fmt.Sprintf("scenario %s: unknown status %q", s.Name, r.Status))
		}
		out = append(out, r)
		delete(byName, s.Name)
	}
	for name := range byName {
		problems = append(problems, fmt.Sprintf("unknown scenario %s in the results", name))
	}
	return out, problems
}

// showProgress prints the guest's progress markers and a few systemd
// milestones, so a long boot shows where it is.
func showProgress(w io.Writer, kernel string, start time.Time, line string) {
	if w == nil {
		return
	}
	line = strings.TrimRight(line, "\r")
	var msg string
	switch {
	case strings.Contains(line, ProgressPrefix):
		msg = line[strings.Index(line, ProgressPrefix)+len(ProgressPrefix):]
	case strings.Contains(line, ResultPrefix):
		var r Result
		if json.Unmarshal([]byte(line[strings.Index(line, ResultPrefix)+len(ResultPrefix):]), &r) == nil {
			msg = fmt.Sprintf("%s: %s %s%s", r.Scenario, r.Status, r.Reason, r.Facts)
		}
	case strings.Contains(line, "Kernel panic"), strings.Contains(line, "BUG: "), strings.Contains(line, "Oops: "):
		msg = line
	case strings.Contains(line, "Linux version "):
		msg = "kernel started"
	}
	if msg != "" {
		fmt.Fprintf(w, "[%s %5.0fs] %s\n", kernel, time.Since(start).Seconds(), msg)
	}
}

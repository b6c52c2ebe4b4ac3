// Package tracefs makes tracefs available to classic tracepoints, mounting it
// when the machine has none mounted (a fresh host often has not). It touches
// nothing but the mount table, so that the tracer and tools beside it
// (bench-events' bpftrace peer) share it without importing cilium/ebpf.
package tracefs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Dir is where a root process mounts tracefs when none is mounted, as
// systemd and Tetragon do.
const Dir = "/sys/kernel/tracing"

// Ensure makes tracefs available, mounting it at Dir when no tracefs (nor
// debugfs with its tracing directory) is mounted. It does the work once per
// process and reports each time whether this process mounted it: cilium/ebpf
// looks for a tracefs at its first classic tracepoint attach and keeps that
// answer, so the mount has to happen before it.
func Ensure() (mounted bool, err error) { return ensureOnce() }

var ensureOnce = sync.OnceValues(func() (bool, error) {
	if Present() {
		return false, nil
	}
	if err := unix.Mount("tracefs", Dir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		why := err.Error()
		if errors.Is(err, unix.EPERM) {
			why += " (needs CAP_SYS_ADMIN)"
		}
		return false, fmt.Errorf("neither tracefs nor debugfs is mounted, and mounting tracefs at %s failed: %s", Dir, why)
	}
	return true, nil
})

// Present looks for a mounted tracefs anywhere, or one at the places
// cilium/ebpf also probes (including debugfs's tracing directory on older systems).
func Present() bool {
	if mounts, err := readMountinfo(); err == nil && slices.ContainsFunc(mounts, func(l string) bool { return fsType(l) == "tracefs" }) {
		return true
	}
	return isTracefs(Dir) || isTracefs("/sys/kernel/debug/tracing")
}

// TracingMounts lists the mount points of every tracefs and debugfs, innermost
// first (the order to unmount them in).
func TracingMounts() ([]string, error) {
	lines, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	var mps []string
	for _, l := range lines {
		if fs := fsType(l); fs == "tracefs" || fs == "debugfs" {
			mps = append(mps, strings.Fields(l)[4])
		}
	}
	slices.Reverse(mps)
	return mps, nil
}

func isTracefs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && (st.Type == unix.TRACEFS_MAGIC || st.Type == unix.DEBUGFS_MAGIC)
}

func readMountinfo() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return lines, nil
}

// fsType returns the file system type of one /proc/self/mountinfo line:
// "id parent major:minor root mountpoint options [optional...] - fstype source superoptions".
func fsType(line string) string {
	fields := strings.Fields(line)
	for i := 6; i < len(fields)-1; i++ {
		if fields[i] == "-" {
			return fields[i+1]
		}
	}
	return ""
}

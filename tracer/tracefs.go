package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// tracefsDir is where a root process mounts tracefs when none is mounted, as
// systemd and Tetragon do.
const tracefsDir = "/sys/kernel/tracing"

// tracefsState is the outcome of making tracefs available, once per process:
// cilium/ebpf looks for a tracefs at its first classic tracepoint attach and
// keeps that answer, so the mount has to happen before it.
type tracefsState struct {
	mounted bool  // this process mounted it
	err     error // no tracefs, and mounting one failed
}

var tracefsOnce = sync.OnceValue(func() tracefsState {
	if tracefsPresent() {
		return tracefsState{}
	}
	if err := unix.Mount("tracefs", tracefsDir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		why := err.Error()
		if errors.Is(err, unix.EPERM) {
			why += " (needs CAP_SYS_ADMIN)"
		}
		return tracefsState{err: fmt.Errorf("neither tracefs nor debugfs is mounted, and mounting tracefs at %s failed: %s", tracefsDir, why)}
	}
	return tracefsState{mounted: true}
})

var tracefsLogged sync.Once

// ensureTracefs makes tracefs available for classic tracepoints, mounting it
// when no tracefs (or debugfs with its tracing directory) is mounted; the
// mount is logged once. It is called only when a tracepoint mode is tried, so
// a kernel served by fentry or tp_btf never gets a mount it does not need.
func ensureTracefs(log *slog.Logger) error {
	st := tracefsOnce()
	if st.mounted {
		tracefsLogged.Do(func() {
			log.Info("tracefs was not mounted: mounted it for the tracepoint attach mode", "path", tracefsDir)
		})
	}
	return st.err
}

// tracefsPresent looks for a mounted tracefs anywhere, or one at the places
// cilium/ebpf also probes (including debugfs's tracing directory on older systems).
func tracefsPresent() bool {
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			if mountinfoType(sc.Text()) == "tracefs" {
				return true
			}
		}
	}
	return isTracefs(tracefsDir) || isTracefs("/sys/kernel/debug/tracing")
}

func isTracefs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && (st.Type == unix.TRACEFS_MAGIC || st.Type == unix.DEBUGFS_MAGIC)
}

// mountinfoType returns the file system type of one /proc/self/mountinfo line:
// "id parent major:minor root mountpoint options [optional...] - fstype source superoptions".
func mountinfoType(line string) string {
	fields := strings.Fields(line)
	for i := 6; i < len(fields)-1; i++ {
		if fields[i] == "-" {
			return fields[i+1]
		}
	}
	return ""
}

package residue

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// userHZ is the unit of /proc/<pid>/stat's starttime (USER_HZ, 100 on every
// Linux architecture the observer supports).
const userHZ = 100

// bootNsToTicks converts a task's start_boottime (ns) to /proc/<pid>/stat ticks.
func bootNsToTicks(ns uint64) uint64 { return ns / (1e9 / userHZ) }

// procStartTicks returns field 22 of /proc/<pid>/stat: when the process started.
func procStartTicks(pid uint32) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(data[i+1:])
	// After comm: state(3) ... starttime is field 22, i.e. index 19 here.
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// processAlive tells whether pid still names the process that started at
// startTicks (0: unknown start, any process with that pid counts).
func processAlive(pid uint32, startTicks uint64) bool {
	if pid == 0 {
		return false
	}
	got, err := procStartTicks(pid)
	if err != nil {
		return false
	}
	if startTicks == 0 {
		return true
	}
	// Rounding in the conversion may differ by one tick.
	d := int64(got) - int64(startTicks)
	return d >= -1 && d <= 1
}

// processZombie tells whether the process has exited but is not yet reaped:
// it holds no resources and will not remove anything any more.
func processZombie(pid uint32) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && (data[i+2] == 'Z' || data[i+2] == 'X')
}

// exePath is the process's executable, best effort (the process may be gone).
func exePath(pid uint32) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return p
}

// nsInode returns the inode of a namespace file such as /proc/self/ns/ipc.
func nsInode(path string) (uint32, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint32(st.Ino), nil
}

// liveNamespaces returns the inodes of the namespaces of kind ("ipc", "net")
// that at least one live process is in, with one pid in each.
func liveNamespaces(kind string) map[uint32]uint32 {
	out := map[uint32]uint32{}
	dir, err := os.Open("/proc")
	if err != nil {
		return out
	}
	defer dir.Close()
	names, _ := dir.Readdirnames(-1)
	for _, n := range names {
		pid, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			continue
		}
		ino, err := nsInode("/proc/" + n + "/ns/" + kind)
		if err != nil || processZombie(uint32(pid)) {
			continue // gone meanwhile, or a zombie (no namespaces left)
		}
		if _, ok := out[ino]; !ok {
			out[ino] = uint32(pid)
		}
	}
	return out
}

package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// errNoCgroup2 means no cgroup2 hierarchy is mounted (pure cgroup v1 host).
var errNoCgroup2 = errors.New("no cgroup2 mount")

// findCgroup2Mount returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on
// hybrid hosts. Only mounts of the hierarchy root count, so a bind mount of a
// sub-cgroup cannot stand in for it.
func findCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		fstype, _, _ := strings.Cut(post, " ")
		if len(f) < 5 || fstype != "cgroup2" || f[3] != "/" {
			continue
		}
		return unescapeMountinfo(f[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errNoCgroup2
}

// unescapeMountinfo undoes the kernel's octal escaping of space, tab,
// newline and backslash in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// detectCgroup2Mount reads this process's mountinfo.
func detectCgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return findCgroup2Mount(f)
}

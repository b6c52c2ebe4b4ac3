package tracefs

import "testing"

func TestFSType(t *testing.T) {
	for line, want := range map[string]string{
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":                  "ext3",
		"40 23 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:19 - tracefs tracefs rw": "tracefs",
		"41 23 0:13 / /sys/kernel/debug rw,relatime - debugfs debugfs rw":                                 "debugfs",
		"garbage":         "",
		"1 2 3 4 5 6 7 -": "",
	} {
		if got := fsType(line); got != want {
			t.Errorf("fsType(%q) = %q, want %q", line, got, want)
		}
	}
}

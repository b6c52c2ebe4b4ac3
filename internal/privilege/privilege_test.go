package privilege

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheck(t *testing.T) {
	if err := check(1 << unix.CAP_SYS_ADMIN); err != nil {
		t.Errorf("CAP_SYS_ADMIN: %v", err)
	}
	if err := check(1<<capBPF | 1<<capPerfmon); err != nil {
		t.Errorf("CAP_BPF+CAP_PERFMON: %v", err)
	}
	err := check(1 << capBPF)
	if err == nil || !strings.Contains(err.Error(), "CAP_PERFMON") || strings.Contains(err.Error(), "CAP_BPF and") {
		t.Errorf("only CAP_BPF: %v", err)
	}
	if err := check(0); err == nil || !strings.Contains(err.Error(), "CAP_BPF and CAP_PERFMON") {
		t.Errorf("none: %v", err)
	}
}

func TestCheckReadsThisProcess(t *testing.T) {
	err := Check()
	if os.Geteuid() == 0 && err != nil {
		t.Errorf("root: %v", err)
	}
}

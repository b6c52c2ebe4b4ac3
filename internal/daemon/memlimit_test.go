package daemon

import (
	"runtime/debug"
	"testing"

	"github.com/observer-dev/observer/internal/config"
)

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	if got := SetMemoryLimit(config.Forensics{Enabled: true, MaxBytes: 64 << 20}); got != 96<<20 || debug.SetMemoryLimit(-1) != 96<<20 {
		t.Errorf("limit with a 64 MiB recorder = %d, want 96 MiB in force", got)
	}
	if got := SetMemoryLimit(config.Forensics{MaxBytes: 64 << 20}); got != 32<<20 {
		t.Errorf("limit without a recorder = %d, want 32 MiB", got)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	if got := SetMemoryLimit(config.Forensics{Enabled: true, MaxBytes: 64 << 20}); got != 1<<30 {
		t.Errorf("with GOMEMLIMIT set: limit %d, want the environment's 1 GiB", got)
	}
}

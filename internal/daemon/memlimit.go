package daemon

import (
	"os"
	"runtime/debug"

	"github.com/observer-dev/observer/internal/config"
)

// heapHeadroom is the Go heap the daemon may use beside the recorder's bound:
// the container index, metrics, queues in flight and garbage not yet collected.
const heapHeadroom = 32 << 20

// SetMemoryLimit sets a soft Go memory limit of the recorder's bound plus
// heapHeadroom, so the collector works harder before garbage takes the
// heap past what --recorder-bytes promises, instead of letting it grow to
// twice the live heap. GOMEMLIMIT in the environment wins. It returns the
// limit in force.
func SetMemoryLimit(fc config.Forensics) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	limit := int64(heapHeadroom)
	if fc.Enabled {
		limit += fc.MaxBytes
	}
	debug.SetMemoryLimit(limit)
	return limit
}

package tracer

import (
	"log/slog"
	"sync"

	"github.com/observer-dev/observer/tracer/tracefs"
)

var tracefsLogged sync.Once

// ensureTracefs makes tracefs available for classic tracepoints (see
// tracefs.Ensure); the mount is logged once. It is called only when a
// tracepoint mode is tried, so a kernel served by fentry or tp_btf never gets
// a mount it does not need.
func ensureTracefs(log *slog.Logger) error {
	mounted, err := tracefs.Ensure()
	if mounted {
		tracefsLogged.Do(func() {
			log.Info("tracefs was not mounted: mounted it for the tracepoint attach mode", "path", tracefs.Dir)
		})
	}
	return err
}

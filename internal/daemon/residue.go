package daemon

import (
	"log/slog"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/residue"
)

// newResidueDetector builds the semaphore and veth residue detectors; they ask
// the same Docker engine as container correlation which containers run.
func newResidueDetector(opts Options, events *bus.Bus, log *slog.Logger) *residue.Detector {
	var engine *container.EngineClient
	if opts.Config.DockerHost != "none" {
		var err error
		if engine, err = container.NewEngineClient(opts.Config.DockerHost); err != nil {
			log.Warn("residue: Docker engine not usable; veths on Docker bridges are judged without it", "err", err)
			engine = nil
		}
	}
	return residue.New(residue.Options{
		Grace:    opts.Config.ResidueGrace,
		Interval: opts.Config.ResidueInterval,
		Engine:   engine,
		Publish:  events.Publish,
		Logger:   log,
	})
}

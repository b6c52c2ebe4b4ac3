package daemon

import (
	"context"
	"log/slog"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/recorder"
	"github.com/observer-dev/observer/internal/residue"
)

// SnapshotFeed delivers a replayed capture's state snapshots.
type SnapshotFeed interface {
	// OnSnapshot calls f with the newest snapshot read so far, if any, then
	// with every later one, in capture order, one call at a time.
	OnSnapshot(f func(*capture.Snapshot))
}

// newResidueDetector builds the semaphore and veth residue detectors; they ask
// the same Docker engine as container correlation which containers run. Their
// residue events go to publish (the pipeline's Inject), so the pipeline's
// observers (metrics, incident rules) see them like sensor events. In a
// replay (opts.Offline) they scan nothing and believe the capture.
func newResidueDetector(opts Options, publish func(event.Event) bool, log *slog.Logger) *residue.Detector {
	if opts.Offline != nil {
		det := residue.New(residue.Options{Offline: true, Logger: log})
		opts.Offline.OnSnapshot(func(s *capture.Snapshot) { det.ApplySnapshot(s.Time, s.Sections) })
		return det
	}
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
		Publish:  publish,
		Logger:   log,
	})
}

// residueProviders put the detector's inventories and residue into the flight
// recorder's snapshots, one section each; a replay reads them back
// (residue.Detector.ApplySnapshot).
func residueProviders(det *residue.Detector) []recorder.Provider {
	var out []recorder.Provider
	for _, name := range det.Sections() {
		out = append(out, recorder.Provider{Name: name, Collect: func(context.Context) (any, error) { return det.Snapshot(name), nil }})
	}
	return out
}

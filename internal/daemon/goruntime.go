package daemon

import (
	"log/slog"
	"os"
	"runtime"
)

// MaxProcs is how many processors the Go scheduler runs the daemon's code
// on, as /status reports it.
type MaxProcs struct {
	Procs int    `json:"procs"`
	From  string `json:"from"` // "GOMAXPROCS" or "default"
}

// setMaxProcs runs the daemon's Go code on one processor unless the user set
// GOMAXPROCS. The daemon's work is one pipeline (a sensor's reader, the
// pipeline, its consumers) handing batches along: on one processor a handoff
// is a queue push, on several it wakes another thread, and that wakeup cost
// more than the records it carried. At 20,000 and 40,000 events/s one
// processor took 2.6 and 2.15 µs of CPU an event against 3.7 and 2.58 with two,
// with half the context switches (README, Event pipeline). It still delivers
// well past 40,000 events/s: the userspace path alone does about a million a
// second.
func setMaxProcs(log *slog.Logger) MaxProcs {
	if _, ok := os.LookupEnv("GOMAXPROCS"); ok {
		p := MaxProcs{Procs: runtime.GOMAXPROCS(0), From: "GOMAXPROCS"}
		log.Info("go processors", "procs", p.Procs, "from", p.From)
		return p
	}
	runtime.GOMAXPROCS(1)
	log.Info("go processors", "procs", 1, "from", "default (set GOMAXPROCS to override)")
	return MaxProcs{Procs: 1, From: "default"}
}

package daemon

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
)

func TestSetMaxProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMAXPROCS", "3") // restored after the test; the runtime read it at start only
	runtime.GOMAXPROCS(3)
	if got := setMaxProcs(log); got != (MaxProcs{Procs: 3, From: "GOMAXPROCS"}) || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("with GOMAXPROCS=3: %+v, runtime %d", got, runtime.GOMAXPROCS(0))
	}
	os.Unsetenv("GOMAXPROCS")
	if got := setMaxProcs(log); got != (MaxProcs{Procs: 1, From: "default"}) || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("without GOMAXPROCS: %+v, runtime %d", got, runtime.GOMAXPROCS(0))
	}
}

// Package tracertest starts the real tracer for tests above tracer/ (tracer's
// own tests cannot import it: it imports tracer).
package tracertest

import (
	"context"
	"testing"

	"github.com/observer-dev/observer/tracer"
)

// Start runs the real tracer with opts until the test ends, when it is
// stopped and closed; a tracer that cannot be built or started fails the test.
func Start(t testing.TB, opts tracer.Options) *tracer.Tracer {
	t.Helper()
	tr, err := tracer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tr.Start(ctx); err != nil {
		cancel()
		tr.Close()
		t.Fatalf("start the tracer (sensors %v): %v", opts.Sensors, err)
	}
	t.Cleanup(func() {
		cancel()
		tr.Close()
	})
	return tr
}

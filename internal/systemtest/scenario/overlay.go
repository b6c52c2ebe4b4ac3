package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// copyUp: a container appends one byte to the 64 MiB file of its image.
// One copy_up event names the container and carries the bytes and the
// trigger; Prometheus has the copy-up histogram for the container.
func copyUp(ctx context.Context, n *Node, t *T) error {
	mark := n.Mark()
	name := "st-copyup"
	// The container lives on a little after the write: its name is resolved
	// from the Engine API when its cgroup appears, and the metrics keep it.
	if _, err := Docker(ctx, "run", "-d", "--name", name, Image, "sh", "-c", "sleep 2; echo x >> /data/big; sleep 30"); err != nil {
		return err
	}
	defer Docker(context.Background(), "rm", "-f", name)
	id, err := ContainerID(ctx, name)
	if err != nil {
		return err
	}
	t.Logf("container %s %s", name, Short(id))
	e, ok := n.WaitEvent(mark, 60*time.Second, func(e Event) bool {
		return e.Str("type") == "copy_up" && e.Str("container_id") == id && strings.HasSuffix(e.Str("path"), "data/big")
	})
	if !ok {
		return fmt.Errorf("no copy_up event for %s of container %s within 60s (%d copy_up events seen)", "/data/big", Short(id), len(n.Events(mark, isType("copy_up"))))
	}
	t.Logf("event: %v", e)
	if got := e.Str("container_name"); got != name {
		return fmt.Errorf("copy_up event container_name %q, want %q", got, name)
	}
	if got := e.Num("bytes_copied"); got != 64<<20 {
		return fmt.Errorf("copy_up bytes_copied %.0f, want %d", got, 64<<20)
	}
	if e.Str("trigger") == "" {
		return fmt.Errorf("copy_up event without a trigger")
	}
	if e.Str("result") != "ok" {
		return fmt.Errorf("copy_up result %q", e.Str("result"))
	}
	// The bytes first: once they reach 64 MiB the file's copy-up has been
	// scraped, so count and sum below include it.
	bytes, err := n.WaitQuery(ctx, fmt.Sprintf(`observer_copy_up_bytes_total{container=%q}`, Short(id)), 30*time.Second, func(v float64) bool { return v >= 64<<20 })
	if err != nil {
		return err
	}
	s, err := n.WaitQuery(ctx, fmt.Sprintf(`observer_copy_up_duration_seconds_count{container=%q}`, Short(id)), 10*time.Second, func(v float64) bool { return v >= 1 })
	if err != nil {
		return err
	}
	sum, err := n.WaitQuery(ctx, fmt.Sprintf(`observer_copy_up_duration_seconds_sum{container=%q}`, Short(id)), 10*time.Second, func(v float64) bool { return v > 0 })
	if err != nil {
		return err
	}
	// How many copy-ups Prometheus counts varies (the parent directory's
	// copy-up may land in an earlier scrape): a figure, not a fact.
	t.Fact("one copy_up of %s with the container's id and name, bytes_copied %s, trigger %s; Prometheus: the container's copy-up histogram, >= %s copied",
		e.Str("path"), MiB(e.Num("bytes_copied")), e.Str("trigger"), MiB(64<<20))
	t.Measure("copy-up %s (event); Prometheus: %s copy-up(s), %s in %s", dur(e.Num("duration_ns")/1e9), fmtCount(s.Value), MiB(bytes.Value), dur(sum.Value))
	return nil
}

// renameExdev: busybox mv of an image directory inside a container: the
// kernel says EXDEV (mv falls back to copying), the event names the
// container, the counter reaches Prometheus.
func renameExdev(ctx context.Context, n *Node, t *T) error {
	mark := n.Mark()
	name := "st-exdev"
	if _, err := Docker(ctx, "run", "-d", "--name", name, Image, "sh", "-c", "sleep 2; mv /data/dir /data/moved && ls /data/moved/sub >/dev/null; sleep 30"); err != nil {
		return err
	}
	defer Docker(context.Background(), "rm", "-f", name)
	id, err := ContainerID(ctx, name)
	if err != nil {
		return err
	}
	t.Logf("container %s %s", name, Short(id))
	e, ok := n.WaitEvent(mark, 60*time.Second, func(e Event) bool {
		return e.Str("type") == "rename_exdev" && e.Str("container_id") == id
	})
	if !ok {
		return fmt.Errorf("no rename_exdev event for container %s within 60s", Short(id))
	}
	t.Logf("event: %v", e)
	if got := e.Str("container_name"); got != name {
		return fmt.Errorf("rename_exdev container_name %q, want %q", got, name)
	}
	if e.Str("old_path") != "/data/dir" || e.Str("new_path") != "/data/moved" {
		return fmt.Errorf("rename_exdev paths %q -> %q, want /data/dir -> /data/moved", e.Str("old_path"), e.Str("new_path"))
	}
	q := fmt.Sprintf(`observer_rename_exdev_total{container=%q}`, Short(id))
	s, err := n.WaitQuery(ctx, q, 30*time.Second, func(v float64) bool { return v >= 1 })
	if err != nil {
		return err
	}
	t.Fact("rename_exdev %s -> %s by %s in the named container; Prometheus observer_rename_exdev_total %s",
		e.Str("old_path"), e.Str("new_path"), e.Str("comm"), fmtCount(s.Value))
	return nil
}

func isType(typ string) func(Event) bool {
	return func(e Event) bool { return e.Str("type") == typ }
}

func fmtCount(v float64) string { return fmt.Sprintf("%.0f", v) }

// dur rounds to three significant digits or so: ns for sub-µs filter runs,
// ms for copy-ups.
func dur(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return d.Round(10 * time.Nanosecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

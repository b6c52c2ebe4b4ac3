package residue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/observer-dev/observer/internal/container"
)

// CleanClasses are the classes `observer residue --clean` takes, in order.
func CleanClasses() []string {
	var out []string
	for _, r := range newResources(&env{offline: true}) {
		out = append(out, r.CleanClasses()...)
	}
	return out
}

// classOwner is the resource whose items class removes, or nil.
func classOwner(rs []Resource, class string) Resource {
	for _, r := range rs {
		for _, c := range r.CleanClasses() {
			if c == class {
				return r
			}
		}
	}
	return nil
}

// cleanable tells whether --clean class may remove it, and why not.
func cleanable(it Item, class string, olderThan time.Duration) (bool, string) {
	return cleanableBy(newResources(&env{offline: true}), it, class, olderThan)
}

func cleanableBy(rs []Resource, it Item, class string, olderThan time.Duration) (bool, string) {
	owner := classOwner(rs, class)
	if owner == nil || it.Resource != owner.Name() {
		return false, ""
	}
	if ok, why := owner.Cleanable(it, class); !ok {
		return false, why
	}
	if !it.AgeUnknown && it.AgeSecond < olderThan.Seconds() {
		return false, fmt.Sprintf("younger than %v", olderThan)
	}
	return true, ""
}

// Clean removes the residue items of one class. Each object is checked again
// just before removal (same semid and key; same ifindex and name), so nothing
// that changed since the report is touched. Each outcome is a line on out; the
// error says how many objects could not be removed.
func Clean(items []Item, class string, olderThan time.Duration, out io.Writer) error {
	rs := newResources(&env{now: time.Now, log: slog.Default()})
	failed := 0
	for _, it := range items {
		owner := classOwner(rs, class)
		ok, why := cleanableBy(rs, it, class, olderThan)
		if !ok {
			if why != "" {
				fmt.Fprintf(out, "skipped %s: %s\n", owner.Label(it), why)
			}
			continue
		}
		label, err := owner.Remove(it)
		var skip *SkipError
		switch {
		case errors.As(err, &skip):
			fmt.Fprintf(out, "skipped %s: %s\n", label, skip.Reason)
		case err != nil:
			fmt.Fprintf(out, "not removed %s: %v\n", label, err)
			failed++
		default:
			fmt.Fprintf(out, "removed %s (%s)\n", label, it.Remove)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d objects not removed", failed)
	}
	return nil
}

// Standalone is a report without a daemon: two scans, settle apart, with no
// events, so creators are unknown. Each resource judges what the scans found
// (arrays by their ctime against grace; veths orphaned in both scans, their
// age unknown).
func Standalone(ctx context.Context, grace, settle time.Duration, engine *container.EngineClient, log *slog.Logger) Report {
	d := New(Options{Grace: max(settle, time.Nanosecond), Engine: engine, Logger: log})
	d.Reconcile(ctx)
	time.Sleep(settle)
	d.Reconcile(ctx)
	rep := d.Report()
	rep.GraceSeconds = grace.Seconds()
	items := []Item{}
	for _, it := range rep.Residue {
		if r := d.resource(it.Resource); r != nil {
			if it, keep := r.OneOff(it, grace); keep {
				items = append(items, it)
			}
		}
	}
	rep.Residue = items
	return rep
}

// PrintTable prints residue items with their creator, age and removal command.
func PrintTable(w io.Writer, items []Item) {
	if len(items) == 0 {
		fmt.Fprintln(w, "no residue")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tKIND\tID\tKEY\tCREATOR\tAGE\tREASON\tREMOVE WITH")
	for _, it := range items {
		id := it.Name
		if it.SemID != nil {
			id = fmt.Sprint(*it.SemID)
		}
		key := it.Key
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Resource, it.Kind, id, key, creatorString(it), it.Age, it.Reason, it.Remove)
	}
	tw.Flush()
}

// PrintReport prints a report as `observer residue` shows it: where it comes
// from, the table, then scan problems and what the lists left out.
func PrintReport(w io.Writer, source string, rep Report) {
	fmt.Fprintf(w, "# %s, %s\n", source, rep.Time.Format(time.RFC3339))
	PrintTable(w, rep.Residue)
	for res, msg := range rep.Errors {
		fmt.Fprintf(w, "# scan problem (%s): %s\n", res, msg)
	}
	for list, n := range rep.Omitted {
		fmt.Fprintf(w, "# %d more %s not listed (at most %d each); --clean removes the listed ones, run it again for the rest\n", n, list, MaxReportItems)
	}
}

func creatorString(it Item) string {
	c := it.Creator
	if !c.Known {
		return "unknown"
	}
	s := fmt.Sprintf("%s[%d]", c.Comm, c.PID)
	if c.ContainerID != "" {
		s += " container " + container.ShortID(c.ContainerID)
	}
	return s
}

package residue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/server"
)

// Clean classes for `observer residue --clean`.
const (
	CleanDMSem = "dm-sem" // devicemapper udev cookie semaphores (the documented manual cleanup)
	CleanSem   = "sem"    // semaphore arrays whose creator is known to have exited, and dm cookies
	CleanVeth  = "veth"
)

// Main is `observer residue`: it asks the running daemon for its residue
// report, or scans by itself when no daemon answers, prints a table with the
// removal command for each object, and removes objects only when --clean says so.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("observer residue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:9810", "the daemon's --listen `address`")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	clean := fs.String("clean", "", "remove residue of one `class`: dm-sem, sem or veth")
	olderThan := fs.Duration("older-than", time.Minute, "with --clean: only objects at least this old")
	grace := fs.Duration("grace", DefaultGrace, "standalone scan: how old an array of unknown creator must be to count")
	settle := fs.Duration("settle", 2*time.Second, "standalone scan: a veth must stay orphaned this long between two scans")
	dockerHost := fs.String("docker-host", "", "standalone scan: Docker Engine API `address` (none disables)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: observer residue [flags]")
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "observer residue: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "observer residue: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch *clean {
	case "", CleanDMSem, CleanSem, CleanVeth:
	default:
		fmt.Fprintf(stderr, "observer residue: --clean %q: want dm-sem, sem or veth\n", *clean)
		return 2
	}
	if *olderThan < 0 || *grace < 0 || *settle < 0 {
		fmt.Fprintln(stderr, "observer residue: durations must not be negative")
		return 2
	}

	var rep Report
	source := "daemon at " + *listen
	err := server.GetJSON(context.Background(), *listen, "/residue", &rep)
	if errors.Is(err, server.ErrAnswered) {
		fmt.Fprintf(stderr, "observer residue: %v\n", err)
		return 1
	}
	if err != nil {
		rep, err = standaloneReport(*grace, *settle, *dockerHost, stderr)
		source = "standalone scan (no daemon at " + *listen + ")"
		if err != nil {
			fmt.Fprintf(stderr, "observer residue: %v\n", err)
			return 1
		}
	}
	if rep.Offline {
		source = "replay of a capture, served at " + *listen
		if *clean != "" {
			// Its objects are a capture's: removing "the same" ids here could hit
			// another machine's, or a later process's, arrays and links.
			fmt.Fprintf(stderr, "observer residue: --clean refused: %s lists a replayed capture's residue, not this machine's\n", *listen)
			return 1
		}
	}
	sortItems(rep.Residue)
	if *asJSON {
		out, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "observer residue: encode the report: %v\n", err)
			return 1
		}
		if _, err := stdout.Write(append(out, '\n')); err != nil {
			fmt.Fprintf(stderr, "observer residue: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprintf(stdout, "# %s, %s\n", source, rep.Time.Format(time.RFC3339))
		PrintTable(stdout, rep.Residue)
		for res, msg := range rep.Errors {
			fmt.Fprintf(stdout, "# scan problem (%s): %s\n", res, msg)
		}
		for list, n := range rep.Omitted {
			fmt.Fprintf(stdout, "# %d more %s not listed (at most %d each); --clean removes the listed ones, run it again for the rest\n", n, list, MaxReportItems)
		}
	}
	if *clean == "" {
		return 0
	}
	return Clean(rep.Residue, *clean, *olderThan, stdout)
}

// standaloneReport scans twice, settle apart. Arrays are judged by their age
// (ctime), creators being unknown; veths must be orphaned in both scans and
// their age is unknown.
func standaloneReport(grace, settle time.Duration, dockerHost string, stderr io.Writer) (Report, error) {
	var engine *container.EngineClient
	if dockerHost != "none" {
		engine, _ = container.NewEngineClient(dockerHost)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d := New(Options{Grace: max(settle, time.Nanosecond), Engine: engine, Logger: log})
	ctx := context.Background()
	d.Reconcile(ctx)
	time.Sleep(settle)
	d.Reconcile(ctx)
	rep := d.Report()
	rep.GraceSeconds = grace.Seconds()
	var items []Item
	for _, it := range rep.Residue {
		if it.Resource == ResourceSem && it.AgeSecond < grace.Seconds() {
			continue
		}
		if it.Resource == ResourceVeth {
			it.AgeUnknown, it.Age, it.AgeSecond = true, "?", 0
		}
		items = append(items, it)
	}
	if items == nil {
		items = []Item{}
	}
	rep.Residue = items
	return rep, nil
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

// cleanable tells whether --clean class may remove it, and why not.
func cleanable(it Item, class string, olderThan time.Duration) (bool, string) {
	switch class {
	case CleanDMSem:
		if it.Resource != ResourceSem || it.Kind != KindDMUdevCookie {
			return false, ""
		}
	case CleanSem:
		if it.Resource != ResourceSem {
			return false, ""
		}
		if !it.Creator.Known && it.Kind != KindDMUdevCookie {
			return false, "creator unknown: it may belong to a running program; remove it by hand if you know it is leaked"
		}
	case CleanVeth:
		if it.Resource != ResourceVeth {
			return false, ""
		}
	default:
		return false, ""
	}
	if !it.AgeUnknown && it.AgeSecond < olderThan.Seconds() {
		return false, fmt.Sprintf("younger than %v", olderThan)
	}
	return true, ""
}

// Clean removes the residue items of one class. Each object is checked again
// just before removal (same semid and key; same ifindex and name), so nothing
// that changed since the report is touched. It returns the exit status.
func Clean(items []Item, class string, olderThan time.Duration, out io.Writer) int {
	status := 0
	ownNS, _ := nsInode("/proc/self/ns/ipc")
	for _, it := range items {
		ok, why := cleanable(it, class, olderThan)
		label := it.Name
		if it.SemID != nil {
			label = fmt.Sprintf("semaphore %d (key %s)", *it.SemID, it.Key)
		}
		if !ok {
			if why != "" {
				fmt.Fprintf(out, "skipped %s: %s\n", label, why)
			}
			continue
		}
		var err error
		switch it.Resource {
		case ResourceSem:
			if it.IPCNS != 0 && ownNS != 0 && it.IPCNS != ownNS {
				fmt.Fprintf(out, "skipped %s: in IPC namespace %d, not this one\n", label, it.IPCNS)
				continue
			}
			err = removeSem(*it.SemID, it.Key)
		case ResourceVeth:
			label = "veth " + it.Name
			err = removeVeth(it.Ifindex, it.Name)
		}
		if err != nil {
			fmt.Fprintf(out, "not removed %s: %v\n", label, err)
			status = 1
			continue
		}
		fmt.Fprintf(out, "removed %s (%s)\n", label, it.Remove)
	}
	return status
}

func removeSem(id int32, key string) error {
	data, err := readSemProc()
	if err != nil {
		return err
	}
	arrays, _, err := ParseSemProc(bytes.NewReader(data))
	if err != nil {
		return err
	}
	for _, a := range arrays {
		if a.SemID == id {
			if FormatKey(a.Key) != key {
				return fmt.Errorf("semid %d now has key %s: not the reported array", id, FormatKey(a.Key))
			}
			return semRemove(id)
		}
	}
	return fmt.Errorf("semid %d is already gone", id)
}

func removeVeth(ifindex int32, name string) error {
	l, err := netlink.LinkByIndex(int(ifindex))
	if err != nil {
		return fmt.Errorf("ifindex %d: %w", ifindex, err)
	}
	if l.Attrs().Name != name || l.Type() != "veth" {
		return fmt.Errorf("ifindex %d is now %s (%s): not the reported veth", ifindex, l.Attrs().Name, l.Type())
	}
	return netlink.LinkDel(l)
}

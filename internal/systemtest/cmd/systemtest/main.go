// Command systemtest boots a Debian node (systemd, journald, udev, dockerd,
// Prometheus, the observer as its systemd unit) once per kernel of the matrix
// and runs the scenarios of package internal/systemtest/scenario inside it.
// With -table it rewrites the README's systemtest tables from the last run's
// results; with -check it fails when the verdict table differs from them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/systemtest"
	"github.com/observer-dev/observer/internal/vmtest"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		matrix   = flag.String("kernels-file", "testdata/vmtest/kernels.txt", "kernel matrix: name<TAB>package<TAB>vmlinuz glob")
		kernels  = flag.String("kernels", "", "comma-separated kernel names to run (default: all in the matrix)")
		observer = flag.String("observer", "bin/observer", "the observer's static binary (make build)")
		data     = flag.String("data", "testdata/systemtest", "guest configuration: packages.txt, observer.default, prometheus.yml, systemtest.service, daemon.json")
		unit     = flag.String("unit", "deploy/systemd/observer.service", "the observer's systemd unit, installed in the guest as is")
		out      = flag.String("out", ".systemtest", "output directory: cache/ (root filesystem, disk), <kernel>/console.log and results.jsonl")
		timeout  = flag.Duration("timeout", 8*time.Minute, "per-kernel limit from boot to poweroff")
		table    = flag.Bool("table", false, "do not boot: rewrite the README's systemtest tables from the last run's results")
		check    = flag.Bool("check", false, "do not boot: fail with a diff when the README's verdict table differs from the last run's results")
		readme   = flag.String("readme", "README.md", "document holding the systemtest tables")
		onlyDisk = flag.Bool("build-only", false, "build (or find) the guest disk and stop, booting nothing")
		parallel = flag.Int("parallel", 1, "kernels booted at once (each guest is one TCG vCPU)")
		only     = flag.String("scenarios", "", "comma-separated scenarios to run (default all; a partial run fails for the missing ones)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "systemtest: unexpected arguments %q\n", flag.Args())
		return 2
	}
	all, err := vmtest.LoadKernels(*matrix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 2
	}
	// The node's root filesystem is built for the host's architecture
	// (mmdebstrap runs its packages' scripts here): other architectures'
	// kernels are the vmtest matrix's only.
	all = vmtest.OfArch(all, runtime.GOARCH)
	if *table || *check {
		return tables(*readme, *out, all, *check)
	}
	ks, err := vmtest.Filter(all, splitList(*kernels))
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()

	runner := filepath.Join(*out, "bin", "systemtest-guest")
	slog.Info("building the guest's scenario runner", "out", runner)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", runner, "./internal/systemtest/cmd/systemtest-guest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "systemtest: building the scenario runner: %v\n%s", err, b)
		return 1
	}
	pkgs, err := systemtest.ReadPackages(filepath.Join(*data, "packages.txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 2
	}
	spec := systemtest.ImageSpec{
		Suite:    debianSuite(),
		Packages: pkgs,
		Files: map[string]string{
			systemtest.GuestObserver:     *observer,
			systemtest.GuestRunner:       runner,
			systemtest.GuestObserverUnit: *unit,
			systemtest.GuestObserverEnv:  filepath.Join(*data, "observer.default"),
			systemtest.GuestRunnerUnit:   filepath.Join(*data, "systemtest.service"),
			systemtest.GuestPrometheus:   filepath.Join(*data, "prometheus.yml"),
			systemtest.GuestDockerConfig: filepath.Join(*data, "daemon.json"),
		},
		CacheDir: filepath.Join(*out, "cache"),
	}
	// Every matrix kernel's modules, whichever run: one disk serves all.
	for _, k := range all {
		_, modDir, err := k.Resolve()
		if err != nil {
			fmt.Fprintln(os.Stderr, "systemtest:", err)
			return 1
		}
		spec.Modules = append(spec.Modules, modDir)
	}
	disk, err := systemtest.Build(ctx, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest: guest disk:", err)
		return 1
	}
	if *onlyDisk {
		fmt.Println(disk)
		return 0
	}
	cfg := systemtest.BootConfig{
		Disk: disk, OutDir: *out, Timeout: *timeout,
		QEMU: systemtest.DefaultQEMU(), Initrd: systemtest.Initrd(*out), Progress: os.Stdout,
		Scenarios: splitList(*only),
	}
	runs := make([]systemtest.KernelRun, len(ks))
	slots := make(chan struct{}, max(1, *parallel))
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			runs[i] = systemtest.Boot(ctx, cfg, k)
		})
	}
	wg.Wait()
	ok := true
	for _, r := range runs {
		ok = ok && r.Passed()
	}
	fmt.Printf("\nsystemtest: %d kernel(s) in %s\n", len(runs), time.Since(start).Round(time.Second))
	for _, r := range runs {
		verdict := "ok"
		if !r.Passed() {
			verdict = "FAIL"
		}
		fmt.Printf("%-4s %-6s %-28s %6s  %s\n", verdict, r.Kernel.Name, r.Release, r.Duration.Round(time.Second), r.LogPath)
		for _, res := range r.Results {
			detail := res.Facts
			if res.Status != systemtest.Pass {
				detail = res.Reason
			}
			fmt.Printf("       %-12s %-11s %5.0fs  %s\n", res.Scenario, res.Status, res.Seconds, detail)
		}
		for _, p := range r.Problems {
			fmt.Printf("       problem: %s\n", p)
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// tables renders both README tables from .systemtest/<kernel>/results.jsonl.
func tables(readme, out string, ks []vmtest.Kernel, check bool) int {
	var cols []systemtest.Column
	for _, k := range ks {
		path := filepath.Join(out, k.Name, "results.jsonl")
		rs, err := systemtest.ReadResults(path)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "systemtest: no results at %s: run make systemtest first\n", path)
			return 1
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "systemtest:", err)
			return 1
		}
		cols = append(cols, systemtest.Column{Kernel: k.Name, Results: rs})
	}
	verdicts, err := systemtest.RenderVerdicts(cols)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	if check {
		diff, err := systemtest.VerdictBlock.Check(string(doc), verdicts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "systemtest: %s: %v\n", readme, err)
			return 1
		}
		if diff != "" {
			fmt.Fprintf(os.Stderr, "%s: the systemtest table differs from this run (- %s, + run):\n%s", readme, readme, diff)
			fmt.Fprintln(os.Stderr, "run make systemtest-table (and commit README.md) if the new results are right")
			return 1
		}
		fmt.Printf("%s: systemtest table matches the run\n", readme)
		return 0
	}
	measured, err := systemtest.RenderMeasured(cols)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	s, err := systemtest.VerdictBlock.Replace(string(doc), verdicts)
	if err == nil {
		s, err = systemtest.MeasuredBlock.Replace(s, measured)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "systemtest: %s: %v\n", readme, err)
		return 1
	}
	if err := os.WriteFile(readme, []byte(s), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	fmt.Printf("%s: systemtest tables rewritten from %s\n", readme, out)
	return 0
}

// debianSuite is the host's own release (bookworm here): its apt sources are
// the ones mmdebstrap uses.
func debianSuite() string {
	b, err := os.ReadFile("/etc/os-release")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && v != "" {
				return strings.Trim(v, `"`)
			}
		}
	}
	return "bookworm"
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Command vmtest runs the kernel-facing test packages in QEMU, once per
// kernel in the matrix file. See internal/vmtest for the guest contract.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/vmtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		matrix   = flag.String("kernels-file", "testdata/vmtest/kernels.txt", "kernel matrix: name<TAB>package<TAB>vmlinuz glob")
		modes    = flag.String("modes-file", "testdata/vmtest/modes.txt", "attach modes each kernel must offer, shipped to the guest for the tracer tests")
		kernels  = flag.String("kernels", "", "comma-separated kernel names to run (default: all in the matrix)")
		pkgs     = flag.String("packages", "./tracer/... ./internal/vmtest/probe", "space-separated package patterns to test in the guest")
		modules  = flag.String("modules", strings.Join(vmtest.DefaultModules, ","), "comma-separated modules to insmod (dependencies are resolved from modules.dep)")
		runRE    = flag.String("run", "", "passed to the test binaries as -test.run")
		benchRE  = flag.String("bench", "", "passed to the test binaries as -test.bench (with -test.benchtime=1x); the tables are in each kernel's console.log")
		timeout  = flag.Duration("timeout", 3*time.Minute, "per-kernel limit from boot to poweroff")
		out      = flag.String("out", ".vmtest", "output directory (logs, results.jsonl, initramfs)")
		parallel = flag.Int("parallel", 1, "kernels booted at once (one TCG vCPU each; make vmtest boots 2)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vmtest: unexpected arguments %q\n", flag.Args())
		return 2
	}
	all, err := vmtest.LoadKernels(*matrix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	ks, err := vmtest.Filter(all, splitList(*kernels, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	start := time.Now()
	results, err := vmtest.RunMatrix(ctx, vmtest.Config{
		Kernels:   ks,
		Packages:  strings.Fields(*pkgs),
		Modules:   splitList(*modules, ","),
		Run:       *runRE,
		Bench:     *benchRE,
		Timeout:   *timeout,
		OutDir:    *out,
		ModesFile: *modes,
		Parallel:  *parallel,
		QEMU:      vmtest.DefaultQEMU(),
	})
	if err != nil {
		slog.Error("vmtest", "err", err)
		return 1
	}
	if !vmtest.WriteReport(os.Stdout, results, time.Since(start)) {
		return 1
	}
	return 0
}

func splitList(s, sep string) []string {
	var out []string
	for _, f := range strings.Split(s, sep) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

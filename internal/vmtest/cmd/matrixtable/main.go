// Command matrixtable renders the README's attach-mode table (sensors x
// kernels) from the results of a run: .vmtest/host/results.jsonl (make test)
// and .vmtest/<kernel>/results.jsonl (make vmtest). With -check it only
// compares and fails with a diff when the README is stale.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/observer-dev/observer/internal/vmtest"
)

const hostDir = "host"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("matrixtable", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		readme  = fl.String("readme", "README.md", "document holding the "+vmtest.TableBegin+" ... "+vmtest.TableEnd+" block")
		results = fl.String("results", ".vmtest", "directory with host/results.jsonl and <kernel>/results.jsonl")
		matrix  = fl.String("kernels-file", "testdata/vmtest/kernels.txt", "kernel matrix: the columns after the host, in order")
		check   = fl.Bool("check", false, "do not write: fail with a diff when the document's table differs from the results")
	)
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "matrixtable: unexpected arguments %q\n", fl.Args())
		return 2
	}
	kernels, err := vmtest.LoadKernels(*matrix)
	if err != nil {
		fmt.Fprintln(stderr, "matrixtable:", err)
		return 2
	}
	cols, err := columns(*results, kernels)
	if err != nil {
		fmt.Fprintln(stderr, "matrixtable:", err)
		return 1
	}
	block, err := vmtest.RenderTable(cols)
	if err != nil {
		fmt.Fprintln(stderr, "matrixtable:", err)
		return 1
	}
	doc, err := os.ReadFile(*readme)
	if err != nil {
		fmt.Fprintln(stderr, "matrixtable:", err)
		return 1
	}
	if *check {
		diff, err := vmtest.CheckTable(string(doc), block)
		if err != nil {
			fmt.Fprintf(stderr, "matrixtable: %s: %v\n", *readme, err)
			return 1
		}
		if diff != "" {
			fmt.Fprintf(stderr, "%s: the attach-mode table differs from this run (- %s, + run):\n%s", *readme, *readme, diff)
			fmt.Fprintln(stderr, "run make matrix-table (and commit README.md) if the new results are right")
			return 1
		}
		fmt.Fprintf(stdout, "%s: attach-mode table matches the run\n", *readme)
		return 0
	}
	out, err := vmtest.ReplaceTable(string(doc), block)
	if err != nil {
		fmt.Fprintf(stderr, "matrixtable: %s: %v\n", *readme, err)
		return 1
	}
	if err := os.WriteFile(*readme, []byte(out), 0o644); err != nil {
		fmt.Fprintln(stderr, "matrixtable:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: attach-mode table rewritten from %s\n", *readme, *results)
	return 0
}

// columns reads the host's results, then each matrix kernel's.
func columns(dir string, kernels []vmtest.Kernel) ([]vmtest.Column, error) {
	host, err := read(filepath.Join(dir, hostDir, "results.jsonl"), "make test (or make matrix-host)")
	if err != nil {
		return nil, err
	}
	cols := []vmtest.Column{{Header: vmtest.HostHeader(host), Results: host}}
	for _, k := range kernels {
		if k.Name == hostDir {
			return nil, fmt.Errorf("kernel name %q is reserved for the host column", hostDir)
		}
		rs, err := read(filepath.Join(dir, k.Name, "results.jsonl"), "make vmtest")
		if err != nil {
			return nil, err
		}
		cols = append(cols, vmtest.Column{Header: k.Name + " (QEMU)", Results: rs})
	}
	return cols, nil
}

func read(path, how string) ([]vmtest.ModeResult, error) {
	rs, err := vmtest.ReadModeResults(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no results at %s: run %s first", path, how)
	}
	return rs, err
}
